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
import re
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, cast

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from affelios_import import codes
from affelios_import.errors import InputError

DEFAULT_CHUNK_SIZE = 10_000  # rows sent are planned, and their results written, this many at a time
DRY_RUN_CHUNK_SIZE = 50_000  # nothing waits on a dry run's rows: bigger chunks cost less
FIRST_CHUNK_SIZE = 1_000
# Every cell as Arrow text: pandas parses a million rows into it in 0.1 s (against 1.2 s
# for `dtype=str`), and the checks on it run in Arrow's compute kernels.
TEXT = pd.ArrowDtype(pa.string())
DELIMITERS = ",;\t|"
SAMPLE_BYTES = 64 * 1024
SCAN_BLOCK_BYTES = 256 * 1024
_PAD = "\x00pad"  # names of the padding columns that catch the fields of long rows
GZIP_MAGIC = b"\x1f\x8b"
_SEP_LINE = re.compile(r"sep=(.)\r?\n")
# The starts of files that are not text: (magic bytes, what they are). Workbooks (ZIP
# and OLE files) never get here: they are read by affelios_import.output.workbook.
_BINARY = (
    (b"%PDF", "a PDF document, not CSV"),
    (b"\x89PNG", "a PNG image, not CSV"),
    (b"\x7fELF", "a program, not CSV"),
)
UNCLOSED = "a quote opened in this row is never closed: the row runs to the end of the file"

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
    # Data row index -> (error kinds, message): why that row is broken (its field count,
    # an unclosed quote; a workbook's cell that shows what its text does not say).
    broken: dict[int, tuple[str, str]] = field(default_factory=dict)
    gzip: bool = False
    sep_line: bool = False  # Excel's `sep=;` first line
    clean: bool = True  # read with pandas; else with the standard library's reader
    stamp: tuple[int, ...] = ()  # the file as it was checked (see `stamp`)

    @property
    def empty(self) -> bool:
        return not self.header


@dataclass(frozen=True)
class _Shape:
    """How to read a file's text."""

    encoding: str
    delimiter: str
    gzip: bool
    sep_line: bool


def spool_folder(stack: ExitStack) -> Path:
    """A temporary folder of the run's own, removed when `stack` closes."""
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="affelios-import-")))


