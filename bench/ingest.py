#!/usr/bin/env python3
"""End-to-end ingest into the profile store (identity resolution) against the raw floor of the same database.

    python bench/ingest.py                               # make bench-ingest: 1,000,000 persons, SQLite
    python bench/ingest.py --persons 100000              # events, orders, NPS answers scale along
    python bench/ingest.py --persons 100000 --db postgresql
    python bench/ingest.py --persons 20000 --profile     # cProfile of the end-to-end child -> bench/out/*.pstats

1. Generates (or reuses, cached in the out folder) the seeded exports of bench/ingest_data.py: three person
   sources (CRM contacts csv, shop customers jsonl, newsletter members csv) with overlapping identities,
   events, orders and NPS answers.
2. The floor, in a child process: the person records read from the same files (json/csv parsed, emails
   trimmed and lowercased) and upserted into bare ``profiles(id, data)`` and ``identities(type, value,
   profile_id)`` tables in batches of 10,000, one transaction per batch.
   SQLite: ``sqlite3`` ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE``, the store's pragmas (WAL, synchronous=NORMAL, 64 MiB page cache).
   PostgreSQL: psycopg ``COPY`` into temporary staging tables, then one ``INSERT ... SELECT DISTINCT ON
   ... ON CONFLICT DO UPDATE`` per table (last row of the batch wins), then the staging tables are emptied.
3. End to end, in another child: the real ``Runner`` on a fresh store, two graphs run one after the other:

       persons:  crm.contacts -> rename --+
                 shop.customers ----------+-> normalize -> profile_store
                 newsletter.members ------+
       activity: web.events, shop.orders, survey.answers -> normalize -> profile_store

   with the demo's ``[identity]`` rules (priority, limits: one hubspot/shopify id, five emails, three
   phones; the default blocked values). Records/s is measured around ``Runner.run``; peak RSS is the
   child's ``ru_maxrss``, so generating the data never counts.
4. Prints both, the ratio (end-to-end persons/s over floor persons/s) and whether the target holds
   (ratio >= 0.50 and peak RSS < 500 MB; the acceptance is defined for 1,000,000 persons on SQLite).

Exit status: 0 whatever the figures (it is a measurement), 2 when it cannot run (a child failed, a plugin
is missing, PostgreSQL cannot be started). Nothing it writes is committed: bench/out/ is git-ignored.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import ingest_data

FLOOR_BATCH = 10_000
GRAPHS = ("persons", "activity")
PERSON_NODES = ("crm", "shop", "newsletter")
STORE_STEPS = {
    "profiles.py": ("write", "prepare", "_write", "_old_records", "_store_records", "_reopen", "_store_sets"),
    "extend.py": ("run", "_identifiers", "_stored_sets", "_owners", "_components", "_classify", "_apply", "_docs"),
    "replay.py": ("run", "_component", "recompute_traits", "_identities"),
    "traits.py": ("merge_traits",),
    "identity.py": ("resolve",),
    "checkpoint.py": ("write",),
}  # of cdp_core/store/ (and identity.py), for the profile's breakdown
ACTIVITY_NODES = ("events", "orders", "nps")

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

CONFIG = """\
[store]
url = "{url}"

# The demo's rules (connectors.toml), with the bench's stream names.
[identity]
priority = ["hubspot_contact_id", "shopify_customer_id", "mailchimp_member_id", "email", "phone"]
limits = {{ hubspot_contact_id = 1, shopify_customer_id = 1, email = 5, phone = 3 }}
default_region = "DE"

[identity.traits]
default = "most_recent"
strategies = {{ first_name = "source_priority", last_name = "source_priority", tags = "accumulate" }}
source_priority = ["crm.contacts", "shop.customers", "newsletter.members"]

[connectors.crm]
type = "csv"
[connectors.crm.streams.contacts]
path = "{data}/crm_contacts.csv"
primary_key = "id"
cursor_field = "lastmodifieddate"
timestamp_field = "lastmodifieddate"
identifiers = {{ hubspot_contact_id = "id", email = "email", phone = "phone" }}
{batch_size}

