"""`affelios-journal`'s queries: the whole journal, whatever API it was written for
(a run reads only its own API's entries, by key: see `journal.ledger`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from affelios_import.journal import store
from affelios_import.journal.ledger import Journal
from affelios_import.journal.store import TABLES, select_keys
from affelios_import.keys import Key
from affelios_import.urls import identity

# What `affelios-journal export` writes, one line per customer.
EXPORT_COLUMNS = (
    "externalBrandId", "externalId", "affelios_id", "status",
    "first_recorded_at", "last_recorded_at", "base_url", "sent",
)  # fmt: skip


def stats(journal: Journal) -> list[tuple[str, str, str, int]]:
    """(API, brand, status, records), in that order."""
    if not journal.has_table:
        return []
    return list(
        journal.db.execute(
            f"SELECT base_url, external_brand_id, status, COUNT(*) FROM {journal.table}"
            " GROUP BY base_url, external_brand_id, status ORDER BY 1, 2, 3"
        ).fetchall()
    )


def entries(
    journal: Journal, *, external_id: str | None = None, brand: str | None = None
) -> Iterator[dict[str, str | None]]:
    """Every entry (or those of one id, of one brand), as `EXPORT_COLUMNS`."""
    if not journal.has_table:
        return
    wheres, params = [], []
    for column, value in (("external_id", external_id), ("external_brand_id", brand)):
        if value is not None:
            wheres.append(f"{column} = ?")
            params.append(value)
    where = f" WHERE {' AND '.join(wheres)}" if wheres else ""
    first, sent = journal.first_and_sent("").split(", ")
    rows = journal.db.execute(
        "SELECT external_brand_id, external_id, affelios_id, status,"
        f" {first}, recorded_at, base_url, {sent} FROM {journal.table}{where}"
        " ORDER BY base_url, external_brand_id, external_id",
        params,
    )
    for row in rows:
        yield dict(zip(EXPORT_COLUMNS, row, strict=True))


def entries_of(journal: Journal, keys: list[Key]) -> Iterator[dict[str, str | None]]:
    """The entries of these customers (brand, id) under every API the journal holds,
    found from the primary key (not by reading the whole journal)."""
    if not journal.has_table:
        return
    first, sent = journal.first_and_sent("c.").split(", ")
    for base_url in store.spellings(journal.db, journal.table):
        rows = select_keys(
            journal.db,
            "SELECT c.external_brand_id, c.external_id, c.affelios_id, c.status,"
            f" {first}, c.recorded_at, c.base_url, {sent}"
            f" FROM {{keys}} JOIN {journal.table} c ON c.base_url = ?"
            " AND c.external_brand_id = k.column1 AND c.external_id = k.column2",
            keys,
            base_url,
        )
        for row in rows:
            yield dict(zip(EXPORT_COLUMNS, row, strict=True))


def forget_entries(journal: Journal, keys: Iterable[tuple[str, str, str]]) -> int:
    """Delete the entries of these (API, brand, id) keys, whatever their status: the
    customers will be sent again. How many there were."""
    with journal.db:
        cursor = journal.db.executemany(
            f"DELETE FROM {journal.table} WHERE base_url = ? AND external_brand_id = ?"
            " AND external_id = ?",
            list(keys),
        )
    return int(cursor.rowcount)


def count_by_api(journal: Journal) -> list[tuple[str, int]]:
    """(API, records) of its kind, every API the journal holds."""
    if not journal.has_table:
        return []
    return list(
        journal.db.execute(
            f"SELECT base_url, COUNT(*) FROM {journal.table} GROUP BY base_url"
        ).fetchall()
    )


def same_api(journal: Journal, other: str, this: str) -> int:
    """Take the entries under `other` as `this` API's (where both hold a record, `this`'s
    stays, and `other`'s goes); how many there were."""
    with journal.db:
        moved = journal.db.execute(
            f"SELECT COUNT(*) FROM {journal.table} WHERE base_url = ?", (other,)
        ).fetchone()[0]
        store.move(journal.db, journal.table, other, this)
    return int(moved)


# An entry copied in: where the target holds the key already, its entry stays, unless it
# is `sending` and the copied one is not (the copy knows how that sending ended).
_COPY_IN = """
INSERT INTO {table} (base_url, external_brand_id, external_id, affelios_id, status,
    recorded_at, first_recorded_at, sent) VALUES (?,?,?,?,?,?,?,?)
ON CONFLICT (base_url, external_brand_id, external_id) DO UPDATE SET
    affelios_id = excluded.affelios_id, status = excluded.status,
    recorded_at = excluded.recorded_at, first_recorded_at = excluded.first_recorded_at,
    sent = excluded.sent
WHERE {table}.status = 'sending' AND excluded.status != 'sending'
"""


def copy(source: Journal, target: Journal) -> dict[str, tuple[int, int]]:
    """Every entry of every kind in `source` into `target` (under each API's URL as the
    journal keys it), one transaction a kind; per kind, (entries read, entries the
    target held before). `source` is read in one snapshot where its storage offers one."""
    done: dict[str, tuple[int, int]] = {}
    with source.db:
        source.snapshot()
        for table in TABLES:
            if not source.has(table):
                continue
            first, sent = source.first_and_sent("").split(", ")
            rows = source.db.execute(
                "SELECT base_url, external_brand_id, external_id, affelios_id, status,"
                f" recorded_at, {first}, {sent} FROM {table}"
            )
            before = _count(target, table)
            read = 0
            with target.db:
                while batch := list(islice(rows, 1000)):
                    target.db.executemany(
                        _COPY_IN.format(table=table),
                        [(identity(row[0]), *row[1:]) for row in batch],
                    )
                    read += len(batch)
            done[table] = (read, before)
    return done


def _count(journal: Journal, table: str) -> int:
    return int(journal.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
