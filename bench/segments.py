#!/usr/bin/env python3
"""Segments and computed traits over the bench/ingest store, against a hand-written SQL floor.

    python bench/segments.py                          # make bench-segments: 1,000,000 persons, SQLite
    python bench/segments.py --db postgresql          # the same on a throwaway PostgreSQL 15
    python bench/segments.py --persons 100000         # a smaller store (events, orders, NPS answers scale along)

1. The store: bench/ingest.py's end-to-end store of the same size (its seeded data: 1,000,000 person records,
   1,000,000 events, 200,000 orders, 100,000 NPS answers), built by running bench/ingest.py --skip-floor when
   it is not there yet (SQLite: OUT/ingest-run-sqlite/store.sqlite, reused while it is; PostgreSQL: built in
   every run, on the server this script starts). Each run works on a copy (SQLite: the file; PostgreSQL: a
   database made from it as a template), so every run starts from the same store.
2. In a child process, the profile product's migrations (a store of an older bench/ingest run). Then in
   another (its peak RSS is the figure): one refresh of ``COMPUTED`` and ``SEGMENTS`` below (20 computed
   traits for every live profile, then the membership of 10 segments, with history), timed as a whole;
   then the engine's ``members_query`` for ``repeat_buyers`` alone, the best of three runs.
3. In another child, the floor: one hand-written SQL statement giving the members of ``repeat_buyers`` (at
   least 2 orders that were not voided in the 90 days before ``NOW``), the way one would write it for this
   schema by hand, the best of three runs. Both children check that they found the same members.

It prints the seconds of the refresh, of the one segment by the engine and by the floor, their ratio
(target: within 2x), and the peak RSS of the refresh (target: under 500 MB).
Exit status: 0 whatever the figures (a measurement), 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

NOW = datetime(2024, 1, 1, tzinfo=UTC)
"""Replaced in each run by the day after the store's last order, so that every window holds data."""

COMPUTED = {
    "orders_total": "count(orders)",
    "orders_90d": "count(orders, days = 90)",
    "revenue_365d": "sum(orders.amount, where = status == 'paid', days = 365)",
    "revenue_all": "sum(orders.amount, where = status != 'voided' and status != 'refunded')",
    "avg_order": "avg(orders.amount)",
    "max_order": "max(orders.amount)",
    "min_order": "min(orders.amount)",
    "first_order_amount": "first(orders.amount)",
    "last_order_status": "last(orders.status)",
    "events_30d": "count(events, days = 30)",
    "email_opens_60d": "count(events, where = name == 'email_opened', days = 60)",
    "email_clicks": "count(events, where = name == 'email_clicked')",
    "last_event": "last(events.name)",
    "top_event": "most_frequent(events.name)",
    "event_names": "distinct(events.name)",
    "nps_answers": "count(nps)",
    "nps_avg": "avg(nps.score)",
    "nps_last": "last(nps.score)",
    "nps_min": "min(nps.score)",
    "nps_channels": "distinct(nps.channel)",
}
SEGMENTS = {
    "repeat_buyers": "count(orders, where = status != 'voided', days = 90) >= 2",
    "promoters": "nps_last >= 9",
    "detractors_90d": "count(nps, where = category == 'detractor', days = 90) > 0",
    "lapsed_buyers": "count(orders) > 0 and count(orders, days = 180) == 0",
    "big_spenders": "revenue_all > 200",
    "unengaged": "identifiers.email and count(events, where = name == 'email_opened', days = 60) == 0",
    "cart_abandoners": "last(events.name) == 'added_to_cart'",
    "happy_repeat": "in_segment('repeat_buyers') and in_segment('promoters')",
    "berliners": "lower(city) == 'berlin'",
    "mailable_active": "has_consent('email') and count(events, days = 30) > 0",
}
FLOOR_SEGMENT = "repeat_buyers"
FLOOR_SQL = """
SELECT p.id FROM profiles p
JOIN (
    SELECT s.profile_id FROM orders o
    JOIN record_index i ON i.stream = o.stream AND i.key = o.key
    JOIN id_sets s ON s.id = i.set_id
    WHERE o.occurred_at >= :since AND o.occurred_at <= :now AND (o.status IS NULL OR o.status <> 'voided')
    GROUP BY s.profile_id HAVING count(*) >= 2
) x ON x.profile_id = p.id
WHERE p.merged_into IS NULL
"""