[connectors.shop]
type = "jsonl"
[connectors.shop.streams.customers]
path = "{data}/shop_customers.jsonl"
primary_key = "id"
cursor_field = "updated_at"
timestamp_field = "updated_at"
identifiers = {{ shopify_customer_id = "id", email = "email", phone = "phone" }}
{batch_size}
[connectors.shop.streams.orders]
path = "{data}/shop_orders.jsonl"
kind = "order"
primary_key = "id"
cursor_field = "updated_at"
timestamp_field = "created_at"
identifiers = {{ shopify_customer_id = "customer.id", email = "email", phone = "customer.phone" }}
{batch_size}

[connectors.newsletter]
type = "csv"
[connectors.newsletter.streams.members]
path = "{data}/newsletter_members.csv"
primary_key = "id"
cursor_field = "last_changed"
timestamp_field = "last_changed"
identifiers = {{ mailchimp_member_id = "id", email = "email_address", phone = "phone" }}
{batch_size}

[connectors.web]
type = "jsonl"
[connectors.web.streams.events]
path = "{data}/events.jsonl"
kind = "event"
primary_key = "id"
cursor_field = "occurred_at"
timestamp_field = "occurred_at"
identifiers = {{ email = "email", shopify_customer_id = "shopify_customer_id", mailchimp_member_id = "mailchimp_member_id" }}
{batch_size}

[connectors.survey]
type = "csv"
[connectors.survey.streams.answers]
path = "{data}/nps_answers.csv"
kind = "nps_response"
primary_key = "token"
cursor_field = "submitted_at"
timestamp_field = "submitted_at"
identifiers = {{ email = "email" }}
{batch_size}

[connectors.store]
type = "profile_store"

[syncs.persons.nodes.crm]
source = "crm.contacts"

[syncs.persons.nodes.crm_clean]
transform = "rename"
inputs = ["crm"]
options = {{ fields = {{ firstname = "first_name", lastname = "last_name", lifecyclestage = "lifecycle_stage" }} }}

[syncs.persons.nodes.shop]
source = "shop.customers"

[syncs.persons.nodes.newsletter]
source = "newsletter.members"

[syncs.persons.nodes.normalize]
transform = "normalize"
inputs = ["crm_clean", "shop", "newsletter"]
options = {{ fields = {{ first_name = "name", last_name = "name" }}, default_region = "DE", on_invalid = "null" }}

[syncs.persons.nodes.store]
destination = "store"
inputs = ["normalize"]

[syncs.activity.nodes.events]
source = "web.events"

[syncs.activity.nodes.orders]
source = "shop.orders"

[syncs.activity.nodes.nps]
source = "survey.answers"

[syncs.activity.nodes.normalize]
transform = "normalize"
inputs = ["events", "orders", "nps"]
options = {{ default_region = "DE", on_invalid = "null" }}

[syncs.activity.nodes.store]
destination = "store"
inputs = ["normalize"]
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return float("nan")


# -- the end-to-end child -------------------------------------------------------------------------


