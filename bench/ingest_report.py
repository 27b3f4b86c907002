"""The report of bench/ingest.py: what it prints of the children's results (the dicts they return as JSON).

``print_floor``: the floor's persons/s and activity records/s. ``print_e2e``: per graph and node the counts and seconds, the RSS samples,
the store's integrity checks, and with --profile the top functions and the store's write path by cumulative time.
``print_summary``: end-to-end persons/s and peak RSS, the ratio to the floor and whether the target holds; the
activity graph's records/s against the activity floor's, and that ratio.
"""

from __future__ import annotations

import argparse
from typing import Any


def print_floor(floor: dict[str, Any]) -> None:
    floor_rate = floor["records"] / floor["seconds"]
    print(
        f"  {floor['records']:,} person records ({floor['identity_rows']:,} identity rows -> "
        f"{floor['profiles']:,} profiles, {floor['identities']:,} identities): {floor['seconds']:.1f} s, "
        f"{floor_rate:,.0f} persons/s, peak RSS {floor['peak_rss_mb']:.0f} MB"
    )
    if "activity_records" in floor:
        print(
            f"  {floor['activity_records']:,} activity records ({floor['activity_linked']:,} linked to a profile): "
            f"{floor['activity_seconds']:.1f} s, {floor['activity_records'] / floor['activity_seconds']:,.0f} records/s"
        )


def print_e2e(e2e: dict[str, Any]) -> None:
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
        f"{store['record_index']:,} records ({store['anonymous_records']:,} anonymous, "
        f"{store.get('fast_path_records', 0):,} on the activity fast path), {store['settled']:,} live profiles settled"
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


def print_summary(args: argparse.Namespace, e2e: dict[str, Any], floor: dict[str, Any] | None) -> None:
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
        activity = e2e["graphs"].get("activity")
        if activity is not None and activity["seconds"] and floor.get("activity_seconds"):
            activity_rate = activity["read"] / activity["seconds"]
            floor_activity = floor["activity_records"] / floor["activity_seconds"]
            activity_ratio = activity_rate / floor_activity
            print(
                f"activity ratio: end-to-end {activity_rate:,.0f} records/s / floor {floor_activity:,.0f} records/s "
                f"= {activity_ratio:.3f} (target >= {args.min_ratio:.2f}: "
                f"{'PASS' if activity_ratio >= args.min_ratio else 'FAIL'})"
            )
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
