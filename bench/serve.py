#!/usr/bin/env python3
"""`cdp serve` under load on loopback: accepted events/s and latency, every acknowledged message stored once.

    python bench/serve.py                         # make bench-serve: SQLite, 20 s per phase
    python bench/serve.py --db postgresql         # on a throwaway PostgreSQL (scripts/pgtest.sh), or --pg-url URL
    python bench/serve.py --kill                  # SIGKILL the server under load, restart it, count what was lost

1. A fresh store (SQLite: OUT/serve-sqlite/store.sqlite; PostgreSQL: a new database) and a connectors.toml
   with one ``tracking_api`` connector whose write key comes from the environment (``CDP_BENCH_WRITE_KEY``,
   a random one when it is not set; never printed). ``cdp serve`` runs it as a child process on a free
   loopback port.
2. Two phases, each bounded in time (``--seconds``) and count (``--max-events``): ``/v1/batch`` requests of
   100 track calls from ``--batch-connections`` connections, then single ``/v1/track`` calls from
   ``--single-connections``. The load generator is bench/serve_load.py: ``--clients`` processes, each an
   asyncio loop with an httpx client. Per phase: accepted events/s, requests/s, p50/p99 latency of
   the answered requests, and the CPU of the server and of the clients (in % of one core: which side
   is the bottleneck).
3. The baselines, measured in the same run, per phase: **http** (the same load against a Starlette app under
   the same uvicorn that reads and parses each request and answers without storing: how close cdp comes
   to the ceiling of Python HTTP on this machine with this client) and **append** (the same messages
   written straight into a fresh store's ingest log with ``cdp_core.ingest.append``, one transaction per
   request as the client sends them: 100 messages for the batch phase, 1 for single calls; no HTTP).
4. The check: every messageId that got a 200 is in the store's ingest log exactly once, and the log holds
   nothing the clients did not send.

``--kill``: no baselines; during each phase the server gets SIGKILL ``--kills`` times (evenly spread) and is
started again on the same store and port at once. The clients keep sending; a request that got no
answer is sent again with the same messageIds (as Segment's SDKs retry), until ``--grace`` seconds after
the phase. Then the same check: zero acknowledged messages lost, none stored twice.

Targets (issue 15), printed PASS/FAIL: batches >= 10,000 events/s with p99 < 100 ms (on SQLite); single
calls >= 1,000/s; every acknowledged message stored exactly once (the kill run: zero lost).
Exit status: 0 when every target passes, 1 when one fails, 2 when the bench cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from serve_load import WRITE_KEY_ENV, track

CDP = str(Path(sys.executable).with_name("cdp"))
SOURCE = "web"
BATCH_TARGET = 10_000.0
P99_TARGET_MS = 100.0
SINGLE_TARGET = 1_000.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, deadline: float = 120.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(
                f"{url}: the server exited {process.returncode}:\n{log.read_text(errors='replace')[-2000:]}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}: no answer to /health within {deadline:.0f} s")


class Server:
    """A child process serving HTTP on a loopback port: ``cdp serve`` or the null app; restartable on the same port."""

    def __init__(self, name: str, command: list[str], port: int, env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.port, self.env, self.log = name, command, port, env, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> float:
        """Start it; the seconds until it answered /health."""
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
            )
        self.starts += 1
        wait_healthy(self.url, self.process, self.log)
        return time.monotonic() - began

    def cpu_seconds(self) -> float:
        import psutil

        assert self.process is not None
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Phase:
    """What a phase's clients reported, merged."""

    name: str
    target: str
    connections: int
    seconds: float = 0.0
    acked: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    attempts: int = 0
    retries: int = 0
    duplicates: int = 0
    unacked: list[str] = field(default_factory=list)
    rejected: int = 0
    sent: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    client_cpu_s: float = 0.0
    server_cpu_s: float = float("nan")
    kills: list[float] = field(default_factory=list)
    restart_s: list[float] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return len(self.acked) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self) -> str:
        server = "" if self.kills else f"server {100 * self.server_cpu_s / self.seconds:.0f} %, "
        cores = f"CPU: {server}clients {100 * self.client_cpu_s / self.seconds:.0f} % of a core"
        return (
            f"{self.events_per_s:,.0f} events/s ({self.requests / self.seconds:,.0f} requests/s), "
            f"p50 {self.percentile_ms(0.50):.1f} ms, p99 {self.percentile_ms(0.99):.1f} ms; {cores}"
        )


