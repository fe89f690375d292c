"""Read the customer CSV as text, in chunks, so memory does not grow with the file.

Two passes over the file, both streaming:

1. `inspect`: before anything is sent, the file is checked whole: its encoding (a
   byte-order mark says UTF-8 or UTF-16; otherwise UTF-8 if the start of the file is
   UTF-8, else Windows-1252), its delimiter (sniffed among `,` `;` tab `|`), that it
   decodes all the way (else the error names the row and suggests `--encoding`), how
   many rows it has, and which rows have more or fewer fields than the header (pandas'
   fast parser silently pads short rows, so it cannot tell). Files that are plainly not
   CSV (binary, JSON, HTML) are refused here. A clean file is checked by its codec and
   Arrow's CSV parser (0.15 s a million rows); any other, row by row with the standard
   library's CSV reader (1 s a million rows), which finds the exact rows.
2. `read_chunks`: pandas' C parser reads the data, every cell as text (`000123`, `1e5`,
   `NA` and empty stay as written), `chunk_size` rows at a time. The index of each chunk
   is the 0-based data row number across the whole file.

`-` reads standard input (spooled to a temporary file, since it is read twice);
`.gz` files are read directly.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from etl.errors import InputError

DEFAULT_CHUNK_SIZE = 10_000  # rows sent are planned, and their results written, this many at a time
DRY_RUN_CHUNK_SIZE = 25_000  # nothing waits on a dry run's rows: bigger chunks cost less
FIRST_CHUNK_SIZE = 1_000
# Every cell as Arrow text: pandas parses a million rows into it in 0.1 s (against 1.2 s
# for `dtype=str`), and the checks on it run in Arrow's compute kernels.
TEXT = pd.ArrowDtype(pa.string())
DELIMITERS = ",;\t|"
SAMPLE_BYTES = 64 * 1024
SCAN_BLOCK_BYTES = 256 * 1024
_PAD = "\x00pad"  # names of the padding columns that catch the fields of long rows

csv.field_size_limit(2**31 - 1)


@dataclass(frozen=True, kw_only=True)
class Source:
    """What `inspect` learned of an input file."""

    path: Path  # the file to read (for standard input, a temporary copy)
    name: str  # how to call it in messages
    encoding: str
    delimiter: str
    header: tuple[str, ...]
    # Records up to the end of the header, blank lines included: pandas' `skiprows`
    # counts a header whose quoted cell holds a line break as one.
    header_lines: int = 1
    rows: int
    ragged: dict[int, int] = field(default_factory=dict)  # data row index -> field count

    @property
    def empty(self) -> bool:
        return not self.header


def spool_stdin(stack: ExitStack) -> Path:
    """Standard input, copied to a temporary file that lives as long as `stack`."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="affelios-import-")))
    path = folder / "stdin.csv"
    with path.open("wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out)
    return path


def _open_bytes(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _guess_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut by the sample's end
            return "cp1252"
    return "utf-8-sig"  # UTF-8; a BOM-less file reads the same with this codec


def _refuse_non_csv(name: str, sample: bytes, encoding: str) -> None:
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    if not wide and b"\x00" in sample:
        raise InputError(f"{name}: this is a binary file, not CSV text")
    start = sample.lstrip(codecs.BOM_UTF8 + b" \t\r\n")[:15].lower()
    if start[:1] in (b"{", b"["):
        raise InputError(f"{name}: this looks like JSON, not CSV; export the customers as CSV")
    if start[:1] == b"<":  # <!DOCTYPE html>, <html>, <?xml ...>
        raise InputError(
            f"{name}: this looks like HTML or XML (a web page, or an error page saved "
            "in place of the export?), not CSV"
        )


def _sniff(text: str) -> str:
    """The delimiter, from the header line first: data cells can fool the sniffer (a
    cell `";`, quoted with its quote doubled, reads as a `;`-delimited field), column
    names rarely do.
    """
    lines = text.splitlines()
    header = lines[0] if lines else ""
    sample = "\n".join(lines[:-1] if len(lines) > 1 else lines)  # drop a cut last line
    for evidence in (header, sample):  # a one-column header says nothing: then the rows
        try:
            return csv.Sniffer().sniff(evidence, delimiters=DELIMITERS).delimiter
        except csv.Error:
            continue
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def inspect(
    path: Path,
    *,
    name: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Source:
    """Check the whole file as CSV text and learn its shape; raises InputError."""
    name = name or str(path)
    try:
        with _open_bytes(path) as raw:
            sample = raw.read(SAMPLE_BYTES)
    except FileNotFoundError as exc:
        raise InputError(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{name}: is a directory, not a CSV file") from exc
    except PermissionError as exc:
        raise InputError(f"{name}: not readable (permission denied)") from exc
    except (OSError, EOFError) as exc:
        raise InputError(f"{name}: cannot be read ({exc})") from exc
    if encoding is None:
        encoding = _guess_encoding(sample)
    else:
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise InputError(f"--encoding {encoding}: no such encoding") from exc
    _refuse_non_csv(name, sample, encoding)
    if delimiter is None:
        delimiter = _sniff(sample.decode(encoding, errors="replace"))
    return _scan(path, name=name, encoding=encoding, delimiter=delimiter)


def _scan(path: Path, *, name: str, encoding: str, delimiter: str) -> Source:
    """The file's shape: quickly when it is clean, else row by row (see `_scan_quick`)."""
    quick = _scan_quick(path, name=name, encoding=encoding, delimiter=delimiter)
    if quick is not None:
        return quick
    return _scan_rows(path, name=name, encoding=encoding, delimiter=delimiter)


def _scan_quick(path: Path, *, name: str, encoding: str, delimiter: str) -> Source | None:
    """The shape of a clean file, in a tenth of the time of `_scan_rows`; None when the
    file is anything but clean (a header not on the first line, bytes that do not
    decode, rows of the wrong width, anything Arrow's CSV parser refuses), so that the
    row-by-row scan finds exactly where, and says so.

    Decoding is checked by the codec over the whole file; rows are counted, and their
    widths checked, by Arrow's CSV parser (C++), converting one column only.
    """
    try:
        with _open_bytes(path) as raw:
            records = csv.reader(io.TextIOWrapper(raw, encoding=encoding, newline=""))
            first = next(records, [])
            if records.line_num != 1:
                return None  # a header over several lines: let the full scan see to it
        with _open_bytes(path) as raw:
            decoder = codecs.getincrementaldecoder(encoding)()
            while block := raw.read(1 << 22):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except (UnicodeDecodeError, csv.Error, OSError, EOFError):
        return None
    if not first:
        return None  # a blank first line, or an empty file
    names = [f"c{i}" for i in range(len(first))]
    refused: list[object] = []

    def refuse(row: object) -> str:
        refused.append(row)
        return "skip"

    try:
        reader = pa_csv.open_csv(
            pa.input_stream(str(path), compression="detect"),
            read_options=pa_csv.ReadOptions(
                skip_rows=1,
                column_names=names,
                encoding="utf8" if codecs.lookup(encoding).name == "utf-8-sig" else encoding,
                # The reader reads ahead a few dozen blocks: with the default 1 MB ones it
                # held 37 MB at its peak on a 90 MB file, with these 9 MB.
                block_size=SCAN_BLOCK_BYTES,
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=refuse
            ),
            convert_options=pa_csv.ConvertOptions(
                include_columns=names[:1], column_types={names[0]: pa.string()}
            ),
            # malloc's pool, handed back to the system when done (Arrow's default pool
            # keeps what it freed, and the run's peak would carry it).
            memory_pool=pa.system_memory_pool(),
        )
        rows = sum(batch.num_rows for batch in reader)
    except (pa.ArrowException, OSError, UnicodeError):
        return None
    finally:
        pa.system_memory_pool().release_unused()
    if refused:
        return None
    return Source(
        path=path, name=name, encoding=encoding, delimiter=delimiter, header=tuple(first),
        header_lines=1, rows=rows,
    )  # fmt: skip


def _scan_rows(path: Path, *, name: str, encoding: str, delimiter: str) -> Source:
    header: list[str] = []
    header_lines = 0
    rows = 0
    ragged: dict[int, int] = {}
    with ExitStack() as stack:
        raw = stack.enter_context(_open_bytes(path))
        text = stack.enter_context(io.TextIOWrapper(raw, encoding=encoding, newline=""))
        records = csv.reader(text, delimiter=delimiter)
        try:
            for record in records:
                if not header:
                    header_lines += 1
                if not record:
                    continue  # a blank line, skipped as pandas skips it
                if not header:
                    header = record
                    continue
                if len(record) != len(header):
                    ragged[rows] = len(record)
                rows += 1
        except UnicodeDecodeError as exc:
            row = _first_undecodable_row(path, encoding=encoding, delimiter=delimiter)
            where = f"row {row}" if row else "the header"
            hint = " (try --encoding cp1252 for Windows or Latin-1 exports)"
            if codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
                hint = f" as {encoding} (try another --encoding)"
            raise InputError(
                f"{name}: {where} cannot be decoded{hint}: "
                f"{exc.reason}, byte 0x{exc.object[exc.start]:02x}"
            ) from exc
        except csv.Error as exc:
            raise InputError(f"{name}: row {rows + 1}: not valid CSV ({exc})") from exc
    return Source(
        path=path,
        name=name,
        encoding=encoding,
        delimiter=delimiter,
        header=tuple(header),
        header_lines=header_lines,
        rows=rows,
        ragged=ragged,
    )


def _first_undecodable_row(path: Path, *, encoding: str, delimiter: str) -> int:
    """The 1-based data row (0: the header) holding the first byte that does not decode.

    Only on the error path: the file is read again with undecodable bytes kept as
    surrogates, and the first record holding one is the culprit.
    """
    with (
        _open_bytes(path) as raw,
        io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="") as text,
    ):
        row = -1
        for record in csv.reader(text, delimiter=delimiter):
            if not record:
                continue
            row += 1
            if any("\udc80" <= c <= "\udcff" for cell in record for c in cell):
                return row
    return row


def column_names(header: tuple[str, ...]) -> list[str]:
    """Unique names for the DataFrame (a repeated header gets `.1`, `.2`, as pandas does)."""
    seen: dict[str, int] = {}
    names = []
    for column in header:
        count = seen.get(column, 0)
        seen[column] = count + 1
        names.append(column if count == 0 else f"{column}.{count}")
    return names


def read_chunks(
    source: Source,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    limit: int | None = None,
    first_size: int | None = None,
) -> Iterator[pd.DataFrame]:
    """The file's data rows (the first `limit` of them), `chunk_size` at a time, as text.

    A long row's extra fields are dropped (the row is invalid: see `Source.ragged`); a
    short row's missing fields are empty.
    """
    if source.empty:
        return
    extra = max(source.ragged.values(), default=0) - len(source.header)
    names = column_names(source.header) + [f"{_PAD}{i}" for i in range(max(extra, 0))]
    try:
        with pd.read_csv(
            source.path,
            sep=source.delimiter,
            encoding=source.encoding,
            header=None,
            skiprows=source.header_lines,
            names=names,
            dtype=TEXT,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            chunksize=chunk_size,
            nrows=limit,
            compression="infer",
        ) as reader:
            if first_size is not None:  # a small first chunk: the first request leaves sooner
                try:
                    chunk = reader.get_chunk(min(first_size, chunk_size))
                except StopIteration:
                    return
                if chunk.empty:
                    return  # a header and nothing after it
                yield chunk.iloc[:, : len(source.header)] if extra > 0 else chunk
            for chunk in reader:
                yield chunk.iloc[:, : len(source.header)] if extra > 0 else chunk
    except pd.errors.EmptyDataError:
        return  # a header and nothing after it
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        # The pre-scan is lenient where pandas is not (an unclosed quote at the end of
        # the file): the rows read so far are kept, and the message says why it stopped.
        raise InputError(f"{source.name}: cannot be read as CSV ({exc})") from exc
