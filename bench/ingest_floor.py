"""The floor children of bench/ingest.py: the person records upserted into bare tables, no framework.

The same person files the end-to-end run reads (``PERSON_FILES``) are parsed by ``_person_batches`` (json/csv,
identifiers trimmed, emails lowercased) and upserted into ``profiles(id, data)`` and ``identities(type, value,
profile_id)`` in batches of ``--batch-size`` records (default ``FLOOR_BATCH``, the file sources' own page
size, so both sides commit as often), one transaction per batch: ``child_floor_sqlite`` (``executemany``
of ``INSERT ... ON CONFLICT DO UPDATE`` with the store's pragmas) and ``child_floor_postgresql`` (``COPY`` into
staging tables, then one ``INSERT ... SELECT DISTINCT ON ... ON CONFLICT DO UPDATE`` per table).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
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


def floor_batch(args: argparse.Namespace) -> int:
    """Records per floor transaction: the end-to-end run's page size, so both commit as often."""
    return int(args.batch_size or FLOOR_BATCH)


def _person_batches(data: Path, batch: int):  # type: ignore[no-untyped-def]
    """(profile rows, identity rows) per batch of ``batch`` person records, parsed from the same files."""
    dumps, loads = json.dumps, json.loads
    for name, fmt, stream, id_fields in PERSON_FILES:
        path = data / name
        key_field = id_fields[next(iter(id_fields))]
        fields = list(id_fields.items())
        profiles: list[tuple[str, str]] = []
        identities: list[tuple[str, str, str]] = []
        with path.open("r", encoding="utf-8", newline="") as handle:
            if fmt == "csv":
                reader = csv.reader(handle)
                header = next(reader)
                rows = (dict(zip(header, values, strict=False)) for values in reader)
            else:
                rows = (loads(line) for line in handle)
            for row in rows:
                pid = f"{stream}:{row[key_field]}"
                profiles.append((pid, dumps(row, ensure_ascii=False)))
                for id_type, field in fields:
                    value = row.get(field)
                    if value is None or value == "":
                        continue
                    value = str(value).strip()
                    if id_type == "email":
                        value = value.lower()
                    if value:
                        identities.append((id_type, value, pid))
                if len(profiles) == batch:
                    yield profiles, identities
                    profiles, identities = [], []
        if profiles:
            yield profiles, identities


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
    con.close()
    return {
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
    assert row is not None
    return {
        "records": records,
        "identity_rows": identities,
        "seconds": seconds,
        "profiles": row[0],
        "identities": row[1],
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }
