"""Row errors as data: every reason a row is `invalid` or `failed` has a stable code.

The results file's `error_kind` column holds a row's codes, each with the column it is
about where there is one (`date_not_zulu:registrationDate`), joined by `; ` in the order
of the `error` column's messages. The summary (and `--summary-json`'s `top_errors`, which
monitoring reads) groups rows by these codes, labelled from the table below, never by
parsing the words of a message: the words may be reworded, the codes do not change.
"""

from __future__ import annotations

from functools import lru_cache

from affelios_import.schemas.customer import EXPECT_BOOLEAN, EXPECT_PRESENT, EXPECT_ZULU, NOT_REAL
from affelios_import.schemas.transaction import EXPECT_AMOUNT

# code -> label ({column} and {status} filled in), in the README's order.
CODES: dict[str, str] = {
    # invalid: nothing was sent
    "required_missing": f"{{column}}: expected {EXPECT_PRESENT}",
    "date_not_zulu": f"{{column}}: expected {EXPECT_ZULU}",
    "date_not_real": f"{{column}}: {NOT_REAL}",
    "boolean_invalid": f"{{column}}: expected {EXPECT_BOOLEAN}",
    "amount_invalid": f"{{column}}: expected {EXPECT_AMOUNT}",
    "brand_mismatch": "{column}: expected the brand given with --brand",
    "nul_byte": "{column}: holds a NUL byte",
    "duplicate_row": "duplicate of an earlier row",
    "near_duplicate_row": "the key of an earlier row, but for case or spaces",
    "wrong_field_count": "wrong number of fields",
    "unclosed_quote": "a quote never closed",
    "cell_error": "{column}: the cell shows an error (#N/A, #DIV/0!)",
    "formula_without_value": "{column}: a formula whose value the file does not hold",
    "merged_cell": "{column}: inside a merged cell",
    "hidden_row": "a hidden row of the sheet",
    "cell_too_long": "{column}: more characters than a workbook cell holds",
    "cell_cut": "{column}: cut to fit a workbook cell",
    "key_changed": "the key is not the one this errors file was written with",
    # failed: sent, and not done
    "no_customer_id": "HTTP {status} without a customer id",
    "redirected": "the API redirected: check --base-url",
    "conflict": "HTTP 409, a conflict other than an existing customer",
    "key_refused": "HTTP {status}: the API refused the key",
    "refused": "HTTP {status}",
    "gave_up_http": "gave up: HTTP {status}",
    "gave_up_timeout": "gave up: timed out",
    "gave_up_connection": "gave up: connection lost",
    "stopped_before_retry": "the run stopped before the retry",
    "sent_to_other_api": "sent before to another URL of perhaps this API",
    "interrupted_in_flight": "interrupted with the request in flight",
    "answer_unreadable": "the answer could not be read",
    # unconfirmed: a transaction that may have reached the API, never sent again
    "unconfirmed": "may have reached the API, its answer lost: check in Affelios",
    "unconfirmed_earlier": "an earlier run may have sent it: check in Affelios",
    # corrected: a transaction sent before whose row now holds other values
    "corrected": "sent before with other values: correct it in Affelios",
    # claimed: another run sharing the journal is sending it
    "claimed": "another run sharing the journal is sending it",
}


# Failed rows that a person must fix (the API refused the row itself); every other
# failed row, like a not_sent one, needs only another try (the next run sends it again).
TO_FIX_CODES = frozenset({"refused", "conflict"})


# What a row of the errors file asks of whoever reads it (its `to_do` column): `fix` it
# (a person must change it), `retry` (the next run sends it again by itself), or `check`
# (it may have reached the API: look in Affelios).
FIX, RETRY, CHECK = "fix", "retry", "check"


def to_do(status: str, error_kind: str) -> str:
    """What a row of `status` with these codes asks for (see FIX, RETRY, CHECK); "" for
    a row that asks nothing."""
    if status in ("invalid", "corrected"):
        return FIX
    if status == "failed":
        codes = {one.partition(":")[0] for one in error_kind.split("; ")}
        return FIX if codes & TO_FIX_CODES else RETRY
    if status == "unconfirmed":
        return CHECK
    return RETRY if status == "not_sent" else ""


def item(code: str, column: str = "") -> str:
    """One code as the `error_kind` column writes it."""
    assert code in CODES, code
    return f"{code}:{column}" if column else code


@lru_cache(maxsize=4096)  # the same few codes repeat over many rows
def labels(error_kind: str, http_status: object = "") -> tuple[str, ...]:
    """The summary's labels for a row's `error_kind` (unknown codes, from a newer
    version's results file, are shown as they are)."""
    found = []
    for one in filter(None, error_kind.split("; ")):
        code, _, column = one.partition(":")
        template = CODES.get(code)
        found.append(
            one if template is None else template.format(column=column, status=http_status)
        )
    return tuple(found)
