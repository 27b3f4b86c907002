#!/usr/bin/env python3
"""RFM and lifetime value over the bench/ingest store, next to a baseline measured in the same run.

    python bench/analytics.py                      # 1,000,000 persons (200,000 orders), SQLite
    python bench/analytics.py --persons 100000     # a smaller store (20,000 orders)

1. The store: bench/ingest.py's end-to-end store of the same size, built and copied as bench/segments.py
   does (OUT/ingest-run-sqlite/store.sqlite, reused while the size stays the same).
2. In a child process (its peak RSS is the figure), with ``now`` the day after the last order:
   RFM (``histories`` + scores + groups), then lifetime value (``purchase_days`` + the models' arrays +
   BG/NBD and Gamma-Gamma fits + predictions over 90 days), each timed; then the full write of the
   traits as a refresh does it (``refresh_analytics`` in one transaction).
3. In another child, the baseline: the same orders (with their live profile) read raw by one SELECT
   into Python tuples, no aggregation: what any analysis of these orders must at least pay.

Exit status: 0 (a measurement), 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BASELINE_SQL = """
SELECT s.profile_id, o.occurred_at, o.amount, o.currency, o.status
FROM orders o
JOIN record_index i ON i.stream = o.stream AND i.key = o.key
JOIN id_sets s ON s.id = i.set_id
JOIN profiles p ON p.id = s.profile_id AND p.merged_into IS NULL
"""


def child_analytics(url: str, now: datetime) -> dict[str, Any]:
    from cdp_core.store.engine import make_engine
    from cdp_core.store.transaction import write_transaction
    from rss import peak_rss_mb

    from cdp_profiles.analytics import lifetime
    from cdp_profiles.analytics.config import AnalyticsConfig, ClvConfig, RfmConfig
    from cdp_profiles.analytics.orders import histories, purchase_days
    from cdp_profiles.analytics.rfm import rfm
    from cdp_profiles.analytics.traits import refresh_analytics

    config = AnalyticsConfig(rfm=RfmConfig(), clv=ClvConfig(horizon_days=90))
    engine = make_engine(url)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with engine.connect() as conn:
        people, money, _ = histories(conn, config)
    scored = rfm(people, now)
    out["rfm_s"], out["rfm_people"] = time.perf_counter() - started, len(scored)
    started = time.perf_counter()
    with engine.connect() as conn:
        purchases, _, _ = purchase_days(conn, config)
    summary = lifetime.summarize(purchases, now.date(), now.date())
    fits = lifetime.fit(summary)
    lifetime.predict(summary, fits, 90)
    out["clv_s"], out["clv_customers"] = time.perf_counter() - started, summary.n
    out["bgnbd"] = {k: round(v, 4) for k, v in fits.bg.to_dict().items() if isinstance(v, float)}
    started = time.perf_counter()
    with write_transaction(engine) as conn:
        written = refresh_analytics(conn, config, now)
    out["write_s"], out["rows"] = time.perf_counter() - started, written.rows
    out["peak_rss_mb"] = peak_rss_mb()
    engine.dispose()
    return out


def child_baseline(url: str) -> dict[str, Any]:
    from cdp_core.store.engine import make_engine
    from rss import peak_rss_mb

    engine = make_engine(url)
    started = time.perf_counter()
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql(BASELINE_SQL)]
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "orders": len(rows), "peak_rss_mb": peak_rss_mb()}


def _child(kind: str, url: str, now: datetime) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", kind, "--url", url, "--now", now.isoformat()],
                          stdout=subprocess.PIPE, text=True, check=False, env=dict(os.environ))  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {kind} child exited {done.returncode}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--child", choices=["analytics", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        now = datetime.fromisoformat(args.now)
        result = child_analytics(args.url, now) if args.child == "analytics" else child_baseline(args.url)
        print(json.dumps(result))
        return 0
    import segments

    args.db = "sqlite"
    try:
        url = segments._sqlite_copy(args)
        segments._child("migrate", url)
        now = segments.data_now(url)
        analytics = _child("analytics", url, now)
        baseline = _child("baseline", url, now)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = analytics["rfm_s"] + analytics["clv_s"]
    print(f"as of {now.date()}: {baseline['orders']:,} orders of live profiles")
    print(f"RFM: {analytics['rfm_people']:,} people in {analytics['rfm_s']:.2f} s; lifetime value: "
          f"{analytics['clv_customers']:,} customers fitted and predicted in {analytics['clv_s']:.2f} s; BG/NBD {analytics['bgnbd']}")  # fmt: skip
    print(f"traits written (refresh_analytics): {analytics['rows']:,} rows in {analytics['write_s']:.2f} s")
    print(f"peak RSS: analytics {analytics['peak_rss_mb']:.0f} MB, baseline {baseline['peak_rss_mb']:.0f} MB")
    print(f"baseline (one SELECT of the raw orders into Python): {baseline['seconds']:.2f} s; "
          f"RFM + lifetime value / baseline: {total / baseline['seconds']:.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
