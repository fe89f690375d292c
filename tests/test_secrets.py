"""The key and URL credentials: never in any output, whatever form a server echoes them in;
an unusable key is a usage error that does not show it."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from aiohttp import web
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affelios_import.cli.main import main
from affelios_import.redact import Redactor
from affelios_import.urls import check as check_url
from tests.conftest import API_KEY, RunningSandbox, good_rows, write_csv
from tests.hostile import serve


def echoes(key: str) -> list[str]:
    """The key as servers echo it back: as is, JSON-escaped (with `\\/` too, or every
    character as `\\u00XX`), percent-encoded (either case, `+` for spaces), HTML-escaped
    (named or numeric), with its whitespace collapsed."""
    as_json = json.dumps(key)[1:-1]
    return [
        key,
        as_json,
        as_json.replace("/", "\\/"),
        "".join(f"\\u{ord(c):04x}" for c in key),
        quote(key, safe=""),
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(key, safe="")),
        quote_plus(key, safe=""),
        html.escape(key),
        "".join(f"&#x{ord(c):X};" for c in key),
        " ".join(key.split()),
    ]


def outputs(folder: Path, stderr: str) -> dict[str, str]:
    found = {"stderr": stderr}
    for path in folder.iterdir():
        found[path.name] = path.read_bytes().decode("utf-8", errors="replace")
    return found


# Printable ASCII, as the tool accepts it (no surrounding whitespace); long and varied
# enough, as real keys are, that no output holds it by chance. Hypothesis also draws
# strings from the constants of the code it tests (a key `rows_missing` is found in
# every summary, echoed or not): no key is one of the project's own words.
KEYS = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=12, max_size=40)
OWN_TEXT = "\n".join(
    path.read_text(encoding="utf-8")
    for folder in ("etl", "schemas", "tests")
    for path in (Path(__file__).parents[1] / folder).rglob("*.py")
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=KEYS.filter(lambda k: k == k.strip() and len(set(k)) >= 8 and k not in OWN_TEXT))
def test_a_key_echoed_in_any_encoding_reaches_no_output(
    tmp_path_factory: pytest.TempPathFactory, key: str
) -> None:
    folder = tmp_path_factory.mktemp("run")
    source = write_csv(folder / "c.csv", good_rows(4))

    async def echo(request: web.Request) -> web.StreamResponse:
        await request.read()
        sent = request.headers["X-Api-Key"]
        if request.headers.get("X-Probe"):  # not sent by the tool
            raise AssertionError
        forms = echoes(sent)
        body = json.dumps({"errors": [f"bad key {f}" for f in forms], "raw": forms}) + "\n"
        body += "<p>" + " ".join(forms) + "</p>"
        echo.calls += 1  # type: ignore[attr-defined]
        if echo.calls % 4 == 1:  # type: ignore[attr-defined]
            location = f"https://login.test/{quote(sent, safe='')}/{sent}"
            return web.Response(status=302, headers={"Location": location, "X-Echo": quote(sent)})
        if echo.calls % 4 == 2:  # type: ignore[attr-defined]
            return web.Response(status=201, text=body, content_type="text/html")
        if echo.calls % 4 == 3:  # type: ignore[attr-defined]
            return web.Response(status=409, text=body)
        return web.Response(status=422, text=body)

    echo.calls = 0  # type: ignore[attr-defined]
    with serve(echo) as url:
        result = CliRunner().invoke(
            main,
            [
                str(source), "--base-url", url, "--journal", str(folder / "j.db"),
                "--retries", "0", "--concurrency", "1",
                "--summary-json", str(folder / "s.json"), "--report-html", str(folder / "r.html"),
                "--log-file", str(folder / "log.jsonl"), "--log-format", "json", "-v",
            ],
            env={"AFFELIOS_API_KEY": key, "AFFELIOS_BASE_URL": None},
        )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert echo.calls == 4  # type: ignore[attr-defined]
    for name, text in outputs(folder, result.stderr + result.stdout).items():
        for form in echoes(key):
            assert form not in text, (name, form)
    assert "[key]" in (folder / "c.results.csv").read_text()


def test_the_redactor_blanks_every_echo() -> None:
    key = 'k3y/with+base64=and"quotes\\and  spaces<&>'
    redact = Redactor([key])
    for form in echoes(key):
        assert redact(f"x {form} y") == "x [key] y", form


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("\ufeffabc123", "the key starts with a byte-order mark"),
        ("abc123\r", "the key ends with a line break (a Windows CRLF .env file?)"),
        ("abc\n123", "the key has a line break inside it"),
        ("abcé123", "the key has a non-ASCII character at position 4"),
        (" abc123", "the key starts or ends with whitespace"),
        ("abc\x01123", "the key has a control character in it"),
    ],
)
def test_an_unusable_key_in_the_environment_is_a_usage_error(
    runner: CliRunner, sandbox: RunningSandbox, tmp_path: Path, key: str, message: str
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(2))
    journal = tmp_path / "j.db"
    args = [str(source), "--base-url", sandbox.url, "--journal", str(journal)]
    result = runner.invoke(main, args, env={"AFFELIOS_API_KEY": key})
    assert result.exit_code == 2
    assert result.stderr.startswith(f"affelios-import: AFFELIOS_API_KEY: {message}")
    assert result.stderr.count("\n") == 1
    assert key.strip() not in result.stderr
    assert sandbox.server.stats["requests"] == 0
    assert not journal.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("abc123\n".encode("utf-16"), "the file is UTF-16 text; save it as plain ASCII"),
        ("abc123\n".encode("utf-16-le"), "the file is UTF-16 text; save it as plain ASCII"),
        ("abcé123".encode("latin-1"), "the file is not UTF-8 text (Latin-1 or another code page?)"),
        ("\ufeffabc123\n".encode(), "the key starts with a byte-order mark"),
        (b"abc\n123\n", "the key has a line break inside it"),
    ],
)
def test_an_unusable_key_file_is_a_usage_error(
    runner: CliRunner, tmp_path: Path, content: bytes, message: str
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(2))
    key_file = tmp_path / "key"
    key_file.write_bytes(content)
    result = runner.invoke(
        main, [str(source), "--api-key-file", str(key_file), "--journal", str(tmp_path / "j.db")]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"affelios-import: --api-key-file {key_file}: {message}")
    assert "abc" not in result.stderr
    assert not (tmp_path / "j.db").exists()


def test_a_key_file_with_a_crlf_line_end_is_fine(
    runner: CliRunner, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(2))
    key_file = tmp_path / "key"
    key_file.write_bytes(API_KEY.encode() + b"\r\n")
    args = [
        str(source),
        "--api-key-file",
        str(key_file),
        "--base-url",
        sandbox.url,
        "--journal",
        str(tmp_path / "j.db"),
    ]
    assert runner.invoke(main, args).exit_code == 0
    assert len(sandbox.server.customers) == 2


def test_credentials_in_the_base_url_are_refused_and_shown_nowhere(
    runner: CliRunner, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """They went out as HTTP Basic authentication; the key is the only credential."""
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    for url in (
        sandbox.url.replace("http://", "http://gateway-user:s3cretpw@"),
        sandbox.url.replace("http://", "http://gateway-user@"),
        "http://u:s3cretpw@api.example.com",
    ):
        refused = runner.invoke(
            main,
            [str(source), "--base-url", url, "--journal", str(tmp_path / "j.db")],
            env={"AFFELIOS_API_KEY": API_KEY},
        )
        assert refused.exit_code == 2, refused.stderr
        assert "remove the user and password from the URL" in refused.stderr
        assert "s3cretpw" not in refused.stderr and "gateway-user" not in refused.stderr
    assert sandbox.server.stats["requests"] == 0


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "localhost.", "LOCALHOST", "[::1]"])
def test_every_spelling_of_loopback_is_loopback(host: str) -> None:
    assert check_url(f"http://{host}:8080", allow_insecure_http=False)