def _store_facts(url: str, dump: Path | None = None) -> dict[str, Any]:
    """What the runs left in the store: profiles, merges, identities (checked after the clock stopped)."""
    from sqlalchemy import text

    from cdp_core.store.engine import make_engine

    engine = make_engine(url)
    facts: dict[str, Any] = {}
    with engine.connect() as conn:
        one = lambda sql: int(conn.execute(text(sql)).scalar_one())
        facts["profiles"] = one("SELECT count(*) FROM profiles WHERE merged_into IS NULL")
        facts["merged_profiles"] = one("SELECT count(*) FROM profiles WHERE merged_into IS NOT NULL")
        facts["merge_log"] = one("SELECT count(*) FROM merge_log")
        facts["id_sets"] = one("SELECT count(*) FROM id_sets")
        facts["record_index"] = one("SELECT count(*) FROM record_index")
        facts["anonymous_records"] = one("SELECT count(*) FROM record_index WHERE set_id IS NULL")
        facts["profile_records"] = one("SELECT count(*) FROM profile_records")
        facts["events"] = one("SELECT count(*) FROM events")
        facts["orders"] = one("SELECT count(*) FROM orders")
        facts["nps_responses"] = one("SELECT count(*) FROM nps_responses")
        facts["settled"] = one("SELECT count(*) FROM profiles WHERE merged_into IS NULL AND settled")
        facts["identities"] = {
            t: int(n)
            for t, n in conn.execute(text("SELECT type, count(*) FROM identities GROUP BY type ORDER BY type"))
        }
        facts["blocked_in_identities"] = one(
            "SELECT count(*) FROM identities WHERE value IN ('test@test.com', 'noreply@shop.example', "
            "'no-reply@example.com', '+491710000000')"
        )
        facts["profiles_without_identity"] = one(
            "SELECT count(*) FROM profiles p WHERE p.merged_into IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM identities i WHERE i.profile_id = p.id)"
        )
        facts["identities_of_dead_profiles"] = one(
            "SELECT count(*) FROM identities i LEFT JOIN profiles p ON p.id = i.profile_id "
            "WHERE p.id IS NULL OR p.merged_into IS NOT NULL"
        )
        # Limits of [identity]: how many live profiles hold more identifiers of a type than allowed
        over = {}
        for type_name, limit in (("hubspot_contact_id", 1), ("shopify_customer_id", 1), ("email", 5), ("phone", 3)):
            over[type_name] = one(
                f"SELECT count(*) FROM (SELECT profile_id FROM identities WHERE type = '{type_name}' "
                f"GROUP BY profile_id HAVING count(*) > {limit}) x"
            )
        facts["profiles_over_limit"] = over
        # Equal on SQLite and PostgreSQL for the same data: who owns which identifier, and the merges
        # (sorted here, not by the database: collations differ)
        rows = sorted(tuple(r) for r in conn.execute(text("SELECT type, value, profile_id FROM identities")))
        digest = hashlib.sha256()
        for row in rows:
            digest.update("\x1f".join(row).encode() + b"\x1e")
        facts["identities_digest"] = digest.hexdigest()[:16]
        if dump is not None:
            with dump.open("w", encoding="utf-8") as handle:
                handle.writelines("\t".join(row) + "\n" for row in rows)
        del rows
        facts["largest_profile_emails"] = one(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM identities WHERE type = 'email' "
            "GROUP BY profile_id) x"
        )
    engine.dispose()
    return facts


