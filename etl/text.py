"""Arrow text as the bytes it is made of, for checks that read a whole column at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa


def utf8(text: pa.Array | pa.ChunkedArray) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """A text column as Arrow holds it: the UTF-8 bytes of every value one after another,
    and where each value starts (one more: where the last ends). A missing value is an
    empty one. No copy of the bytes when the column is in one piece."""
    import numpy as np

    text = arrow_text(text)
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset : text.offset + len(text) + 1]
    data = text.buffers()[2]
    return np.frombuffer(data or b"", np.uint8), offsets.astype(np.int64)


def first_bytes(text: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int16]:
    """Each value's first byte, or -1 for an empty (or missing) value."""
    import numpy as np

    data, offsets = utf8(text)
    starts = offsets[:-1]
    if not len(data):
        return np.full(len(starts), -1, dtype=np.int16)
    found = data[np.minimum(starts, len(data) - 1)].astype(np.int16)
    found[offsets[1:] == starts] = -1
    return found


def arrow_text(column: object) -> pa.Array:
    """A column of text (a pandas Series of any string dtype, or Arrow's) as one Arrow
    string array, a missing value an empty one. No copy of an Arrow-backed column in one
    piece."""
    import pyarrow as pa

    text = column if isinstance(column, pa.Array | pa.ChunkedArray) else None
    if text is None:
        text = pa.array(column, type=pa.string(), from_pandas=True)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    return (text.fill_null("") if text.null_count else text).cast(pa.string())


def json_strings(text: pa.Array) -> pa.Array:
    """Each value as a JSON string, exactly as `json.dumps(value, ensure_ascii=False)`
    writes it: in quotes, and only the quote, the backslash and control characters
    escaped. A column with none of those (one look at its bytes) is quoted as it is."""
    import json

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    data, _ = utf8(text)
    quoted = pc.binary_join_element_wise('"', text, '"', "")
    if not len(data) or not ((data < 0x20) | (data == ord('"')) | (data == ord("\\"))).any():
        return quoted
    odd = np.flatnonzero(pc.match_substring_regex(text, r'["\\\x00-\x1f]').to_numpy(False))
    values = quoted.to_numpy(zero_copy_only=False).astype(object)
    values[odd] = [json.dumps(v, ensure_ascii=False) for v in text.take(odd).to_pylist()]
    return pa.array(values, type=pa.string())