def run_load(
    args: argparse.Namespace, server: Server, phase: str, prefix: str, *, kills: int = 0, grace: float = 0.0
) -> Phase:
    """One phase of load against ``server`` (its clients in child processes); with ``kills``, SIGKILL and restart it."""
    connections = args.batch_connections if phase == "batch" else args.single_connections
    max_events = args.max_batch_events if phase == "batch" else args.max_single_events
    result = Phase(phase, server.name, connections)
    start = time.time() + args.client_startup
    folder = Path(tempfile.mkdtemp(prefix="cdp-bench-serve-"))
    clients = []
    for index in range(args.clients):
        share = connections // args.clients + (1 if index < connections % args.clients else 0)
        cmd = [
            sys.executable, str(HERE / "serve_load.py"), "client", "--url", server.url, "--phase", phase,
            "--prefix", f"{prefix}-{index}", "--start", repr(start), "--seconds", str(args.seconds),
            "--max-events", str(max_events // args.clients), "--connections", str(max(1, share)),
            "--batch-size", str(args.batch_size), "--grace", str(grace), "--out", str(folder / f"{index}.json"),
        ]  # fmt: skip
        clients.append(subprocess.Popen(cmd, env=server.env))
    time.sleep(max(0.0, start - time.time()))
    cpu_before = server.cpu_seconds()
    for k in range(kills):
        time.sleep(max(0.0, start + args.seconds * (k + 1) / (kills + 1) - time.time()))
        result.kills.append(time.time() - start)
        server.kill()
        result.restart_s.append(server.start())
    if not kills:
        time.sleep(max(0.0, start + args.seconds - time.time()))
        result.server_cpu_s = server.cpu_seconds() - cpu_before
    for client in clients:
        if client.wait() != 0:
            raise RuntimeError(f"a load client exited {client.returncode}")
    ended = start
    for index in range(args.clients):
        out = json.loads((folder / f"{index}.json").read_text())
        ended = max(ended, out["ended"])
        result.acked += out["acked"]
        result.latencies += out["latencies"]
        result.requests += len(out["latencies"])
        for name in ("attempts", "retries", "duplicates", "rejected", "sent"):
            setattr(result, name, getattr(result, name) + out[name])
        result.unacked += out["unacked"]
        result.client_cpu_s += out["cpu_s"]
        for what, n in out["errors"].items():
            result.errors[what] = result.errors.get(what, 0) + n
    if os.environ.get("CDP_BENCH_KEEP"):
        print(f"  client results kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    result.seconds = ended - start
    return result


def check_log(url: str, phase: Phase, prefix: str) -> dict[str, int]:
    """Every acknowledged messageId in the ingest log exactly once; what the log holds that nobody sent."""
    from sqlalchemy import text

    from cdp_core.store.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT message_id, count(*) FROM ingest_log WHERE source = :s AND message_id LIKE :p GROUP BY message_id"
            ),
            {"s": SOURCE, "p": f"{prefix}-%"},
        ).all()
    engine.dispose()
    counts = {mid: n for mid, n in rows}
    acked = set(phase.acked)
    return {
        "acked": len(acked),
        "acked_twice_by_client": len(phase.acked) - len(acked),
        "lost": sum(1 for mid in acked if mid not in counts),
        "twice": sum(1 for n in counts.values() if n > 1),
        "stored": len(counts),
        "stored_unacked": sum(1 for mid in counts if mid not in acked),
    }


def floor(url: str, phase: str, per_txn: int, seconds: float, max_events: int) -> dict[str, Any]:
    """The append baseline, in this process: the phase's messages written straight into the log, ``per_txn`` a transaction."""
    from datetime import UTC, datetime

    from cdp_core.ingest import IngestEntry, append
    from cdp_core.store.engine import make_engine

    engine = make_engine(url)
    sent = 0
    deadline = time.perf_counter() + seconds
    latencies = []
    while sent < max_events and time.perf_counter() < deadline:
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        entries = [
            IngestEntry("floor", f"{phase}-{seq}", "track", track(f"{phase}-{seq}", seq, stamp), now)
            for seq in range(sent, sent + per_txn)
        ]
        t0 = time.perf_counter()  # only append is timed, not making the messages
        append(engine, entries)
        latencies.append(time.perf_counter() - t0)
        sent += per_txn
    elapsed = sum(latencies)
    engine.dispose()
    latencies.sort()
    return {
        "events": sent,
        "seconds": elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(0.99 * len(latencies))],
    }