def child_e2e(args: argparse.Namespace) -> dict[str, Any]:
    from cdp_core.config import ConfigError, load_config
    from cdp_core.plugins import load_plugins
    from cdp_core.runner import Runner
    from cdp_core.store import SystemStore

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    url = args.url
    if url.startswith("sqlite:///"):
        store = Path(url.removeprefix("sqlite:///"))
        for stale in (store, Path(f"{store}-wal"), Path(f"{store}-shm"), Path(f"{store}-journal")):
            stale.unlink(missing_ok=True)
    plugins = load_plugins(entry_points=False)
    registry = plugins.registry
    missing = [f"transform {t}" for t in ("rename", "normalize") if registry.get("transform", t) is None]
    missing += [
        f"{role} {n}"
        for role, n in (("source", "csv"), ("source", "jsonl"), ("destination", "profile_store"))
        if registry.get(role, n) is None
    ]
    if missing:
        return {"error": f"not registered: {', '.join(missing)}"}
    config_path = work / "connectors.toml"
    config_path.write_text(
        CONFIG.format(
            url=url, data=args.data.resolve(), batch_size=f"batch_size = {args.batch_size}" if args.batch_size else ""
        ),
        encoding="utf-8",
    )
    try:
        config = load_config(config_path, plugins)
    except ConfigError as exc:
        return {"error": f"the benchmark graph does not validate:\n{exc}"}
    system = SystemStore(config.store_url).create()
    rss_before = current_rss_mb()
    trace: list[tuple[str, int, float]] = []

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()

    results: dict[str, Any] = {"graphs": {}}
    for graph in GRAPHS if not args.persons_only else GRAPHS[:1]:
        sources = PERSON_NODES if graph == "persons" else ACTIVITY_NODES

        def on_progress(run: Any, graph: str = graph, sources: tuple[str, ...] = sources) -> None:
            read = sum(run.nodes[n].records_out + run.nodes[n].rejected for n in sources)
            trace.append((graph, read, current_rss_mb()))

        runner = Runner(config, plugins, system, on_progress=on_progress)
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        run = runner.run(graph)
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
        if run.error:
            return {"error": f"run of graph {graph} failed: {run.error}"}
        results["graphs"][graph] = {
            "seconds": seconds,
            "read": sum(run.nodes[n].records_out + run.nodes[n].rejected for n in sources),
            "stored": run.nodes["store"].records_out,
            "quarantined": system.quarantine_count(graph),
            "nodes": {
                name: {"in": s.records_in, "out": s.records_out, "rejected": s.rejected, "seconds": s.seconds}
                for name, s in run.nodes.items()
            },
        }
    results["peak_rss_mb"] = peak_rss_mb()
    results["rss_before_mb"] = rss_before
    results["rss_trace"] = trace
    if profiler is not None:
        import pstats

        args.profile.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(args.profile))
        stats = pstats.Stats(str(args.profile))
        rows = []
        for (file, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            rows.append({"function": f"{_short(file)}:{line}({func})", "ncalls": nc, "tottime": tt, "cumtime": ct})
        rows.sort(key=lambda r: r["tottime"], reverse=True)
        results["profile_top"] = rows[:15]
        steps = []
        for (file, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if func in STORE_STEPS.get(Path(file).name, ()) and "cdp_core" in file:
                steps.append({"function": f"{_short(file)}:{line}({func})", "ncalls": nc, "tottime": tt, "cumtime": ct})
        steps.sort(key=lambda r: r["cumtime"], reverse=True)
        results["profile_store_steps"] = steps
        results["profile_total"] = sum(r["tottime"] for r in rows)
    results["store"] = _store_facts(url, args.work / "identities.tsv" if args.dump_identities else None)
    return results


def _short(file: str) -> str:
    """``cdp_core/store/profiles.py``, ``sqlalchemy/engine/base.py``, ``json/__init__.py`` (not the full path)."""
    import re

    for pattern in (r".*/site-packages/", r".*/(?=cdp_core/)", r".*/lib/python3\.\d+/"):
        short, n = re.subn(pattern, "", file, count=1)
        if n:
            return short
    return file


# -- the floor children ---------------------------------------------------------------------------


def _person_batches(data: Path):  # type: ignore[no-untyped-def]
    """(profile rows, identity rows) per batch of FLOOR_BATCH person records, parsed from the same files."""
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
                if len(profiles) == FLOOR_BATCH:
                    yield profiles, identities
                    profiles, identities = [], []
        if profiles:
            yield profiles, identities


def child_floor_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    import sqlite3

    path = args.work / "floor.sqlite"
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    from cdp_core.store.engine import SQLITE_PRAGMAS

    con = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:  # the store's own settings (WAL, synchronous=NORMAL, page cache): a fair floor
        con.execute(pragma)
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
    for profile_rows, identity_rows in _person_batches(args.data):
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
        for profile_rows, identity_rows in _person_batches(args.data):
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


def run_child(kind: str, args: argparse.Namespace, url: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--work", str(args.work), "--data", str(args.data), "--url", url]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    if kind == "e2e" and args.persons_only:
        cmd += ["--persons-only"]
    if kind == "e2e" and args.dump_identities:
        cmd += ["--dump-identities"]
    if kind == "e2e" and args.profile:
        cmd += ["--profile-file", str(args.profile)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"{kind} child exited {done.returncode}"}
    try:
        return json.loads(lines[-1])
    except ValueError:
        return {"error": f"{kind} child printed no result: {lines[-1][:200]}"}


# -- PostgreSQL: the throwaway server ---------------------------------------------------------------


class _Postgres:
    """``scripts/pgtest.sh start`` / ``stop``; or a server the caller names with --pg-url (left running)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.folder: str | None = None

    def start(self) -> str:
        if self.url:
            return self.url
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "pgtest.sh"), "start"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"scripts/pgtest.sh start exited {done.returncode}:\n{done.stderr.strip()}")
        values = {}
        for line in done.stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            values[key] = value
        self.folder, self.url = values.get("CDP_PGTEST_DIR"), values.get("CDP_TEST_PG_URL")
        if not self.url:
            raise RuntimeError(f"scripts/pgtest.sh start printed no URL:\n{done.stdout}\n{done.stderr}")
        return self.url

    def fresh_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql
        from sqlalchemy.engine import make_url

        assert self.url
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
            version = conn.execute("SHOW server_version").fetchone()
        self.version = version[0] if version else "?"
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        if self.folder:
            subprocess.run(
                ["bash", str(REPO / "scripts" / "pgtest.sh"), "stop", self.folder],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            self.folder = None


# -- report -----------------------------------------------------------------------------------------


def _print_e2e(e2e: dict[str, Any]) -> None:
    for graph, g in e2e["graphs"].items():
        rate = g["read"] / g["seconds"] if g["seconds"] else float("nan")
        print(
            f"  graph {graph}: read {g['read']:,}, stored {g['stored']:,}, quarantined {g['quarantined']:,}; "
            f"{g['seconds']:.1f} s, {rate:,.0f} records/s"
        )
        accounted = 0.0
        for name, s in g["nodes"].items():
            accounted += s["seconds"]
            share = 100 * s["seconds"] / g["seconds"] if g["seconds"] else 0
            print(
                f"    {name:<11} in {s['in']:>10,}  out {s['out']:>10,}  rejected {s['rejected']:>7,}  "
                f"{s['seconds']:>8.1f} s  {share:>5.1f} %"
            )
        print(f"    {'(runner)':<11} {'':>48}  {g['seconds'] - accounted:>8.1f} s")
    trace = e2e["rss_trace"]
    if trace:
        points = [trace[round(i * (len(trace) - 1) / 9)] for i in range(10)] if len(trace) >= 10 else trace
        print("  RSS (MB) by records read: " + ", ".join(f"{g} {n // 1000:,}k: {mb:.0f}" for g, n, mb in points))
    store = e2e["store"]
    print(
        f"  store: {store['profiles']:,} profiles (+{store['merged_profiles']:,} merged into others, "
        f"{store['merge_log']:,} merge-log rows), {store['id_sets']:,} identifier sets, "
        f"{store['record_index']:,} records ({store['anonymous_records']:,} anonymous), {store['settled']:,} live profiles settled"
    )
    print("         identities: " + ", ".join(f"{t} {n:,}" for t, n in store["identities"].items()))
    print(
        f"         blocked values among identities: {store['blocked_in_identities']}; live profiles without an "
        f"identity: {store['profiles_without_identity']:,}; identities on merged/missing profiles: "
        f"{store['identities_of_dead_profiles']:,}; profiles over a limit: "
        + ", ".join(f"{t} {n}" for t, n in store["profiles_over_limit"].items())
    )
    print(f"         digest of identities (type, value, profile): {store['identities_digest']}")
    if "profile_top" in e2e:
        print(f"  cProfile (total self time {e2e['profile_total']:.1f} s), top 15 by self time:")
        print(f"    {'tottime':>8} {'cumtime':>8} {'ncalls':>10}  function")
        for row in e2e["profile_top"]:
            print(f"    {row['tottime']:>8.2f} {row['cumtime']:>8.2f} {row['ncalls']:>10,}  {row['function']}")
        print("  the store's write path, cumulative time per step:")
        for row in e2e["profile_store_steps"]:
            print(f"    {row['tottime']:>8.2f} {row['cumtime']:>8.2f} {row['ncalls']:>10,}  {row['function']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000, help="person records, over the three sources")
    parser.add_argument("--events", type=int, default=None, help="default: = persons")
    parser.add_argument("--orders", type=int, default=None, help="default: persons / 5")
    parser.add_argument("--nps", type=int, default=None, help="default: persons / 10")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--pg-url",
        help="use this PostgreSQL server (its databases cdp_bench_e2e and cdp_bench_floor "
        "are dropped and recreated) instead of starting one with scripts/pgtest.sh",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="records per page of the file sources (default: their own, 10,000)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "out", help="work folder (data, stores, profiles)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the end-to-end child under cProfile (slower: its figures are not the measurement); "
        "writes OUT/ingest-DB-PPERSONS.pstats and prints the top 15 functions by self time",
    )
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument(
        "--dump-identities",
        action="store_true",
        help="write the store's identities (type, value, profile id), sorted, to OUT/ingest-run-DB/"
        "identities.tsv, to compare SQLite with PostgreSQL",
    )
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument(
        "--persons-only", action="store_true", help="run only the persons graph end to end (the ratio is about it)"
    )
    parser.add_argument("--max-rss-mb", type=float, default=500.0)
    parser.add_argument("--min-ratio", type=float, default=0.50)
    parser.add_argument("--child", choices=["e2e", "floor-sqlite", "floor-postgresql"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--profile-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        args.profile = args.profile_file
        child = {"e2e": child_e2e, "floor-sqlite": child_floor_sqlite, "floor-postgresql": child_floor_postgresql}
        print(json.dumps(child[args.child](args)))
        return 0

    args.out = args.out.resolve()
    try:
        commit = (
            subprocess.run(
                ["git", "-C", str(REPO), "describe", "--always", "--dirty=+"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            or "?"
        )
    except OSError:
        commit = "?"
    print(f"cdp {commit}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}")
    events, orders, nps = ingest_data.scaled(args.persons, args.events, args.orders, args.nps)
    try:
        args.data = ingest_data.ensure(args.out, args.persons, events, orders, nps, args.seed)
    except OSError as exc:
        print(f"bench: cannot write the data: {exc}", file=sys.stderr)
        return 2
    manifest = json.loads((args.data / "manifest.json").read_text(encoding="utf-8"))
    files = manifest["files"]
    print(
        f"  person records: crm {files['crm_contacts']:,}, shop {files['shop_customers']:,}, newsletter "
        f"{files['newsletter_members']:,} ({manifest['people']:,} people, {manifest['family_members']:,} in "
        f"{manifest['families']:,} families); events {files['events']:,}, orders {files['shop_orders']:,}, "
        f"NPS answers {files['nps_answers']:,}"
    )
    args.work = args.out / f"ingest-run-{args.db}"
    args.work.mkdir(parents=True, exist_ok=True)
    args.profile = (args.out / f"ingest-{args.db}-P{args.persons}.pstats") if args.profile else None

    pg = _Postgres(args.pg_url) if args.db == "postgresql" else None
    try:
        if pg is not None:
            try:
                pg.start()
                e2e_url, floor_url = pg.fresh_database("cdp_bench_e2e"), pg.fresh_database("cdp_bench_floor")
            except Exception as exc:  # noqa: BLE001
                print(f"bench: FAILED: no PostgreSQL server: {exc}", file=sys.stderr)
                return 2
            print(f"database: PostgreSQL {pg.version} (scripts/pgtest.sh: fsync=off, synchronous_commit=off)")
        else:
            e2e_url, floor_url = f"sqlite:///{args.work / 'store.sqlite'}", ""
            import sqlite3

            print(f"database: SQLite {sqlite3.sqlite_version} (the store's pragmas: WAL, synchronous=NORMAL, 64 MiB page cache)")

        floor = None
        if not args.skip_floor:
            if pg is not None:
                print(
                    f"floor: psycopg COPY into staging tables + INSERT ... SELECT DISTINCT ON ... ON CONFLICT DO UPDATE "
                    f"into bare profiles/identities, batches of {FLOOR_BATCH:,} ...",
                    flush=True,
                )
            else:
                print(
                    f"floor: sqlite3 executemany INSERT ... ON CONFLICT DO UPDATE into bare profiles/identities, "
                    f"batches of {FLOOR_BATCH:,} ...",
                    flush=True,
                )
            floor = run_child(f"floor-{args.db}", args, floor_url)
            if "error" in floor:
                print(f"bench: FAILED: {floor['error']}", file=sys.stderr)
                return 2
            floor_rate = floor["records"] / floor["seconds"]
            print(
                f"  {floor['records']:,} person records ({floor['identity_rows']:,} identity rows -> "
                f"{floor['profiles']:,} profiles, {floor['identities']:,} identities): {floor['seconds']:.1f} s, "
                f"{floor_rate:,.0f} persons/s, peak RSS {floor['peak_rss_mb']:.0f} MB"
            )

        if args.skip_e2e:
            return 0
        print(
            "end to end: Runner, file sources -> rename/normalize -> profile_store (identity resolution)"
            + (" under cProfile" if args.profile else "")
            + " ...",
            flush=True,
        )
        e2e = run_child("e2e", args, e2e_url)
        if "error" in e2e:
            print(f"bench: FAILED: {e2e['error']}", file=sys.stderr)
            return 2
        _print_e2e(e2e)
        persons = e2e["graphs"]["persons"]
        total_read = sum(g["read"] for g in e2e["graphs"].values())
        total_seconds = sum(g["seconds"] for g in e2e["graphs"].values())
        persons_rate = persons["read"] / persons["seconds"]
        print(
            f"  persons {persons['read']:,} in {persons['seconds']:.1f} s: {persons_rate:,.0f} persons/s; "
            f"all {total_read:,} records in {total_seconds:.1f} s: {total_read / total_seconds:,.0f} records/s; "
            f"RSS after imports {e2e['rss_before_mb']:.0f} MB, peak RSS {e2e['peak_rss_mb']:.0f} MB"
        )
        if args.profile:
            print(f"  profile written to {args.profile}")

        rss_ok = e2e["peak_rss_mb"] < args.max_rss_mb
        if floor is not None:
            floor_rate = floor["records"] / floor["seconds"]
            ratio = persons_rate / floor_rate
            print(
                f"ratio: end-to-end {persons_rate:,.0f} persons/s / floor {floor_rate:,.0f} persons/s = {ratio:.3f} "
                f"(the floor is {1 / ratio:.0f}x faster)"
                if ratio
                else "ratio: 0"
            )
            ok = ratio >= args.min_ratio and rss_ok
            print(
                f"target: ratio {ratio:.3f} >= {args.min_ratio:.2f} and peak RSS {e2e['peak_rss_mb']:.0f} MB < "
                f"{args.max_rss_mb:.0f} MB: {'PASS' if ok else 'FAIL'}"
                + (
                    ""
                    if args.persons == 1_000_000 and args.db == "sqlite"
                    else " (the acceptance is defined at 1,000,000 persons on SQLite)"
                )
                + (" (under cProfile: not a measurement)" if args.profile else "")
            )
        else:
            print(
                f"target: peak RSS {e2e['peak_rss_mb']:.0f} MB < {args.max_rss_mb:.0f} MB: "
                f"{'PASS' if rss_ok else 'FAIL'} (no floor: ratio not measured)"
            )
        return 0
    finally:
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    sys.exit(main())
