"""Real exports as they come: encodings, dialects, ragged rows, empty and non-CSV input."""

from __future__ import annotations

import codecs
import csv
import gzip
import json
from pathlib import Path

import httpx
import pytest

from affelios_import.errors import InputError
from affelios_import.input.read import inspect, read_chunks
from affelios_import.settings import Settings
from tests.conftest import read_results, run

HEADER = ["External ID", "Brand", "Registration Date", "Click Key", "username"]
# Cell texts that must reach the request exactly, whatever the file's encoding or dialect.
ROWS = [
    ["000123", "casino-x", "2025-06-28T19:29:48.174Z", "1e5", "Zoë Müller"],
    ["C-2", "casino-x", "2025-06-28T19:29:48Z", "clk;2|x", 'O\'Brien, "Paddy"'],
    ["C-3", "casino-x", "2025-06-28T19:29:48Z", "clk\t3", "two\nlines € naïve"],
]


def quote(cell: str, delimiter: str) -> str:
    if any(c in cell for c in (delimiter, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def export(
    path: Path,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    newline: str = "\n",
    rows: list[list[str]] = ROWS,
    trailing_blank_lines: int = 0,
) -> Path:
    lines = [delimiter.join(quote(c, delimiter) for c in row) for row in [HEADER, *rows]]
    text = newline.join(lines) + newline + newline * trailing_blank_lines
    path.write_bytes(text.encode(encoding))
    return path


def sent_bodies(tmp_path: Path, source: Path, **overrides: object) -> list[dict[str, object]]:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"id": str(len(bodies))})

    values: dict[str, object] = {
        "input": source,
        "out": tmp_path / "out.csv",
        "journal": ":memory:",
        "base_url": "https://api.test",
        "api_key": "k",
        "mapping": {"Brand": "externalBrandId"},
        "concurrency": 1,
    }
    summary = run(Settings(**(values | overrides)), transport=httpx.MockTransport(handler))  # type: ignore[arg-type]
    assert summary.counts["created"] == len(bodies)
    return bodies


def assert_sent_exactly(bodies: list[dict[str, object]]) -> None:
    got = sorted((str(b["externalId"]), str(b["clickId"]), str(b["username"])) for b in bodies)
    assert got == sorted((r[0], r[3], r[4]) for r in ROWS)


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [
        ("utf-8", "utf-8-sig"),
        ("utf-8-sig", "utf-8-sig"),
        ("utf-16", "utf-16"),  # Excel's "Unicode text" (with a byte-order mark)
        ("cp1252", "cp1252"),
    ],
)
def test_encodings_are_detected_and_text_survives(
    tmp_path: Path, encoding: str, detected: str
) -> None:
    source = export(tmp_path / "in.csv", encoding=encoding)
    assert inspect(source).encoding == detected
    assert_sent_exactly(sent_bodies(tmp_path, source))


def test_an_encoding_can_be_given(tmp_path: Path) -> None:
    source = export(tmp_path / "in.csv", encoding="latin-1", rows=ROWS[:2])
    assert inspect(source, encoding="latin-1").encoding == "latin-1"
    bodies = sent_bodies(tmp_path, source, encoding="latin-1")
    assert {b["username"] for b in bodies} == {"Zoë Müller", 'O\'Brien, "Paddy"'}
    with pytest.raises(InputError, match="--encoding klingon: no such encoding"):
        inspect(source, encoding="klingon")


def test_an_undecodable_byte_names_the_row_and_suggests_an_encoding(tmp_path: Path) -> None:
    rows = [[f"C{i}", "b", "2025-06-28T19:29:48Z", "", "plain"] for i in range(5000)]
    rows[4000][4] = "Zoë"
    source = export(tmp_path / "in.csv", rows=rows)
    data = source.read_bytes().replace("Zoë".encode(), "Zoë".encode("cp1252"))
    source.write_bytes(data)  # UTF-8 everywhere but one Windows-1252 byte, far down
    with pytest.raises(InputError) as caught:
        inspect(source)
    assert str(caught.value) == (
        f"{source}: row 4001 cannot be decoded (try --encoding cp1252 for Windows or "
        "Latin-1 exports): invalid continuation byte, byte 0xeb"
    )


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_dialects_are_sniffed_and_text_survives(
    tmp_path: Path, delimiter: str, newline: str
) -> None:
    source = export(tmp_path / "in.csv", delimiter=delimiter, newline=newline)
    assert inspect(source).delimiter == delimiter
    assert_sent_exactly(sent_bodies(tmp_path, source))


def test_cells_that_look_like_another_delimiter_do_not_fool_the_sniffer(
    tmp_path: Path,
) -> None:
    # Found by the text round-trip property: a cell `";` is written quoted, its quote
    # doubled, and the sniffer took `;` for the delimiter.
    rows = [[ext, "casino-x", "2025-06-28T19:29:48Z", "c", "0"] for ext in ('";', "0")]
    source = export(tmp_path / "in.csv", rows=rows)
    assert inspect(source).delimiter == ","
    assert sorted(str(b["externalId"]) for b in sent_bodies(tmp_path, source)) == ['";', "0"]