def run_floor(args: argparse.Namespace, url: str, phase: str) -> dict[str, Any]:
    per_txn = args.batch_size if phase == "batch" else 1
    max_events = args.max_batch_events if phase == "batch" else args.max_single_events
    cmd = [
        sys.executable,
        __file__,
        "--child-floor",
        phase,
        "--url",
        url,
        "--per-txn",
        str(per_txn),
        "--seconds",
        str(args.seconds),
        "--max-events",
        str(max_events),
    ]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the append baseline exited {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def write_config(folder: Path, url: str) -> Path:
    path = folder / "connectors.toml"
    path.write_text(
        f'[store]\nurl = "{url}"\n\n[connectors.{SOURCE}]\ntype = "tracking_api"\nwrite_key = "${{{WRITE_KEY_ENV}}}"\n',
        encoding="utf-8",
    )
    return path


def fresh_sqlite(folder: Path, name: str) -> str:
    path = folder / f"{name}.sqlite"
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    return f"sqlite:///{path}"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--pg-url",
        help="a PostgreSQL server to use (a database cdp_bench_serve is made in it); default: scripts/pgtest.sh",
    )
    parser.add_argument("--phases", default="batch,single", help="batch, single or both (comma-separated)")
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase (the time bound)")
    parser.add_argument("--max-batch-events", type=int, default=1_000_000, help="the batch phase's count bound")
    parser.add_argument("--max-single-events", type=int, default=200_000, help="the single phase's count bound")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batch-connections", type=int, default=4, help="batch requests in flight at once")
    parser.add_argument("--single-connections", type=int, default=32, help="single calls in flight at once")
    parser.add_argument(
        "--clients", type=int, default=1, help="load generator processes (the connections are shared out)"
    )
    parser.add_argument(
        "--client-startup", type=float, default=3.0, help="seconds the clients get to start before the phase"
    )
    parser.add_argument(
        "--kill", action="store_true", help="SIGKILL the server under load and restart it (no baselines)"
    )
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs per phase with --kill")
    parser.add_argument(
        "--grace", type=float, default=60.0, help="--kill: seconds after a phase the clients keep retrying"
    )
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--child-floor", choices=["batch", "single"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--per-txn", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-events", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_floor:
        print(json.dumps(floor(args.url, args.child_floor, args.per_txn, args.seconds, args.max_events)))
        return 0
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not phases or any(p not in ("batch", "single") for p in phases):
        parser.error("--phases: batch, single or batch,single")

    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty=+"], capture_output=True, text=True, check=False
    )
    print(f"cdp {commit.stdout.strip() or '?'}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {load_average()}")  # fmt: skip
    folder = args.out / f"serve-{args.db}"
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, WRITE_KEY_ENV: os.environ.get(WRITE_KEY_ENV) or f"wk_bench_{secrets.token_hex(16)}"}
    pg = None
    servers: list[Server] = []
    results: list[tuple[Phase, Phase | None, dict[str, Any] | None, dict[str, int]]] = []
    try:
        if args.db == "postgresql":
            from ingest import _Postgres

            pg = _Postgres(args.pg_url)
            pg.start()
            url = pg.fresh_database("cdp_bench_serve")
            floor_url = pg.fresh_database("cdp_bench_serve_floor")
            db_name = f"PostgreSQL {pg.version}"
        else:
            import sqlite3

            url, floor_url = fresh_sqlite(folder, "store"), fresh_sqlite(folder, "floor")
            db_name = f"SQLite {sqlite3.sqlite_version}"
        from cdp_core.store import SystemStore

        SystemStore(floor_url).create().engine.dispose()
        config = write_config(folder, url)
        log = folder / "serve.log"
        log.unlink(missing_ok=True)
        port = free_port()
        server = Server("cdp serve", [CDP, "serve", "-c", str(config), "--port", str(port)], port, env, log)
        servers.append(server)
        print(f"{db_name}; cdp serve on 127.0.0.1:{port} started in {server.start():.1f} s; {args.clients} client process(es); "
              f"each phase {args.seconds:g} s or its count bound")  # fmt: skip
        null = None
        if not args.kill and not args.skip_baseline:
            null_port = free_port()
            null = Server(
                "http baseline",
                [sys.executable, str(HERE / "serve_load.py"), "null-app", "--port", str(null_port)],
                null_port,
                env,
                folder / "null.log",
            )
            servers.append(null)
            null.start()
        run = secrets.token_hex(3)
        for name in phases:
            prefix = f"{run}-{name}"
            print(f"\n== {name}: {'/v1/batch of ' + str(args.batch_size) if name == 'batch' else '/v1/track'}, "
                  f"{args.batch_connections if name == 'batch' else args.single_connections} connections; load average {load_average()}", flush=True)  # fmt: skip
            phase = run_load(
                args, server, name, prefix, kills=args.kills if args.kill else 0, grace=args.grace if args.kill else 2.0
            )
            print(f"cdp serve:     {phase.line()}")
            if phase.kills:
                print(f"  SIGKILL at {', '.join(f'{t:.1f}' for t in phase.kills)} s; back up (answering /health) after "
                      f"{', '.join(f'{t:.1f}' for t in phase.restart_s)} s; {phase.retries:,} requests sent again, "
                      f"{phase.duplicates:,} messages acknowledged as duplicates (stored before the kill, the answer lost)")  # fmt: skip
            if phase.errors:
                print(f"  errors (then retried): {', '.join(f'{k} {v:,}' for k, v in sorted(phase.errors.items()))}")
            http = floor_result = None
            if null is not None:
                http = run_load(args, null, name, f"{prefix}-null")
                print(f"http baseline: {http.line()}  -> cdp/http {phase.events_per_s / http.events_per_s:.2f}")
                floor_result = run_floor(args, floor_url, name)
                floor_rate = floor_result["events"] / floor_result["seconds"]
                per = args.batch_size if name == "batch" else 1
                print(f"append floor:  {floor_rate:,.0f} events/s ({per} per transaction, one process, no HTTP), "
                      f"p50 {floor_result['p50_ms']:.1f} ms, p99 {floor_result['p99_ms']:.1f} ms  -> cdp/append {phase.events_per_s / floor_rate:.2f}")  # fmt: skip
            check = check_log(url, phase, prefix)
            print(f"check: {check['acked']:,} acknowledged; {check['lost']:,} of them not in the log, {check['twice']:,} in it twice; "
                  f"{check['stored']:,} stored ({check['stored_unacked']:,} never acknowledged); {len(phase.unacked):,} given up; "
                  f"{phase.rejected:,} refused with a 4xx")  # fmt: skip
            results.append((phase, http, floor_result, check))
    except RuntimeError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        for s in reversed(servers):
            s.stop()
        if pg is not None:
            pg.stop()
    return verdict(args, results)


