#!/usr/bin/env python3
"""Throughput and peak memory of a whole sync graph on 1,000,000 person records.

    python bench/pipeline_rss.py                 # make bench
    python bench/pipeline_rss.py --records 100000 --out /tmp/cdp-bench

1. Generates N person records as JSON lines (seeded, cached in the out folder).
2. In a child process, runs the graph ``jsonl source -> normalize -> hash -> jsonl_file``
   with the real Runner (SQLite store in the out folder, fresh each time) and reports
   records/s and the child's peak RSS (``ru_maxrss``), so generating the input never counts.
3. In another child, the baseline: the same file read and written by a plain Python loop
   (``json.loads`` + ``json.dumps``, no framework), measured the same way.
4. Prints both and their ratio; exits 1 when the framework's peak RSS reaches the target
   (``--max-rss-mb``, default 200), 2 when the graph cannot be built (e.g. a transform is missing).

Nothing it writes is committed: the out folder (default bench/out/) is git-ignored.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import string
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rss import current_rss_mb, peak_rss_mb

HERE = Path(__file__).resolve().parent
GRAPH = "bench"
REQUIRED_TRANSFORMS = ("normalize", "hash")

FIRST = ["Anna", "Jürgen", "Zoë", "Björn", "Dörte", "Lukas", "Sophie", "Mehmet", "Özlem", "Paul", "Käthe", "Jonas",
         "Marie", "Sören", "Ayşe", "Felix", "Lena", "Günter", "Chloé", "Max"]
LAST = ["Müller", "Schmidt", "Weiß", "Schäfer", "Krüger", "Köhler", "Yılmaz", "Wagner", "Becker", "Groß", "Hoffmann",
        "Meyer", "Jäger", "Böhm", "Fischer", "Nowak", "Braun", "König", "Lange", "Koch"]
CITIES = ["Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Leipzig", "Düsseldorf", "Nürnberg", "Wien", "Zürich"]
MOBILE = ["151", "152", "157", "160", "170", "171", "172", "173", "175", "176", "177", "178", "179"]


def fold(text: str) -> str:
    table = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ë": "e", "é": "e", "ı": "i", "ş": "s"}
    return "".join(table.get(ch, ch) for ch in text.lower())


def generate(path: Path, count: int, seed: int) -> None:
    """``count`` person records: messy emails and phones (as the normalize transform meets them), ~0.5 % invalid."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        lines = []
        for i in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{fold(first)}.{fold(last)}.{i}@example.{rng.choice(('com', 'de', 'org'))}"
            roll = rng.random()
            if roll < 0.10:
                email = f"  {email.title()} "
            elif roll < 0.15:
                email = email.upper()
            prefix = rng.choice(MOBILE)
            sub = str(rng.randint(1, 9)) + "".join(rng.choices(string.digits, k=7 if prefix.startswith("15") else 6))
            phone = rng.choice((f"0{prefix} {sub}", f"+49 {prefix} {sub}", f"+49 (0){prefix}-{sub}", f"0{prefix}{sub}",
                                f"+49{prefix}{sub}"))
            if rng.random() < 0.005:
                phone = "12345"  # not a phone number: rejected by normalize, quarantined
            record = {
                "id": i,
                "email": email,
                "phone": phone,
                "first_name": first,
                "last_name": last,
                "city": rng.choice(CITIES),
                "lifetime_value": round(rng.uniform(0, 900), 2),
                "updated_at": (start + timedelta(seconds=i * 17)).isoformat(),
            }
            lines.append(json.dumps(record, ensure_ascii=False))
            if len(lines) == 10_000:
                handle.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            handle.write("\n".join(lines) + "\n")
    tmp.replace(path)


CONFIG = """\
[store]
url = "sqlite:///{store}"

[connectors.people]
type = "jsonl"

[connectors.people.streams.people]
path = "{input}"
primary_key = "id"
cursor_field = "updated_at"
identifiers = {{ email = "email", phone = "phone" }}
{batch_size}

[connectors.sink]
type = "jsonl_file"
path = "{output}"

[syncs.{graph}.nodes.read]
source = "people.people"

[syncs.{graph}.nodes.normalize]
transform = "normalize"
inputs = ["read"]
options = {{ fields = {{ email = "email", phone = "phone" }}, default_region = "DE" }}

[syncs.{graph}.nodes.hash]
transform = "hash"
inputs = ["normalize"]
options = {{ fields = ["email", "phone"] }}

[syncs.{graph}.nodes.write]
destination = "sink"
inputs = ["hash"]
"""