def spool_stdin(stack: ExitStack) -> Path:
    """Standard input, copied to a temporary file that lives as long as `stack`."""
    path = spool_folder(stack) / "stdin.csv"
    with path.open("wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out)
    return path


def stamp(path: Path) -> tuple[int, ...]:
    """What changes when a file is written to or replaced: its device and inode, its
    size, its modification time and its change time (which no program can set back)."""
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def changed(path: Path, was: tuple[int, ...]) -> str | None:
    """How the file at `path` differs from when it was stamped `was`; None if not."""
    try:
        now = stamp(path)
    except OSError:
        return "it was removed"
    if now[:2] != was[:2]:
        return "another file was put in its place"
    if now[2] != was[2]:
        return f"its size went from {was[2]:,} to {now[2]:,} bytes"
    return "it was written to" if now != was else None


def _open_bytes(path: Path, gz: bool) -> IO[bytes]:
    if gz:
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as raw:
        return raw.read(2) == GZIP_MAGIC


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
    for magic, what in _BINARY:
        if sample.startswith(magic):
            raise InputError(f"{name}: this is {what}")
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    # A NUL byte in a cell makes that row invalid; a file full of them is not text.
    if not wide and sample.count(b"\x00") > max(4, len(sample) // 1000):
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
        before = stamp(path)
        gz = _is_gzip(path)
        with _open_bytes(path, gz) as raw:
            sample = raw.read(SAMPLE_BYTES)
    except FileNotFoundError as exc:
        raise InputError(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{name}: is a directory, not a CSV file") from exc
    except PermissionError as exc:
        raise InputError(f"{name}: not readable (permission denied)") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{name}: cannot be read ({_why(exc, gz=True)})") from exc
    if encoding is None:
        encoding = _guess_encoding(sample)
    else:
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise InputError(f"--encoding {encoding}: no such encoding") from exc
    _refuse_non_csv(name, sample, encoding)
    encoding = _byte_order(sample, encoding)
    text = sample.decode(encoding, errors="replace").lstrip("\ufeff")
    sep_line = _SEP_LINE.match(text)
    if sep_line and delimiter is None:
        delimiter = sep_line.group(1)
    if delimiter is None:
        delimiter = _sniff(text)
    how = _Shape(encoding=encoding, delimiter=delimiter, gzip=gz, sep_line=bool(sep_line))
    try:
        quick = None if sep_line else _scan_quick(path, name=name, how=how)
        source = quick or _scan_rows(path, name=name, how=how)
        if (why := changed(path, before)) is not None:
            raise InputError(
                f"{name}: the file changed while it was checked ({why}); nothing was "
                "sent: run again once it is written"
            )
        return replace(source, stamp=before)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{name}: cannot be read ({_why(exc, gz=gz)})") from exc
    except UnicodeError as exc:  # a codec that cannot start (not a decoding error)
        raise InputError(f"{name}: cannot be read as {encoding} ({exc})") from exc


def _byte_order(sample: bytes, encoding: str) -> str:
    """UTF-16 without a byte-order mark: its byte order, from where the zero bytes of
    ASCII characters fall (Python's `utf-16` codec needs the mark to read on)."""
    if codecs.lookup(encoding).name != "utf-16" or sample.startswith(
        (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    ):
        return encoding
    return "utf-16-le" if sample[1::2].count(0) >= sample[0::2].count(0) else "utf-16-be"


def _why(exc: BaseException, *, gz: bool) -> str:
    if gz and isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile):
        return "the gzip data is truncated or corrupt"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _quotes(path: Path, how: _Shape) -> int:
    """How many quote characters the file holds, decoding it all (UnicodeDecodeError
    when a byte does not decode)."""
    quotes = 0
    with _open_bytes(path, how.gzip) as raw:
        decoder = codecs.getincrementaldecoder(how.encoding)()
        while block := raw.read(1 << 22):
            quotes += decoder.decode(block).count('"')
        decoder.decode(b"", final=True)
    return quotes


def _scan_quick(path: Path, *, name: str, how: _Shape) -> Source | None:
    """The shape of a clean file, in a tenth of the time of `_scan_rows`; None when the
    file is anything but clean (a header not on the first line, bytes that do not
    decode, rows of the wrong width, an odd number of quotes, anything Arrow's CSV
    parser refuses), so that the row-by-row scan finds exactly where, and says so.

    Decoding is checked by the codec over the whole file; rows are counted, and their
    widths checked, by Arrow's CSV parser (C++), converting one column only. Arrow takes
    a quote left open at the end of the file as a field that runs to the end; an odd
    number of quotes in the file is how such a file shows itself here.
    """
    first = _clean_header(path, how)
    if not first:
        return None
    rows = _arrow_rows(path, how, width=len(first))
    if rows is None:
        return None
    return Source(
        path=path, name=name, encoding=how.encoding, delimiter=how.delimiter,
        header=tuple(first), header_lines=1, rows=rows, gzip=how.gzip,
    )  # fmt: skip


def _clean_header(path: Path, how: _Shape) -> list[str] | None:
    """The header, when it is on the first line, the whole file decodes and its quotes
    pair up; None otherwise (or for a blank first line or an empty file)."""
    try:
        with _open_bytes(path, how.gzip) as raw:
            text = io.TextIOWrapper(raw, encoding=how.encoding, newline="")
            records = csv.reader(text, delimiter=how.delimiter)
            first = next(records, [])
            if records.line_num != 1:
                return None  # a header over several lines: let the full scan see to it
        if _quotes(path, how) % 2:
            return None
    except (UnicodeDecodeError, csv.Error, OSError, EOFError, zlib.error):
        return None
    return first or None


def _arrow_rows(path: Path, how: _Shape, *, width: int) -> int | None:
    """The number of data rows as Arrow's CSV parser counts them, converting one column
    only; None if it refuses any row (one not `width` fields wide) or the file."""
    names = [f"c{i}" for i in range(width)]
    refused: list[object] = []

    def refuse(row: object) -> str:
        refused.append(row)
        return "skip"

    encoding = how.encoding
    try:
        reader = pa_csv.open_csv(
            pa.input_stream(str(path), compression="gzip" if how.gzip else None),
            read_options=pa_csv.ReadOptions(
                skip_rows=1,
                column_names=names,
                encoding="utf8" if codecs.lookup(encoding).name == "utf-8-sig" else encoding,
                # The reader reads ahead a few dozen blocks: with the default 1 MB ones it
                # held 37 MB at its peak on a 90 MB file, with these 9 MB.
                block_size=SCAN_BLOCK_BYTES,
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=how.delimiter, newlines_in_values=True, invalid_row_handler=refuse
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
    return None if refused else rows


class _Lines:
    """The lines of a text, remembering those of the record being read (for the check of
    the last record: see `_records`)."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._text)
        self.taken.append(line)
        return line


@dataclass
class _Records:
    """The records of a file as the standard library's reader reads them: the header,
    then each data row with its fields; the same for the scan and the read."""

    header: list[str] = field(default_factory=list)
    header_lines: int = 0  # records up to the end of the header, blank ones included
    unclosed: bool = False  # the last record ends inside a quoted field


def _records(path: Path, source: Source | _Shape, shape: _Records) -> Iterator[list[str]]:
    """The data records (blank lines and lines of only spaces or tabs skipped), after
    filling `shape.header`; `shape.unclosed` is set once the last record has been read."""
    with ExitStack() as stack:
        raw = stack.enter_context(_open_bytes(path, source.gzip))
        text = stack.enter_context(io.TextIOWrapper(raw, encoding=source.encoding, newline=""))
        if source.sep_line:
            text.readline()
            shape.header_lines += 1
        lines = _Lines(text)
        last: list[str] = []  # the lines of the record just read
        for record in csv.reader(lines, delimiter=source.delimiter):
            last, lines.taken = lines.taken, []
            if not shape.header:
                shape.header_lines += 1
            if not record:
                continue
            # A line of spaces or tabs is blank (as pandas has it), but in a one-column
            # file, where it is a value.
            if len(record) == 1 and not record[0].strip(" \t") and len(shape.header) != 1:
                continue
            if not shape.header:
                shape.header = record
                continue
            yield record
        # The reader takes a quote left open at the end of the file as a field running
        # to the end; read strictly, that last record says so.
        if last:
            try:
                list(csv.reader(last, delimiter=source.delimiter, strict=True))
            except csv.Error as exc:
                shape.unclosed = "unexpected end of data" in str(exc)


def _scan_rows(path: Path, *, name: str, how: _Shape) -> Source:
    shape = _Records()
    rows = 0
    broken: dict[int, tuple[str, str]] = {}
    encoding = how.encoding
    try:
        for record in _records(path, how, shape):
            if len(record) != len(shape.header):
                broken[rows] = (
                    codes.item("wrong_field_count"),
                    f"the row has {len(record)} fields but the header has "
                    f"{len(shape.header)}; check its delimiters and quotes",
                )
            rows += 1
    except UnicodeDecodeError as exc:
        row = _first_undecodable_row(path, how)
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
    if shape.unclosed and rows:
        broken[rows - 1] = (codes.item("unclosed_quote"), UNCLOSED)
    return Source(
        path=path, name=name, encoding=encoding, delimiter=how.delimiter,
        header=tuple(shape.header), header_lines=shape.header_lines, rows=rows,
        broken=broken, gzip=how.gzip, sep_line=how.sep_line, clean=False,
    )  # fmt: skip


def _first_undecodable_row(path: Path, how: _Shape) -> int:
    """The 1-based data row (0: the header) holding the first byte that does not decode.

    Only on the error path: the file is read again with undecodable bytes kept as
    surrogates, and the first record holding one is the culprit.
    """
    with (
        _open_bytes(path, how.gzip) as raw,
        io.TextIOWrapper(raw, encoding=how.encoding, errors="surrogateescape", newline="") as text,
    ):
        row = -1
        for record in csv.reader(text, delimiter=how.delimiter):
            if not record:
                continue
            row += 1
            if any("\udc80" <= c <= "\udcff" for cell in record for c in cell):
                return row
    return row


def column_names(header: tuple[str, ...]) -> list[str]:
    """Unique names for the DataFrame: a repeated header gets `.1`, `.2`, as pandas does,
    skipping names the header already has (`note,note.1,note` -> `note.2` for the last)."""
    taken = set(header)
    seen: dict[str, int] = {}
    names = []
    for column in header:
        if column not in seen:
            seen[column] = 0
            names.append(column)
            continue
        count = seen[column]
        while True:
            count += 1
            name = f"{column}.{count}"
            if name not in taken:
                break
        seen[column] = count
        taken.add(name)
        names.append(name)
    return names


def read_chunks(
    source: Source,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    limit: int | None = None,
    first_size: int | None = None,
) -> Iterator[pd.DataFrame]:
    """The file's data rows (the first `limit` of them, and no more than the scan
    counted), `chunk_size` at a time, as text; raises InputError when the file cannot be
    read to the end, after yielding what it could read.

    A long row's extra fields are dropped (the row is invalid: see `Source.broken`); a
    short row's missing fields are empty.
    """
    if source.empty:
        return
    rows = source.rows if limit is None else min(limit, source.rows)
    sizes = _sizes(chunk_size, first_size)
    read = 0
    try:
        reader = _read_clean if source.clean else _read_records
        for chunk, last in _with_last(reader(source, rows, sizes)):
            if last and read + len(chunk) < rows:
                # The file ended early (it changed since it was checked): its last line
                # may be cut short, so it is not taken as a row.
                chunk = chunk.iloc[:-1]
            if source.stamp and (why := changed(source.path, source.stamp)) is not None:
                # The rows from here on may be another file's: none is sent.
                raise InputError(
                    f"{source.name}: the file changed while it was read ({why}): the rows "
                    "from here on may not be the file that was checked, and were not sent; "
                    "run again on the file as it is now"
                )
            read += len(chunk)
            if len(chunk):
                yield chunk
        if read < rows:
            raise InputError(
                f"{source.name}: the file ended before the {rows:,} rows it had when it "
                "was checked (was it changed while it was read?)"
            )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        # The pre-scan is lenient where pandas is not, and a file can change while it
        # is read: the rows read so far are kept, and the message says why it stopped.
        raise InputError(f"{source.name}: cannot be read as CSV ({exc})") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{source.name}: cannot be read ({_why(exc, gz=source.gzip)})") from exc


def _with_last(chunks: Iterator[pd.DataFrame]) -> Iterator[tuple[pd.DataFrame, bool]]:
    """Each chunk, and whether it is the last."""
    previous = next(chunks, None)
    for chunk in chunks:
        assert previous is not None
        yield previous, False
        previous = chunk
    if previous is not None:
        yield previous, True


def _sizes(chunk_size: int, first_size: int | None) -> Iterator[int]:
    """A small first chunk (the first request leaves sooner), then full ones."""
    if first_size is not None:
        yield min(first_size, chunk_size)
    while True:
        yield chunk_size


def _read_clean(source: Source, rows: int, sizes: Iterator[int]) -> Iterator[pd.DataFrame]:
    if rows == 0:
        return
    with pd.read_csv(
        source.path,
        sep=source.delimiter,
        encoding=source.encoding,
        header=None,
        skiprows=source.header_lines,
        names=column_names(source.header),
        dtype=TEXT,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=True,
        chunksize=DEFAULT_CHUNK_SIZE,  # each chunk's size is asked for below
        nrows=rows,
        compression="gzip" if source.gzip else None,
    ) as reader:
        for size in sizes:
            try:
                chunk = reader.get_chunk(size)
            except StopIteration:
                return
            if chunk.empty:
                return
            yield chunk


def _read_records(source: Source, rows: int, sizes: Iterator[int]) -> Iterator[pd.DataFrame]:
    """Rows read by the same reader that scanned them (see the module's docstring)."""
    names = column_names(source.header)
    width = len(names)
    batch: list[list[str]] = []
    start = 0
    size = next(sizes)
    for record in _records(source.path, source, _Records()):
        if start + len(batch) == rows:
            break
        if len(record) != width:
            record = (record + [""] * width)[:width]
        batch.append(record)
        if len(batch) == size:
            yield _frame(batch, names, start)
            start += len(batch)
            batch, size = [], next(sizes)
    if batch:
        yield _frame(batch, names, start)


def _frame(batch: list[list[str]], names: list[str], start: int) -> pd.DataFrame:
    columns = [pa.array(cells, pa.string()) for cells in zip(*batch, strict=True)]
    frame: pd.DataFrame = pa.table(columns, names=names).to_pandas(types_mapper=pd.ArrowDtype)
    frame.index = pd.RangeIndex(start, start + len(batch))
    return frame