def _rules() -> Any:
    from cdp_profiles.segments import compile_rules

    return compile_rules(COMPUTED, SEGMENTS)


def data_now(url: str) -> datetime:
    """Midnight UTC after the store's latest order."""
    from datetime import timedelta

    from cdp_core.store.engine import make_engine
    from cdp_core.timeutil import as_utc

    engine = make_engine(url)
    with engine.connect() as conn:
        latest = conn.exec_driver_sql("SELECT max(occurred_at) FROM orders").scalar_one()
    engine.dispose()
    moment = as_utc(datetime.fromisoformat(latest) if isinstance(latest, str) else latest)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def child_engine(url: str) -> dict[str, Any]:
    from cdp_profiles.membership.refresh import refresh
    from cdp_profiles.segments import members_query
    from cdp_core.store.engine import make_engine
    from rss import peak_rss_mb

    engine = make_engine(url)
    rules = _rules()
    started = time.perf_counter()
    result = refresh(engine, rules, now=NOW)
    refresh_s = time.perf_counter() - started
    timings = []
    with engine.connect() as conn:
        for _ in range(3):  # the best of three, as for the floor: both read a warm cache
            started = time.perf_counter()
            members = sorted(r[0] for r in conn.execute(members_query(rules, FLOOR_SEGMENT, engine.dialect.name, NOW)))
            timings.append(time.perf_counter() - started)
    segment_s = min(timings)
    with engine.connect() as conn:
        live = conn.exec_driver_sql("SELECT count(*) FROM profiles WHERE merged_into IS NULL").scalar_one()
        rows = conn.exec_driver_sql("SELECT count(*) FROM computed_traits").scalar_one()
    engine.dispose()
    return {
        "refresh_s": refresh_s,
        "segment_s": segment_s,
        "members": len(members),
        "digest": hash(tuple(members)) & 0xFFFFFFFF,
        "live_profiles": live,
        "computed_rows": rows,
        "segments": {c.segment: c.members for c in result.segments},
        "peak_rss_mb": peak_rss_mb(),
    }


def child_migrate(url: str) -> dict[str, Any]:
    """The store brought to the product's current revision (a store of an older bench/ingest run)."""
    from cdp_core.store.engine import make_engine
    from cdp_profiles.store.schema import ensure_schema

    engine = make_engine(url)
    started = time.perf_counter()
    ensure_schema(engine)
    engine.dispose()
    return {"seconds": time.perf_counter() - started}


def child_floor(url: str) -> dict[str, Any]:
    from datetime import timedelta

    from sqlalchemy import text

    from cdp_core.store.engine import make_engine
    from rss import peak_rss_mb

    engine = make_engine(url)
    timings = []
    with engine.connect() as conn:
        params: dict[str, Any] = {"since": NOW - timedelta(days=90), "now": NOW}
        if engine.dialect.name == "sqlite":  # SQLite keeps the store's times as naive UTC text
            params = {k: v.replace(tzinfo=None).isoformat(sep=" ") for k, v in params.items()}
        for _ in range(3):
            started = time.perf_counter()
            members = sorted(r[0] for r in conn.execute(text(FLOOR_SQL), params))
            timings.append(time.perf_counter() - started)
    seconds = min(timings)
    engine.dispose()
    return {"segment_s": seconds, "members": len(members), "digest": hash(tuple(members)) & 0xFFFFFFFF, "peak_rss_mb": peak_rss_mb()}