def child_framework(args: argparse.Namespace) -> dict:
    from cdp_core.config import ConfigError, load_config
    from cdp_core.plugins import load_plugins
    from cdp_core.runner import Runner
    from cdp_core.store import SystemStore

    out: Path = args.out
    store, output = out / "store.sqlite", out / "framework.out.jsonl"
    for stale in (store, Path(f"{store}-wal"), Path(f"{store}-shm"), output):
        stale.unlink(missing_ok=True)
    plugins = load_plugins(entry_points=False)
    missing = [t for t in REQUIRED_TRANSFORMS if plugins.registry.get("transform", t) is None]
    if missing:
        return {"error": f"transform type(s) {', '.join(missing)} not registered: cdp_core.transforms does not provide "
                         f"them yet (known: {', '.join(plugins.registry.names('transform')) or 'none'})"}
    config_path = out / "connectors.toml"
    config_path.write_text(
        CONFIG.format(
            store=store,
            input=args.input.resolve(),
            output=output,
            batch_size=f"batch_size = {args.batch_size}" if args.batch_size else "# batch_size: the source's default",
            graph=GRAPH,
        ),
        encoding="utf-8",
    )
    try:
        config = load_config(config_path, plugins)
    except ConfigError as exc:
        return {"error": f"the benchmark graph does not validate:\n{exc}"}
    page_size = config.connectors["people"].config.streams["people"].batch_size  # type: ignore[attr-defined]
    system = SystemStore(config.store_url).create()
    rss_before = current_rss_mb()
    trace: list[tuple[int, float]] = []  # (records read so far, RSS MB) after each committed page

    def on_progress(run: object) -> None:
        trace.append((run.nodes["read"].records_out, current_rss_mb()))  # type: ignore[attr-defined]

    started = time.perf_counter()
    run = Runner(config, plugins, system, on_progress=on_progress).run(GRAPH)
    seconds = time.perf_counter() - started
    if run.error:
        return {"error": f"run failed: {run.error}"}
    nodes = {name: {"in": s.records_in, "out": s.records_out, "rejected": s.rejected, "seconds": round(s.seconds, 3)}
             for name, s in run.nodes.items()}
    return {
        "records": run.nodes["read"].records_out + run.nodes["read"].rejected,
        "written": run.nodes["write"].records_out,
        "quarantined": system.quarantine_count(GRAPH),
        "seconds": seconds,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "nodes": nodes,
        "rss_trace": trace,
        "page_size": page_size,
    }


def child_baseline(args: argparse.Namespace) -> dict:
    output = args.out / "baseline.out.jsonl"
    loads, dumps = json.loads, json.dumps
    rss_before = current_rss_mb()
    started = time.perf_counter()
    count = 0
    with args.input.open("rb") as source, output.open("w", encoding="utf-8") as sink:
        write = sink.write
        for line in source:
            record = loads(line)
            write(dumps(record, ensure_ascii=False) + "\n")
            count += 1
        sink.flush()
        os.fsync(sink.fileno())
    seconds = time.perf_counter() - started
    return {"records": count, "written": count, "seconds": seconds, "rss_before_mb": rss_before,
            "peak_rss_mb": peak_rss_mb()}


def run_child(kind: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--out", str(args.out), "--input", str(args.input)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"{kind} child exited {done.returncode}"}
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="records per page of the jsonl source (default: the source's own default)")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="work folder (input, outputs, store)")
    parser.add_argument("--max-rss-mb", type=float, default=200.0, help="acceptance target for the framework's peak RSS")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--child", choices=["framework", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out = args.out.resolve()

    if args.child:
        result = child_framework(args) if args.child == "framework" else child_baseline(args)
        print(json.dumps(result))
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    args.input = args.out / f"people-{args.records}-{args.seed}.jsonl"
    if not args.input.exists():
        print(f"generating {args.records:,} records -> {args.input}", flush=True)
        started = time.perf_counter()
        generate(args.input, args.records, args.seed)
        print(f"  {time.perf_counter() - started:.1f} s, {args.input.stat().st_size / 2**20:.0f} MiB", flush=True)
    else:
        print(f"input: {args.input} ({args.input.stat().st_size / 2**20:.0f} MiB, cached)", flush=True)

    print("framework: jsonl -> normalize -> hash -> jsonl_file (Runner, SQLite store) ...", flush=True)
    framework = run_child("framework", args)
    if "error" in framework:
        print(f"bench: FAILED: {framework['error']}", file=sys.stderr)
        return 2
    print(f"  pages of {framework['page_size']:,} records")
    print(f"  read {framework['records']:,}, wrote {framework['written']:,}, quarantined {framework['quarantined']:,}")
    for name, stats in framework["nodes"].items():
        print(f"    {name:<10} in {stats['in']:>9,}  out {stats['out']:>9,}  rejected {stats['rejected']:>6,}  "
              f"{stats['seconds']:>7.2f} s")
    trace = framework["rss_trace"]
    if trace:
        points = [trace[round(i * (len(trace) - 1) / 9)] for i in range(10)] if len(trace) >= 10 else trace
        print("  RSS (MB) by records read: " + ", ".join(f"{n // 1000:,}k: {mb:.0f}" for n, mb in points))
    fw_rate = framework["records"] / framework["seconds"]
    print(f"  {framework['seconds']:.1f} s, {fw_rate:,.0f} records/s, "
          f"RSS after imports {framework['rss_before_mb']:.0f} MB, peak RSS {framework['peak_rss_mb']:.0f} MB")

    if not args.skip_baseline:
        print("baseline: plain Python loop, json.loads + json.dumps ...", flush=True)
        baseline = run_child("baseline", args)
        if "error" in baseline:
            print(f"bench: FAILED: {baseline['error']}", file=sys.stderr)
            return 2
        base_rate = baseline["records"] / baseline["seconds"]
        print(f"  {baseline['seconds']:.1f} s, {base_rate:,.0f} records/s, peak RSS {baseline['peak_rss_mb']:.0f} MB")
        print(f"ratio: the framework takes {framework['seconds'] / baseline['seconds']:.1f}x the baseline's time "
              f"({fw_rate / base_rate:.2f}x its throughput); peak RSS {framework['peak_rss_mb']:.0f} MB vs "
              f"{baseline['peak_rss_mb']:.0f} MB")

    ok = framework["peak_rss_mb"] < args.max_rss_mb
    verdict = "PASS" if ok else "FAIL"
    print(f"target: framework peak RSS {framework['peak_rss_mb']:.0f} MB < {args.max_rss_mb:.0f} MB: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
