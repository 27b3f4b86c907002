"""The floor children of bench/ingest.py: the person and activity records upserted into bare tables, no framework.

The same person files the end-to-end run reads (``PERSON_FILES``) are parsed by ``_person_batches`` (json/csv,
identifiers trimmed, emails lowercased) and upserted into ``profiles(id, data)`` and ``identities(type, value,
profile_id)`` in batches of ``--batch-size`` records (default ``FLOOR_BATCH``, the file sources' own page
size, so both sides commit as often), one transaction per batch: ``child_floor_sqlite`` (``executemany``
of ``INSERT ... ON CONFLICT DO UPDATE`` with the store's pragmas) and ``child_floor_postgresql`` (``COPY`` into
staging tables, then one ``INSERT ... SELECT DISTINCT ON ... ON CONFLICT DO UPDATE`` per table).

Then, timed on its own, the **activity floor**: the same events, orders and NPS answers the end-to-end run
reads (``ACTIVITY_FILES``), parsed the same way, staged per batch with their identifiers, and inserted into one
bare table per kind keyed by ``(stream, key)`` with the profile id of their first identifier (in the
``[identity]`` priority order) that the floor's ``identities`` hold: one ``INSERT ... SELECT`` per kind and
batch, the lookup a join in the database (set-based), never a query per record.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rss import current_rss_mb, peak_rss_mb

FLOOR_BATCH = 10_000

# (file, format, stream, identifier type -> field): the person sources, as the floor reads them
PERSON_FILES = (
    ("crm_contacts.csv", "csv", "crm.contacts", {"hubspot_contact_id": "id", "email": "email", "phone": "phone"}),
    (
        "shop_customers.jsonl",
        "jsonl",
        "shop.customers",
        {"shopify_customer_id": "id", "email": "email", "phone": "phone"},
    ),
    (
        "newsletter_members.csv",
        "csv",
        "newsletter.members",
        {"mailchimp_member_id": "id", "email": "email_address", "phone": "phone"},
    ),
)


# (file, format, stream, table, key field, time field, identifier type -> field path): the activity sources,
# identifiers in the [identity] priority order of bench/ingest_e2e.py's config
ACTIVITY_FILES = (
    (
        "events.jsonl",
        "jsonl",
        "web.events",
        "events",
        "id",
        "occurred_at",
        {"shopify_customer_id": "shopify_customer_id", "mailchimp_member_id": "mailchimp_member_id", "email": "email"},
    ),
    (
        "shop_orders.jsonl",
        "jsonl",
        "shop.orders",
        "orders",
        "id",
        "created_at",
        {"shopify_customer_id": "customer.id", "email": "email", "phone": "customer.phone"},
    ),
    ("nps_answers.csv", "csv", "survey.answers", "nps_responses", "token", "submitted_at", {"email": "email"}),
)
ACTIVITY_TABLES = ("events", "orders", "nps_responses")


def floor_batch(args: argparse.Namespace) -> int:
    """Records per floor transaction: the end-to-end run's page size, so both commit as often."""
    return int(args.batch_size or FLOOR_BATCH)


def _rows(handle: Any, fmt: str) -> Iterator[dict[str, Any]]:
    """The rows of an open csv (header, then values) or jsonl file, as dicts."""
    if fmt == "csv":
        reader = csv.reader(handle)
        header = next(reader)
        return (dict(zip(header, values, strict=False)) for values in reader)
    return (json.loads(line) for line in handle)


def _identifier(id_type: str, value: Any) -> str:
    """An identifier as the floor keys it: trimmed, an email lowercased; "" for none."""
    if value is None or value == "":
        return ""
    text = str(value).strip()
    return text.lower() if id_type == "email" else text


def _person_batches(data: Path, batch: int):  # type: ignore[no-untyped-def]
    """(profile rows, identity rows) per batch of ``batch`` person records, parsed from the same files."""
    dumps = json.dumps
    for name, fmt, stream, id_fields in PERSON_FILES:
        path = data / name
        key_field = id_fields[next(iter(id_fields))]
        fields = list(id_fields.items())
        profiles: list[tuple[str, str]] = []
        identities: list[tuple[str, str, str]] = []
        with path.open("r", encoding="utf-8", newline="") as handle:
            for row in _rows(handle, fmt):
                pid = f"{stream}:{row[key_field]}"
                profiles.append((pid, dumps(row, ensure_ascii=False)))
                for id_type, field in fields:
                    value = _identifier(id_type, row.get(field))
                    if value:
                        identities.append((id_type, value, pid))
                if len(profiles) == batch:
                    yield profiles, identities
                    profiles, identities = [], []
        if profiles:
            yield profiles, identities