def verdict(
    args: argparse.Namespace, results: list[tuple[Phase, Phase | None, dict[str, Any] | None, dict[str, int]]]
) -> int:
    ok = True
    on_sqlite = "" if args.db == "sqlite" else " (acceptance is on SQLite)"
    print()
    for phase, _http, _floor, check in results:
        exact = (
            check["lost"] == 0 and check["twice"] == 0 and check["acked_twice_by_client"] == 0 and phase.rejected == 0
        )
        if args.kill:
            exact = exact and not phase.unacked
            print(f"target: kill run ({phase.name}, {len(phase.kills)} SIGKILLs): zero acknowledged messages lost, none twice: "
                  f"{'PASS' if exact else 'FAIL'} ({check['lost']:,} lost, {check['twice']:,} twice, {len(phase.unacked):,} never acknowledged)")  # fmt: skip
        else:
            print(
                f"check ({phase.name}): every acknowledged message in the log exactly once: {'PASS' if exact else 'FAIL'}"
            )
        ok = ok and exact
        if args.kill:
            continue
        if phase.name == "batch":
            good = phase.events_per_s >= BATCH_TARGET and phase.percentile_ms(0.99) < P99_TARGET_MS
            print(f"target: batches >= {BATCH_TARGET:,.0f} events/s with p99 < {P99_TARGET_MS:.0f} ms: {phase.events_per_s:,.0f}/s, "
                  f"p99 {phase.percentile_ms(0.99):.1f} ms: {'PASS' if good else 'FAIL'}{on_sqlite}")  # fmt: skip
        else:
            good = phase.events_per_s >= SINGLE_TARGET
            print(
                f"target: single calls >= {SINGLE_TARGET:,.0f}/s: {phase.events_per_s:,.0f}/s: {'PASS' if good else 'FAIL'}{on_sqlite}"
            )
        ok = ok and good
    print(f"load average at the end {load_average()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
