"""The kinds of record the importer sends, each a plug-in (see `kinds.base.Kind`).

    kind = kinds.get("transactions")

A kind's module is imported when it is first asked for. A third kind is one new module
with a `KIND` (a `Kind`), registered in `REGISTERED`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from affelios_import.kinds.base import Kind

# name (as --kind says it) -> the module that holds it
REGISTERED = {
    "customers": "affelios_import.kinds.customers",
    "transactions": "affelios_import.kinds.transactions",
}
NAMES = tuple(REGISTERED)


def get(name: str) -> Kind:
    """The kind called `name` (one of `NAMES`)."""
    kind: Kind = import_module(REGISTERED[name]).KIND
    return kind