def test_a_delimiter_can_be_given(tmp_path: Path) -> None:
    source = export(tmp_path / "in.csv", delimiter="|")
    assert inspect(source, delimiter="|").delimiter == "|"
    assert_sent_exactly(sent_bodies(tmp_path, source, delimiter="|"))


def test_blank_trailing_lines_are_not_rows(tmp_path: Path) -> None:
    source = export(tmp_path / "in.csv", newline="\r\n", trailing_blank_lines=3)
    assert inspect(source).rows == 3
    sent_bodies(tmp_path, source)
    assert len(read_results(tmp_path / "out.csv")) == 3


def test_gzip_is_read_directly(tmp_path: Path) -> None:
    plain = export(tmp_path / "in.csv", delimiter=";")
    source = tmp_path / "in.csv.gz"
    source.write_bytes(gzip.compress(plain.read_bytes()))
    assert inspect(source).delimiter == ";"
    assert_sent_exactly(sent_bodies(tmp_path, source))


def test_ragged_rows_are_invalid_and_the_rest_goes_on(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "externalId,externalBrandId,registrationDate\n"
        "C1,b,2025-06-28T19:29:48Z\n"
        "C2,b\n"  # too few
        "C3,b,2025-06-28T19:29:48Z,surprise,more\n"  # too many
        'C4,b,"2025-06-28T19:29:48Z"\n'
        "C5,b,\n"  # three fields, the last empty: not ragged, just invalid
    )
    found = inspect(source)
    assert list(found.broken) == [1, 2]
    assert [len(c) for c in read_chunks(found, chunk_size=2)] == [2, 2, 1]
    bodies = sent_bodies(tmp_path, source, mapping={})
    assert sorted(str(b["externalId"]) for b in bodies) == ["C1", "C4"]
    results = read_results(tmp_path / "out.csv")
    assert [r["status"] for r in results] == ["created", "invalid", "invalid", "created", "invalid"]
    assert results[1]["error"] == (
        "the row has 2 fields but the header has 3; check its delimiters and quotes"
    )
    assert results[2]["error"].startswith("the row has 5 fields but the header has 3")
    assert results[2]["externalId"] == "C3"
    assert results[4]["error"].startswith("registrationDate empty")


def test_an_empty_file_and_a_header_alone_have_nothing_to_import(tmp_path: Path) -> None:
    for text in ("", "\n\n", "externalId,externalBrandId,registrationDate\n"):
        source = tmp_path / "in.csv"
        source.write_text(text)
        bodies = sent_bodies(tmp_path, source, mapping={})
        assert bodies == []
        header = (tmp_path / "out.csv").read_text().splitlines()
        assert len(header) == 1
        assert header[0].startswith("row,status,affelios_id,http_status,attempts,error")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "this is a PNG image, not CSV"),
        (bytes(range(256)) * 40, "this is a binary file, not CSV text"),
        (b'[{"externalId": "C1"}]', "this looks like JSON, not CSV"),
        (b'  {"customers": []}', "this looks like JSON, not CSV"),
        (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "looks like HTML"),
    ],
)
def test_files_that_are_not_csv_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    with pytest.raises(InputError, match=message):
        inspect(source)


def test_a_utf16_file_without_a_bom_is_not_mistaken_for_binary_when_named(
    tmp_path: Path,
) -> None:
    source = export(tmp_path / "in.csv", encoding="utf-16-le", delimiter="\t")
    assert not source.read_bytes().startswith(codecs.BOM_UTF16_LE)
    assert_sent_exactly(sent_bodies(tmp_path, source, encoding="utf-16-le"))


@pytest.mark.parametrize(
    "head",
    ['"external\nId",externalBrandId,registrationDate\n', "\n\nexternalId,externalBrandId,x\n"],
    ids=["line break in a header cell", "blank lines before the header"],
)
def test_every_row_after_an_unusual_header_is_read(tmp_path: Path, head: str) -> None:
    source = tmp_path / "c.csv"
    rows = "".join(f"C{i},b,2025-06-28T19:29:48.174Z\n" for i in range(3))
    source.write_text(head + rows, encoding="utf-8")
    found = inspect(source)
    assert found.rows == 3
    assert [c.iloc[:, 0].tolist() for c in read_chunks(found)] == [["C0", "C1", "C2"]]


def test_a_small_first_chunk_then_full_ones_and_none_after_a_bare_header(
    tmp_path: Path,
) -> None:
    source = tmp_path / "c.csv"
    source.write_text("externalId,x\n" + "".join(f"C{i},v\n" for i in range(5)), encoding="utf-8")
    chunks = list(read_chunks(inspect(source), chunk_size=2, first_size=1))
    assert [c.index.tolist() for c in chunks] == [[0], [1, 2], [3, 4]]
    source.write_text("externalId,x\n", encoding="utf-8")
    assert list(read_chunks(inspect(source), chunk_size=2, first_size=1)) == []


