"""ImportConfig: every rule about a setting, checked on construction."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from affelios_import.config import ImportConfig
from affelios_import.errors import ConfigError, SetupError


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"concurrency": 0}, "concurrency=0: expected a whole number from 1 to 512"),
        ({"concurrency": 2.5}, "concurrency=2.5: expected a whole number"),
        ({"concurrency": True}, "concurrency=True: expected a whole number"),
        ({"retries": -1}, "retries=-1: expected a whole number from 0 to 50"),
        ({"timeout": math.inf}, "timeout=inf: expected a finite number above 0"),
        ({"timeout": 0}, "timeout=0: expected a finite number above 0"),
        ({"rate": math.nan}, "rate=nan: expected a finite number above 0"),
        ({"limit": 0}, "limit=0: expected a whole number from 1 or more"),
        ({"delimiter": '"'}, "delimiter='\"': one character that can separate fields"),
        ({"encoding": "klingon"}, "encoding='klingon': no such encoding"),
        ({"brand": 42}, "brand=42: expected a brand id (text)"),
        ({"journal": 5}, "journal=5: expected a path"),
        ({"mapping": {"a": 1}}, "mapping={'a': 1}: expected COLUMN -> FIELD text"),
        (
            {"base_url": "http://example.invalid", "api_key": "k"},
            "plain http would send the API key unencrypted",
        ),
        ({"base_url": "ftp://example.invalid"}, "expected https://host"),
        ({"api_key": "abc\r"}, "api_key: the key ends with a line break"),
    ],
)
def test_a_bad_setting_raises_at_once(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ImportConfig(**values)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert isinstance(caught.value, SetupError)  # the same family as every setup error


def test_good_settings_are_kept_and_the_key_is_not_shown() -> None:
    config = ImportConfig(
        base_url="https://API.example.com/", api_key="s3cret-key", concurrency=64, rate=50
    )
    assert config.base_url == "https://API.example.com"
    assert (config.concurrency, config.rate) == (64, 50)
    assert "s3cret" not in repr(config)
    assert ImportConfig(base_url="http://127.0.0.1:8080").base_url == "http://127.0.0.1:8080"
    assert ImportConfig(base_url="http://example.com", allow_insecure_http=True)
    assert isinstance(ImportConfig().journal, Path)


def test_accept_changes_is_for_customers_only() -> None:
    with pytest.raises(ConfigError, match="only customers can be changed"):
        ImportConfig(kind="transactions", accept_changes=True)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        # The library's errors name its arguments, not the CLI's flags.
        ({"base_url": "http://[::1"}, "base_url: not a URL (Invalid IPv6 URL)"),
        ({"base_url": "http://u:secret@[::1"}, "base_url: not a URL (Invalid IPv6 URL)"),
        ({"base_url": "http://api.test"}, "base_url 'http://api.test': plain http would send"),
        ({"not_the_same_api": ("http://[::1",)}, "not_the_same_api: not a URL"),
        ({"not_the_same_api": ("ftp://x",)}, "not_the_same_api 'ftp://x': expected https"),
        ({"not_the_same_api": "https://x"}, "not_the_same_api='https://x': expected base"),
    ],
)
def test_a_url_that_cannot_be_split_is_a_config_error_not_a_traceback(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        ImportConfig(**settings)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)
    assert "secret" not in str(caught.value) and "--" not in str(caught.value)
