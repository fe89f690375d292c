"""The API key: which keys are usable, and blanking it (and URL credentials) out of text
that came back from the server, in every form a server may echo it in.

A server that echoes the key does not echo it as sent: a JSON body escapes `/` as `\\/`
and `"` as `\\"` (or any character as `\\u002f`), a query string or form percent-encodes
it (`%2F`, `+` for a space), an HTML page escapes it (`&#x2F;`, `&amp;`), and the
excerpt shown in the results collapses runs of whitespace. The secret is matched with
each of its characters in any of these forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from affelios_import.errors import SetupError

BLANKED = "[key]"

_HTML_NAMES = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}


def _hex(code: int, width: int) -> str:
    """`code` as `width` hexadecimal digits, in either case."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{code:0{width}x}")


def _forms(char: str) -> list[str]:
    """Regular expressions for one character in each form a server may write it in."""
    code = ord(char)
    forms = [
        re.escape(char),
        "%" + _hex(code, 2),
        r"\\u" + _hex(code, 4),
        f"&#0*{code};",
        "&#[xX]0*" + _hex(code, 2) + ";",
    ]
    if char in "\"\\/'":
        forms.append(re.escape("\\" + char))
    if char in _HTML_NAMES:
        forms.append(f"&{_HTML_NAMES[char]};")
    if char == "'":
        forms.append("&#39;")
    if char == " ":
        forms.append(r"\+")
    return forms


def _pattern(secret: str) -> str:
    parts: list[str] = []
    for run in re.finditer(r"\s+|\S", secret):
        text = run.group()
        if text.isspace():
            # A run of whitespace, written as any run of whitespace (or its encodings).
            spaces = {form for char in text for form in _forms(char)} | {r"\s"}
            parts.append(f"(?:{'|'.join(sorted(spaces))})+")
        else:
            parts.append(f"(?:{'|'.join(_forms(text))})")
    return "".join(parts)


class Redactor:
    """Blanks secrets out of text, whatever form they were echoed in."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        kept = sorted({s for s in secrets if s and s.strip()}, key=len, reverse=True)
        self._regex = re.compile("|".join(_pattern(s) for s in kept)) if kept else None
        # The longest form a secret may take: a text cut short may end in a part of one.
        self.longest = max((10 * len(s) for s in kept), default=0)

    def __call__(self, text: str) -> str:
        if self._regex is None:
            return text
        return self._regex.sub(BLANKED, text)


def check_api_key(key: str, *, source: str) -> str:
    """The key as it will be sent, or a SetupError saying what is wrong with it (never
    showing it): it goes in an HTTP header, so visible ASCII with inner spaces only.
    """
    if key.startswith("\ufeff"):
        raise SetupError(
            f"{source}: the key starts with a byte-order mark (saved as 'UTF-8 with BOM'?); "
            "save it as plain text"
        )
    if not key.strip():
        raise SetupError(f"{source}: the key is empty")
    if "\r" in key.rstrip("\r\n") or "\n" in key.strip("\r\n"):
        raise SetupError(f"{source}: the key has a line break inside it; it must be one line")
    if key.endswith("\r") or key.endswith("\n"):
        raise SetupError(
            f"{source}: the key ends with a line break (a Windows CRLF .env file?); "
            "remove the carriage return"
        )
    if key != key.strip():
        raise SetupError(f"{source}: the key starts or ends with whitespace; remove it")
    if not key.isascii():
        at = next(i for i, c in enumerate(key) if not c.isascii())
        raise SetupError(
            f"{source}: the key has a non-ASCII character at position {at + 1} "
            "(an encoding mix-up?); API keys are plain ASCII"
        )
    if any(not (c.isprintable() or c == " ") for c in key):
        raise SetupError(f"{source}: the key has a control character in it")
    return key