def _child(kind: str, url: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--now", NOW.isoformat()], stdout=subprocess.PIPE, text=True, check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {kind} child exited {done.returncode}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _ingest(args: argparse.Namespace, pg_url: str | None) -> None:
    cmd = [sys.executable, str(HERE / "ingest.py"), "--skip-floor", "--persons", str(args.persons), "--db", args.db]
    cmd += ["--out", str(args.out)] + (["--pg-url", pg_url] if pg_url else [])
    print(f"building the store: {' '.join(cmd[1:])}", flush=True)
    if subprocess.run(cmd, check=False).returncode != 0:
        raise RuntimeError("bench/ingest.py failed")


def _sqlite_copy(args: argparse.Namespace) -> str:
    source = args.out / "ingest-run-sqlite" / "store.sqlite"
    stamp = args.out / "ingest-run-sqlite" / "persons.txt"
    if not source.exists() or not stamp.exists() or stamp.read_text() != str(args.persons):
        _ingest(args, None)
        stamp.write_text(str(args.persons))
    with sqlite3.connect(source) as conn:  # fold the WAL in, so that one file is the whole store
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    work = args.out / "segments-sqlite"
    work.mkdir(parents=True, exist_ok=True)
    target = work / "store.sqlite"
    for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--max-ratio", type=float, default=2.0)
    parser.add_argument("--max-rss-mb", type=float, default=500.0)
    parser.add_argument("--child", choices=["migrate", "engine", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global NOW
    if args.child:
        NOW = datetime.fromisoformat(args.now)
        run = {"migrate": child_migrate, "engine": child_engine, "floor": child_floor}[args.child]
        print(json.dumps(run(args.url)))
        return 0

    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty=+"], capture_output=True, text=True, check=False)
    print(f"cdp {commit.stdout.strip() or '?'}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}")
    from ingest import _Postgres

    pg = _Postgres(None) if args.db == "postgresql" else None
    try:
        if pg is not None:
            server = pg.start()
            _ingest(args, server)
            url = pg.fresh_database("cdp_bench_segments")
            import psycopg

            with psycopg.connect(server, autocommit=True) as conn:  # a copy of the ingest store, as on SQLite
                conn.execute("DROP DATABASE cdp_bench_segments")
                conn.execute("CREATE DATABASE cdp_bench_segments TEMPLATE cdp_bench_e2e")
        else:
            url = _sqlite_copy(args)
        _child("migrate", url)  # outside the measured children: their RSS is the refresh's and the query's
        NOW = data_now(url)
        print(f"{len(COMPUTED)} computed traits, {len(SEGMENTS)} segments, now = {NOW.date()} (the day after the last order), {args.persons:,} person records, {args.db}")
        floor = _child("floor", url)
        engine = _child("engine", url)
    except RuntimeError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        if pg is not None:
            pg.stop()
    same = floor["digest"] == engine["digest"] and floor["members"] == engine["members"]
    ratio = engine["segment_s"] / floor["segment_s"] if floor["segment_s"] else float("inf")
    print(f"live profiles: {engine['live_profiles']:,}; computed trait rows: {engine['computed_rows']:,}")
    print("members: " + ", ".join(f"{k} {v:,}" for k, v in engine["segments"].items()))
    print(f"refresh (20 computed traits for everyone + 10 segments with history): {engine['refresh_s']:.1f} s, peak RSS {engine['peak_rss_mb']:.0f} MB")
    print(f"{FLOOR_SEGMENT}: engine {engine['segment_s']:.2f} s, hand-written SQL {floor['segment_s']:.2f} s, ratio {ratio:.2f}x; "
          f"{engine['members']:,} members, {'the same' if same else 'NOT the same'} as the floor's")  # fmt: skip
    ok = ratio <= args.max_ratio and engine["peak_rss_mb"] < args.max_rss_mb and same
    print(f"target: within {args.max_ratio:g}x of the floor, peak RSS < {args.max_rss_mb:g} MB, same members: {'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