def test_lines_of_spaces_are_blank_and_ragged_rows_stay_aligned(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "externalId,externalBrandId,registrationDate,username\n"
        "C1,b,2025-06-28T19:29:48Z,Ann\n"
        " \n"
        "C2,b,2025-06-28T19:29:48Z,Bo\n"
        "\t\n"
        'C3,b,2025-06-28T19:29:48Z,"Smith", " John"\n'  # five fields
        "C4,b,2025-06-28T19:29:48Z,Cy\n"
        "C5,b\n"  # two fields
        "C6,b,2025-06-28T19:29:48Z,Di\n"
    )
    bodies = sent_bodies(tmp_path, source, mapping={})
    assert [(b["externalId"], b["username"]) for b in bodies] == [
        ("C1", "Ann"),
        ("C2", "Bo"),
        ("C4", "Cy"),
        ("C6", "Di"),
    ]
    results = read_results(tmp_path / "out.csv")
    assert [(r["externalId"], r["status"]) for r in results] == [
        ("C1", "created"),
        ("C2", "created"),
        ("C3", "invalid"),
        ("C4", "created"),
        ("C5", "invalid"),
        ("C6", "created"),
    ]
    assert results[2]["error"].startswith("the row has 5 fields but the header has 4")
    assert results[4]["error"].startswith("the row has 2 fields but the header has 4")


def test_a_nul_byte_in_any_cell_makes_its_row_invalid(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(
        b"externalId,externalBrandId,registrationDate,note\n"
        b"C1,b,2025-06-28T19:29:48Z,ok\n"
        b"C2,b,2025-06-28T19:29:48Z,bad\x00note\n"
        b"C\x003,b,2025-06-28T19:29:48Z,\n"
    )
    bodies = sent_bodies(tmp_path, source, mapping={})
    assert [b["externalId"] for b in bodies] == ["C1"]
    results = read_results(tmp_path / "out.csv")
    assert [r["status"] for r in results] == ["created", "invalid", "invalid"]
    assert results[1]["error"] == "note holds a NUL byte (\\x00), which no API field may; not sent"
    assert results[2]["error"].startswith("externalId holds a NUL byte")


@pytest.mark.parametrize("name", ["export.CSV.GZ", "export.csv.gz", "export.dat"])
def test_gzip_is_known_by_its_content_not_its_name(tmp_path: Path, name: str) -> None:
    source = tmp_path / name
    source.write_bytes(gzip.compress(export(tmp_path / "plain.csv").read_bytes()))
    assert_sent_exactly(sent_bodies(tmp_path, source))


@pytest.mark.parametrize("cut", ["truncated", "corrupt"])
def test_a_damaged_gzip_file_is_one_line_before_anything_is_sent(tmp_path: Path, cut: str) -> None:
    data = gzip.compress(export(tmp_path / "plain.csv").read_bytes())
    source = tmp_path / "in.csv.gz"
    if cut == "truncated":
        source.write_bytes(data[: len(data) // 2])
    else:
        source.write_bytes(data[:12] + bytes(24) + data[36:])
    with pytest.raises(
        InputError, match=r"cannot be read \(the gzip data is truncated or corrupt\)$"
    ):
        sent_bodies(tmp_path, source)


def test_excels_sep_line_names_the_delimiter(tmp_path: Path) -> None:
    plain = export(tmp_path / "plain.csv", delimiter=";", newline="\r\n")
    source = tmp_path / "in.csv"
    source.write_bytes(b"sep=;\r\n" + plain.read_bytes())
    found = inspect(source)
    assert (found.delimiter, found.header, found.rows) == (";", tuple(HEADER), 3)
    assert_sent_exactly(sent_bodies(tmp_path, source))


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_reads_when_named(tmp_path: Path, encoding: str) -> None:
    source = export(tmp_path / "in.csv", encoding=encoding)
    assert_sent_exactly(sent_bodies(tmp_path, source, encoding="utf-16"))


def test_repeated_header_names_keep_their_own_cells(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "externalId,externalBrandId,registrationDate,note,note.1,note,externalId\n"
        "C1,b,2025-06-28T19:29:48Z,first,second,third,old-id\n"
    )
    bodies = sent_bodies(tmp_path, source, mapping={"#7": "-"})
    assert [b["externalId"] for b in bodies] == ["C1"]
    with (tmp_path / "out.csv").open(newline="") as f:
        header, row = list(csv.reader(f))
    assert header[7:] == [  # every name once, as in the DataFrame
        "externalId",
        "externalBrandId",
        "registrationDate",
        "note",
        "note.1",
        "note.2",
        "externalId.1",
    ]
    assert row[7:] == ["C1", "b", "2025-06-28T19:29:48Z", "first", "second", "third", "old-id"]
