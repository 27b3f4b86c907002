"""`cdp scheduler run` as real processes: two against one PostgreSQL store, SIGTERM mid-run, SIGKILL of a holder.

Each child is the real command line (with the test plugin added, see
test_scheduler_kit.cli_main) logging JSON lines to a file. Every wait is bounded
and every child is killed if a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_scheduler_kit import assert_no_overlap, cli_command, json_lines, runs, ticks_graph, wait_for, write_config

from cdp_core.store import SystemStore
from cdp_core.store.leases import Leases


class Child:
    """A ``cdp`` child process whose stderr goes to a file, read while it runs."""

    def __init__(self, tmp_path: Path, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.log = tmp_path / f"{name}.log"
        self._handle = self.log.open("w")
        self.process = subprocess.Popen(
            cli_command(*args),
            cwd=tmp_path,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._handle,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def lines(self) -> list[dict[str, Any]]:
        return json_lines(self.log.read_text())

    def started_runs(self) -> set[str]:
        return {line["run_id"] for line in self.lines() if line["logger"] == "cdp.runs" and line["run_id"]}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self._handle.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._handle.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


def scheduler(tmp_path: Path, children: list[Child], name: str, config: Path, *extra: str) -> Child:
    child = Child(tmp_path, name, ["scheduler", "run", "-c", str(config), "--log-format", "json", *extra])
    children.append(child)
    return child


# -- two schedulers, one store ---------------------------------------------------------------------


def test_two_scheduler_processes_never_run_a_graph_at_once(
    tmp_path: Path, postgres_database: str, children: list[Child]
) -> None:
    store = postgres_database
    SystemStore(store).create().engine.dispose()  # the children find the schema made (they race for it otherwise)
    config = write_config(tmp_path, store, ticks_graph("slow", 'every = "1s"', pages=3, sleep=0.4))
    one = scheduler(tmp_path, children, "one", config)
    two = scheduler(tmp_path, children, "two", config)

    def finished() -> int:
        return len([r for r in runs(store, "slow") if r.finished_at is not None])

    def skipped(child: Child) -> list[str]:
        return [line["message"] for line in child.lines() if "is running in" in line["message"]]

    wait_for(lambda: finished() >= 4 and (skipped(one) or skipped(two)), 30, "four runs and a slot contended", step=0.2)
    # A rolling restart: the scheduler that has been winning stops; the other one carries on.
    leader, follower = (one, two) if len(one.started_runs()) >= len(two.started_runs()) else (two, one)
    assert leader.stop() == 0
    before = finished()
    wait_for(lambda: follower.started_runs() and finished() >= before + 2, 30, "the other scheduler's runs", step=0.2)
    assert follower.stop() == 0

    history = runs(store, "slow")
    assert len(history) >= 6 and all(r.status == "succeeded" and r.finished_at is not None for r in history)
    assert_no_overlap(history)
    assert one.started_runs() and two.started_runs() and not one.started_runs() & two.started_runs()
    assert {r.id for r in history} == one.started_runs() | two.started_runs()


# -- SIGTERM during a run ----------------------------------------------------------------------------

RECORDS = 400
PEOPLE = """
[connectors.files]
type = "jsonl"
streams.people = {{ path = "people.jsonl", cursor_field = "n", batch_size = 10, identifiers = {{ email = "email" }} }}
[connectors.copy]
type = "jsonl_file"
path = "copy.jsonl"

