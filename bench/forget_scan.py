#!/usr/bin/env python3
"""How long a forget holds the store's write lock to find a person in the ingest log, against judging every leaf.

    python bench/forget_scan.py                    # 100,000 logged messages, SQLite
    python bench/forget_scan.py --messages 500000

A forget reads the whole ingest log and the quarantine inside its write transaction (no
sync can commit meanwhile; on SQLite a writer that waits past the 30 s busy timeout fails)
and asks of every row whether it names the person (``Traces.in_quarantine``). The log is
filled with identify messages of other people, each with an address, a national phone
number and a name; the person to forget is in one of them. The figure: the scan as forget
runs it (a quick test of the row's text first). The baseline, in the same run on the same
rows: the same scan with every leaf judged one by one (the quick test switched off), as
before it existed. Both must find the same rows.

Exit status: 0 (a measurement), 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cdp_profiles.identifiers import IdentifierNormalizer
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.privacy.run_traces import logged_ids
from cdp_profiles.privacy.traces import Traces
from cdp_profiles.store.schema import ensure_schema
from sqlalchemy import insert

from cdp_core.store import system_tables
from cdp_core.store.engine import make_engine

PERSON = [("email", "user7@example.org"), ("phone", "+4917110000007")]


def fill(url: str, messages: int) -> None:
    engine = make_engine(url)
    ensure_schema(engine)
    log = system_tables.ingest_log
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for start in range(0, messages, 10_000):
            conn.execute(insert(log), [
                {"source": "web", "message_id": f"m{i}", "kind": "identify", "received_at": now, "txid": 0,
                 "body": {"type": "identify", "userId": f"u{i}",
                          "traits": {"email": f"user{i}@example.org", "phone": f"0171 {10000000 + i}", "name": f"Jürgen Müller {i}"}}}
                for i in range(start, min(start + 10_000, messages))
            ])  # fmt: skip
    engine.dispose()


def scan(url: str, quick: bool) -> tuple[float, list[int]]:
    engine = make_engine(url)
    traces = Traces.of(PERSON, IdentifierNormalizer(IdentityConfig()))
    if not quick:  # as before the quick tests: every row's leaves judged, every phone-like leaf parsed
        object.__setattr__(traces, "may_name", lambda *args: True)
        traces.__dict__["phone_tails"] = frozenset({""})  # the empty tail is in every number
    started = time.perf_counter()
    with engine.connect() as conn:
        found = logged_ids(conn, traces)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'store.sqlite'}"
        fill(url, args.messages)
        scan(url, quick=True)  # warm the page cache and the imports for both
        baseline, everyone = scan(url, quick=False)
        figure, found = scan(url, quick=True)
    if found != everyone:
        print(f"the scans disagree: {len(found)} rows against {len(everyone)}", file=sys.stderr)
        return 2
    print(f"ingest log of {args.messages:,} messages, {len(found)} naming the person")
    print(f"  scan as forget runs it:   {figure:7.2f} s ({figure / args.messages * 1e6:.1f} us a message)")
    print(f"  every leaf judged:        {baseline:7.2f} s ({baseline / args.messages * 1e6:.1f} us a message)")
    print(f"  ratio (baseline / figure): {baseline / figure:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