def _field(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _activity_batches(data: Path, batch: int):  # type: ignore[no-untyped-def]
    """(table, record rows, identifier rows) per batch of ``batch`` activity records of one file.

    A record row is ``(n, stream, key, data, occurred_at)``; an identifier row ``(n, priority, type, value)``
    (emails lowercased, values trimmed, as the person floor keys its identities)."""
    dumps = json.dumps
    for name, fmt, stream, table, key_field, time_field, id_fields in ACTIVITY_FILES:
        fields = list(enumerate(id_fields.items()))
        records: list[tuple[int, str, str, str, Any]] = []
        identifiers: list[tuple[int, int, str, str]] = []
        with (data / name).open("r", encoding="utf-8", newline="") as handle:
            for row in _rows(handle, fmt):
                n = len(records)
                records.append((n, stream, str(row[key_field]), dumps(row, ensure_ascii=False), row.get(time_field)))
                for priority, (id_type, path) in fields:
                    value = _identifier(id_type, _field(row, path))
                    if value:
                        identifiers.append((n, priority, id_type, value))
                if len(records) == batch:
                    yield table, records, identifiers
                    records, identifiers = [], []
        if records:
            yield table, records, identifiers


# The profile of a staged record: its first identifier (by priority) the identities know. SQLite: a
# correlated subquery on the staged identifiers' index (WHERE true: SQLite's upsert after a SELECT needs a
# WHERE to parse); PostgreSQL: DISTINCT ON over one join (its planner has no statistics for the temporary
# tables and ran the correlated form as a nested loop of scans, 2,778 records/s at 20,000 persons).
_UPSERT = (
    "ON CONFLICT (stream, key) DO UPDATE SET data = excluded.data, occurred_at = excluded.occurred_at, "
    "profile_id = excluded.profile_id"
)
_ACTIVITY_INSERT_SQLITE = (
    "INSERT INTO {table} (stream, key, data, occurred_at, profile_id) "
    "SELECT r.stream, r.key, r.data, r.occurred_at, "
    "(SELECT i.profile_id FROM stage_ids s JOIN identities i ON i.type = s.type AND i.value = s.value "
    "WHERE s.n = r.n ORDER BY s.priority LIMIT 1) FROM stage_records r WHERE true " + _UPSERT
)
_ACTIVITY_INSERT_POSTGRESQL = (
    "INSERT INTO {table} (stream, key, data, occurred_at, profile_id) "
    "SELECT r.stream, r.key, r.data, r.occurred_at, p.profile_id FROM stage_records r LEFT JOIN "
    "(SELECT DISTINCT ON (s.n) s.n, i.profile_id FROM stage_ids s JOIN identities i "
    "ON i.type = s.type AND i.value = s.value ORDER BY s.n, s.priority) p ON p.n = r.n " + _UPSERT
)


def _activity_sqlite(con: Any, args: argparse.Namespace) -> dict[str, Any]:
    for table in ACTIVITY_TABLES:
        con.execute(
            f"CREATE TABLE {table} (stream TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, occurred_at TEXT, "
            "profile_id TEXT, PRIMARY KEY (stream, key))"
        )
    con.execute(
        "CREATE TEMP TABLE stage_records (n INTEGER PRIMARY KEY, stream TEXT, key TEXT, data TEXT, occurred_at TEXT)"
    )
    con.execute("CREATE TEMP TABLE stage_ids (n INTEGER, priority INTEGER, type TEXT, value TEXT)")
    con.execute("CREATE INDEX temp.stage_ids_n ON stage_ids (n, priority)")
    started = time.perf_counter()
    records = 0
    for table, record_rows, identifier_rows in _activity_batches(args.data, floor_batch(args)):
        con.execute("BEGIN")
        con.executemany("INSERT INTO stage_records VALUES (?, ?, ?, ?, ?)", record_rows)
        con.executemany("INSERT INTO stage_ids VALUES (?, ?, ?, ?)", identifier_rows)
        con.execute(_ACTIVITY_INSERT_SQLITE.format(table=table))
        con.execute("DELETE FROM stage_records")
        con.execute("DELETE FROM stage_ids")
        con.execute("COMMIT")
        records += len(record_rows)
    seconds = time.perf_counter() - started
    linked = sum(con.execute(f"SELECT count(profile_id) FROM {t}").fetchone()[0] for t in ACTIVITY_TABLES)
    return {"activity_records": records, "activity_seconds": seconds, "activity_linked": linked}


def _activity_postgresql(conn: Any, args: argparse.Namespace) -> dict[str, Any]:
    conn.execute("DROP TABLE IF EXISTS " + ", ".join(ACTIVITY_TABLES))
    for table in ACTIVITY_TABLES:
        conn.execute(
            f"CREATE TABLE {table} (stream text NOT NULL, key text NOT NULL, data json NOT NULL, occurred_at text, "
            "profile_id text, PRIMARY KEY (stream, key))"
        )
    conn.execute("CREATE TEMP TABLE stage_records (n integer, stream text, key text, data json, occurred_at text)")
    conn.execute("CREATE TEMP TABLE stage_ids (n integer, priority integer, type text, value text)")
    conn.commit()
    started = time.perf_counter()
    records = 0
    for table, record_rows, identifier_rows in _activity_batches(args.data, floor_batch(args)):
        with conn.cursor() as cur:
            with cur.copy("COPY stage_records (n, stream, key, data, occurred_at) FROM STDIN") as copy:
                for row in record_rows:
                    copy.write_row(row)
            with cur.copy("COPY stage_ids (n, priority, type, value) FROM STDIN") as copy:
                for row in identifier_rows:
                    copy.write_row(row)
            cur.execute(_ACTIVITY_INSERT_POSTGRESQL.format(table=table))
            cur.execute("TRUNCATE stage_records, stage_ids")
        conn.commit()
        records += len(record_rows)
    seconds = time.perf_counter() - started
    linked = 0
    for t in ACTIVITY_TABLES:
        row = conn.execute(f"SELECT count(profile_id) FROM {t}").fetchone()
        linked += row[0] if row else 0
    return {"activity_records": records, "activity_seconds": seconds, "activity_linked": linked}


def child_floor_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    import sqlite3

    path = args.work / "floor.sqlite"
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    from cdp_core.store.engine import configure_sqlite

    con = sqlite3.connect(path, isolation_level=None)
    configure_sqlite(con)  # the store's own settings (page size, WAL, synchronous=NORMAL, page cache): a fair floor
    con.execute("CREATE TABLE profiles (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
    con.execute(
        "CREATE TABLE identities (type TEXT NOT NULL, value TEXT NOT NULL, profile_id TEXT NOT NULL, "
        "PRIMARY KEY (type, value))"
    )
    upsert_profiles = (
        "INSERT INTO profiles (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data"
    )
    upsert_identities = (
        "INSERT INTO identities (type, value, profile_id) VALUES (?, ?, ?) "
        "ON CONFLICT (type, value) DO UPDATE SET profile_id = excluded.profile_id"
    )
    rss_before = current_rss_mb()
    started = time.perf_counter()
    records = identities = 0
    for profile_rows, identity_rows in _person_batches(args.data, floor_batch(args)):
        con.execute("BEGIN")
        con.executemany(upsert_profiles, profile_rows)
        con.executemany(upsert_identities, identity_rows)
        con.execute("COMMIT")
        records += len(profile_rows)
        identities += len(identity_rows)
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT (SELECT count(*) FROM profiles), (SELECT count(*) FROM identities)").fetchone()
    activity = _activity_sqlite(con, args)
    con.close()
    return {
        **activity,
        "records": records,
        "identity_rows": identities,
        "seconds": seconds,
        "profiles": rows[0],
        "identities": rows[1],
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }


def child_floor_postgresql(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    rss_before = current_rss_mb()
    with psycopg.connect(args.url) as conn:
        conn.execute("DROP TABLE IF EXISTS profiles, identities")
        conn.execute("CREATE TABLE profiles (id text PRIMARY KEY, data json NOT NULL)")
        conn.execute(
            "CREATE TABLE identities (type text NOT NULL, value text NOT NULL, profile_id text NOT NULL, "
            "PRIMARY KEY (type, value))"
        )
        conn.execute("CREATE TEMP TABLE stage_profiles (n integer, id text, data json)")
        conn.execute("CREATE TEMP TABLE stage_identities (n integer, type text, value text, profile_id text)")
        conn.commit()
        started = time.perf_counter()
        records = identities = 0
        for profile_rows, identity_rows in _person_batches(args.data, floor_batch(args)):
            with conn.cursor() as cur:
                with cur.copy("COPY stage_profiles (n, id, data) FROM STDIN") as copy:
                    for n, row in enumerate(profile_rows):
                        copy.write_row((n, *row))
                with cur.copy("COPY stage_identities (n, type, value, profile_id) FROM STDIN") as copy:
                    for n, row in enumerate(identity_rows):
                        copy.write_row((n, *row))
                cur.execute(
                    "INSERT INTO profiles (id, data) SELECT DISTINCT ON (id) id, data FROM stage_profiles "
                    "ORDER BY id, n DESC ON CONFLICT (id) DO UPDATE SET data = excluded.data"
                )
                cur.execute(
                    "INSERT INTO identities (type, value, profile_id) SELECT DISTINCT ON (type, value) type, "
                    "value, profile_id FROM stage_identities ORDER BY type, value, n DESC "
                    "ON CONFLICT (type, value) DO UPDATE SET profile_id = excluded.profile_id"
                )
                cur.execute("TRUNCATE stage_profiles, stage_identities")
            conn.commit()
            records += len(profile_rows)
            identities += len(identity_rows)
        seconds = time.perf_counter() - started
        row = conn.execute("SELECT (SELECT count(*) FROM profiles), (SELECT count(*) FROM identities)").fetchone()
        activity = _activity_postgresql(conn, args)
    assert row is not None
    return {
        **activity,
        "records": records,
        "identity_rows": identities,
        "seconds": seconds,
        "profiles": row[0],
        "identities": row[1],
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }
