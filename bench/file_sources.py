#!/usr/bin/env python3
"""The builtin file sources reading exports into records, against the stdlib parsing the same files into dicts.

    python bench/file_sources.py                         # 100,000 persons' exports (bench/ingest_data.py)
    python bench/file_sources.py --persons 20000 --rounds 5
    python bench/file_sources.py --profile               # cProfile of the sources -> bench/out/file_sources.pstats
    python bench/file_sources.py --digest                # a digest of every Record.raw() and every reject

The files are bench/ingest_data.py's (generated, or reused from the out folder): the activity graph's
events (JSON lines), orders (JSON lines, nested identifier paths) and NPS answers (CSV), and the CRM
contacts (CSV, the most common person export), configured as bench/ingest_e2e.py configures them
(cursor, timestamp, identifiers, primary key).

- **baseline**: each file parsed with the stdlib into plain dicts, page by page (``json.loads`` per line,
  ``csv.DictReader``), the pages dropped as they are made: the floor any reader pays;
- **figure**: the builtin ``jsonl``/``csv`` source's stream read from no cursor, page by page as the runner
  reads it (``next(pages)`` with the garbage collector paused per page), every record a ``Record``.

Rounds alternate baseline and figure per file; the medians are printed with their ratio (figure / baseline),
which the machine's load moves much less than the seconds. Exit status: 0 (a measurement), 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import hashlib
import json
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ingest_data

from cdp_core.base import ConnectorContext, Stream
from cdp_core.builtins.files import CsvSource, CsvSourceConfig, JsonlSource, JsonlSourceConfig
from cdp_core.runner import paused_gc

# (connector, stream, file, format, stream options): as bench/ingest_e2e.py's connectors.toml
STREAMS: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("web", "events", "events.jsonl", "jsonl", {
        "kind": "event", "primary_key": "id", "cursor_field": "occurred_at", "timestamp_field": "occurred_at",
        "identifiers": {"email": "email", "shopify_customer_id": "shopify_customer_id",
                        "mailchimp_member_id": "mailchimp_member_id"}}),
    ("shop", "orders", "shop_orders.jsonl", "jsonl", {
        "kind": "order", "primary_key": "id", "cursor_field": "updated_at", "timestamp_field": "created_at",
        "identifiers": {"shopify_customer_id": "customer.id", "email": "email", "phone": "customer.phone"}}),
    ("survey", "answers", "nps_answers.csv", "csv", {
        "kind": "nps_response", "primary_key": "token", "cursor_field": "submitted_at",
        "timestamp_field": "submitted_at", "identifiers": {"email": "email"}}),
    ("crm", "contacts", "crm_contacts.csv", "csv", {
        "primary_key": "id", "cursor_field": "lastmodifieddate", "timestamp_field": "lastmodifieddate",
        "identifiers": {"hubspot_contact_id": "id", "email": "email", "phone": "phone"}}),
]  # fmt: skip


def stream_of(data: Path, connector: str, name: str, file: str, fmt: str, options: dict[str, Any], batch: int) -> Stream:
    context = ConnectorContext(name=connector, base_dir=data)
    streams = {name: {"path": file, "batch_size": batch, **options}}
    if fmt == "csv":
        return CsvSource(CsvSourceConfig(streams=streams), context).stream(name)
    return JsonlSource(JsonlSourceConfig(streams=streams), context).stream(name)


def read_stream(stream: Stream) -> tuple[int, int]:
    """Every page of ``stream`` from no cursor, as the runner reads it; (records, rejects)."""
    records = rejects = 0
    pages = iter(stream.read(None))
    while True:
        with paused_gc():
            page = next(pages, None)
        if page is None:
            return records, rejects
        records += len(page.records)
        rejects += len(page.rejects)


def read_stdlib(path: Path, fmt: str, batch: int) -> tuple[int, int]:
    """The baseline: the file parsed into dicts by the stdlib, page by page."""
    rows = 0
    page: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        source = csv.DictReader(handle) if fmt == "csv" else (json.loads(line) for line in handle if line.strip())
        for row in source:
            page.append(row)
            if len(page) >= batch:
                rows += len(page)
                page = []
    return rows + len(page), 0


def timed(work: Callable[[], tuple[int, int]]) -> tuple[float, tuple[int, int]]:
    started = time.process_time()  # CPU: the machine is shared, and both sides are single-threaded
    counts = work()
    return time.process_time() - started, counts


def digest(streams: list[Stream]) -> str:
    """SHA-256 over every record's ``raw()`` (its key order too), the exact ``occurred_at`` (its tzinfo class),
    the fields set, and every reject's reason and payload and every page's cursor, in order."""
    sha = hashlib.sha256()
    for stream in streams:
        for page in stream.read(None):
            for record in page.records:
                sha.update(json.dumps(record.raw(), default=str).encode())
                sha.update(f"{record.occurred_at!r} {sorted(record.model_fields_set)}".encode())
            for reject in page.rejects:
                sha.update(json.dumps([reject.reason, reject.raw, reject.key], sort_keys=True, default=str).encode())
            sha.update(json.dumps(page.cursor, sort_keys=True).encode())
    return sha.hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--profile", action="store_true", help="cProfile one read of every stream instead")
    parser.add_argument("--digest", action="store_true", help="print a digest of every record and reject instead")
    args = parser.parse_args()
    events, orders, nps = ingest_data.scaled(args.persons, None, None, None)
    try:
        data = ingest_data.ensure(args.out.resolve(), args.persons, events, orders, nps, args.seed)
    except OSError as exc:
        print(f"cannot write the data: {exc}", file=sys.stderr)
        return 2
    streams = [stream_of(data, c, n, f, fmt, o, args.batch_size) for c, n, f, fmt, o in STREAMS]
    if args.digest:
        print(f"digest {digest(streams)}")
        return 0
    if args.profile:
        target = args.out / "file_sources.pstats"
        profiler = cProfile.Profile()
        profiler.enable()
        for stream in streams:
            read_stream(stream)
        profiler.disable()
        profiler.dump_stats(str(target))
        pstats.Stats(str(target)).sort_stats("tottime").print_stats(25)
        print(f"profile: {target}")
        return 0
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.rounds} rounds; CPU seconds, medians")
    print(f"{'stream':<16} {'records':>8} {'rejects':>7} {'stdlib s':>9} {'source s':>9} {'ratio':>6}")
    total_base = total_fig = 0.0
    for stream, (connector, name, file, fmt, _) in zip(streams, STREAMS, strict=True):
        base, fig = [], []
        counts = (0, 0)
        for _ in range(args.rounds):
            base.append(timed(lambda: read_stdlib(data / file, fmt, args.batch_size))[0])
            seconds, counts = timed(lambda: read_stream(stream))  # noqa: B023 (called at once)
            fig.append(seconds)
        b, f = statistics.median(base), statistics.median(fig)
        total_base, total_fig = total_base + b, total_fig + f
        print(f"{connector + '.' + name:<16} {counts[0]:>8,} {counts[1]:>7,} {b:>9.2f} {f:>9.2f} {f / b:>5.1f}x")
    print(f"{'total':<16} {'':>8} {'':>7} {total_base:>9.2f} {total_fig:>9.2f} {total_fig / total_base:>5.1f}x")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
