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
   SQLite: ``sqlite3`` ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE``, the store's pragmas (16 KiB pages, WAL, synchronous=NORMAL, 64 MiB page cache).
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

The modules: bench/ingest.py (this one: the CLI, the data and database set-up, the children started by re-running
this script with --child, and their order), bench/ingest_data.py (the data generator), bench/ingest_floor.py (the
floor children), bench/ingest_e2e.py (the end-to-end child, its connectors.toml and the store's integrity facts),
bench/ingest_report.py (what is printed of the results), bench/ingest_rss.py (the children's RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import ingest_data
import ingest_e2e
from ingest_floor import child_floor_postgresql, child_floor_sqlite, floor_batch
from ingest_report import print_e2e, print_floor, print_summary

GRAPHS = ("persons", "activity")


def child_e2e(args: argparse.Namespace) -> dict[str, Any]:
    """The end-to-end child (bench/ingest_e2e.py) on ``GRAPHS`` as it is when called, so that a caller that
    imports this module and assigns ``ingest.GRAPHS`` runs those graphs."""
    return ingest_e2e.child_e2e(args, GRAPHS)


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
        "--batch-size",
        type=int,
        default=None,
        help="records per page of the file sources and per floor transaction (default: the sources' own, 10,000)",
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
    # The store this run writes replaces any earlier one: drop the size stamp bench/segments.py and
    # bench/analytics.py reuse a store by, or they would take this store for one of the stamped size.
    (args.work / "persons.txt").unlink(missing_ok=True)
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

            print(
                f"database: SQLite {sqlite3.sqlite_version} (the store's pragmas: 16 KiB pages, WAL, synchronous=NORMAL, 64 MiB page cache)"
            )

        floor = None
        if not args.skip_floor:
            if pg is not None:
                print(
                    f"floor: psycopg COPY into staging tables + INSERT ... SELECT DISTINCT ON ... ON CONFLICT DO UPDATE "
                    f"into bare profiles/identities, batches of {floor_batch(args):,} ...",
                    flush=True,
                )
            else:
                print(
                    f"floor: sqlite3 executemany INSERT ... ON CONFLICT DO UPDATE into bare profiles/identities, "
                    f"batches of {floor_batch(args):,} ...",
                    flush=True,
                )
            floor = run_child(f"floor-{args.db}", args, floor_url)
            if "error" in floor:
                print(f"bench: FAILED: {floor['error']}", file=sys.stderr)
                return 2
            print_floor(floor)

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
        print_e2e(e2e)
        print_summary(args, e2e, floor)
        return 0
    finally:
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    sys.exit(main())
