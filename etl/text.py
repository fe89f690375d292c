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
    import pyarrow as pa

    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if text.null_count:
        text = text.fill_null("")
    text = text.cast(pa.string())
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