[syncs.ingest]
every = "30d"
[syncs.ingest.nodes.people]
source = "files.people"
[syncs.ingest.nodes.slow]
transform = "sleep"
inputs = ["people"]
options = {{ seconds = {sleep} }}
[syncs.ingest.nodes.copy]
destination = "copy"
inputs = ["slow"]
"""


def people_config(tmp_path: Path, store_url: str, sleep: float) -> Path:
    people = tmp_path / "people.jsonl"
    if not people.exists():
        with people.open("w") as out:
            for n in range(RECORDS):
                out.write(json.dumps({"id": n, "n": n, "email": f"person{n}@example.org"}) + "\n")
    return write_config(tmp_path, store_url, PEOPLE.format(sleep=sleep))


def test_sigterm_during_a_run_exits_0_with_its_last_batch_committed(
    tmp_path: Path, store_url: str, children: list[Child]
) -> None:
    config = people_config(tmp_path, store_url, sleep=0.25)  # 40 batches: ten seconds
    child = scheduler(tmp_path, children, "scheduler", config)
    system = SystemStore(store_url).create()

    def committed() -> int:
        cursor = system.cursor("ingest", "people")
        return cursor["max"] if isinstance(cursor, dict) and cursor.get("max") is not None else -1

    wait_for(lambda: committed() >= 30, 30, "a few committed batches", step=0.02)
    manual = subprocess.run(  # a manual sync meanwhile: refused, nothing overlaps
        cli_command("sync", "ingest", "-c", str(config)),
        cwd=tmp_path, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )
    assert manual.returncode == 1 and "busy" in manual.stderr, manual.stderr
    assert committed() < RECORDS - 11, "the run is still going when SIGTERM comes"
    assert child.stop(signal.SIGTERM) == 0

    [run] = runs(store_url, "ingest")
    assert run.status == "interrupted" and run.finished_at is not None, "the run ended cleanly, not killed"
    assert system.runs("ingest")[0].error is None
    cursor = system.cursor("ingest", "people")
    assert isinstance(cursor, dict) and cursor.get("offset"), "stopped mid-file, resumable from the offset"
    last = cursor["max"]
    assert 30 <= last < RECORDS - 1, "SIGTERM stopped the run early"
    copied = sorted(json.loads(line)["data"]["n"] for line in (tmp_path / "copy.jsonl").read_text().splitlines())
    assert copied == list(range(last + 1)), "every record up to the cursor is in the file: the last batch was committed"

    lines = child.lines()
    assert any("SIGTERM" in line["message"] for line in lines)
    started = next(i for i, line in enumerate(lines) if line["logger"] == "cdp.runs" and "started" in line["message"])
    ended = next(i for i, line in enumerate(lines) if line["logger"] == "cdp.runs" and "succeeded" in line["message"])
    # (the signal handler's own line comes from the main thread, which runs no graph)
    during = [line for line in lines[started : ended + 1] if "SIGTERM" not in line["message"]]
    assert any(line["logger"] == "cdp.runner" for line in during), "the runner said it stopped after a committed page"
    assert all(line["run_id"] == run.id and line["graph"] == "ingest" for line in during), during
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)

    # The interrupted run did not serve its slot: a new start catches up, from the cursor.
    again = scheduler(tmp_path, children, "again", people_config(tmp_path, store_url, sleep=0))
    wait_for(lambda: len([r for r in runs(store_url, "ingest") if r.finished_at]) == 2, 30, "the resumed run")
    assert again.stop() == 0
    resumed = system.runs("ingest")[0]
    assert resumed.status == "succeeded" and resumed.error is None
    assert resumed.nodes["people"].records_out == RECORDS - last - 1, "it read only what the first run had not"
    copied = sorted(json.loads(line)["data"]["n"] for line in (tmp_path / "copy.jsonl").read_text().splitlines())
    assert copied == list(range(RECORDS))
    system.engine.dispose()


# -- a holder killed with SIGKILL ----------------------------------------------------------------------


def test_a_sigkilled_schedulers_graph_is_taken_over_when_its_lease_expires(
    tmp_path: Path, postgres_database: str, children: list[Child]
) -> None:
    store = postgres_database
    ttl = 2.0
    config = write_config(tmp_path, store, ticks_graph("slow", 'every = "1s"', pages=40, sleep=0.1))
    first = scheduler(tmp_path, children, "first", config, "--lease-ttl", str(ttl))
    second = scheduler(tmp_path, children, "second", config, "--lease-ttl", str(ttl))
    system = SystemStore(store).create()
    holder = wait_for(lambda: Leases(system.engine).holder_of("slow"), 30, "a scheduler running the graph")
    victim, survivor = (first, second) if holder.holder.split(":")[1] == str(first.pid) else (second, first)
    time.sleep(0.5)
    victim.stop(signal.SIGKILL)

    def taken_over() -> bool:
        lease = Leases(system.engine).holder_of("slow")
        return lease is not None and lease.holder.split(":")[1] == str(survivor.pid)

    # Bounds, not measurements: on a loaded machine the take-over may come seconds after the expiry.
    wait_for(taken_over, ttl + 60, "the survivor to take the lease over")
    wait_for(lambda: len(runs(store, "slow")) >= 2, 60, "the survivor's run")
    assert survivor.stop() == 0
    history = runs(store, "slow")
    abandoned = history[0]
    assert abandoned.status == "abandoned", "the killed holder's run is marked abandoned"
    assert "abandoned" in (system.runs("slow", 100)[-1].error or "")
    assert_no_overlap(history)
    system.engine.dispose()


def test_sigint_stops_like_sigterm(tmp_path: Path, children: list[Child]) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    config = write_config(tmp_path, store_url, ticks_graph("long", 'every = "30d"', pages=100, sleep=0.1))
    child = scheduler(tmp_path, children, "scheduler", config)
    system = SystemStore(store_url).create()
    wait_for(lambda: (system.cursor("long", "read") or 0) >= 2, 30, "two committed pages")
    assert child.stop(signal.SIGINT) == 0  # Ctrl-C: no traceback, exit 0
    [run] = system.runs("long")
    assert run.status == "interrupted" and run.error is None
    pages = system.cursor("long", "read")
    assert (tmp_path / "long.jsonl").read_text().count("\n") == 2 * pages
    assert any("SIGINT" in line["message"] for line in child.lines())
    assert "Traceback" not in child.log.read_text()
    system.engine.dispose()
