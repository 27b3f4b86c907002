"""`cdp sync` as a real process: SIGTERM and SIGINT end it cleanly, kill -9 leaves a run that is abandoned
when its lease expires, after which `cdp sync` of the graph starts again.

The child is the real command line with the scheduler tests' plugin added (a slow transform).
Every wait is on a condition in the store, bounded, and every child is killed if a test fails.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_scheduler_kit import wait_for, write_config
from test_scheduler_processes import Child

from cdp_core.store import SystemStore
from cdp_core.store.leases import Leases

RECORDS = 400
PAGE = 10
GRAPH = """
[connectors.files]
type = "jsonl"
streams.people = {{ path = "people.jsonl", cursor_field = "n", batch_size = {page} }}
[connectors.copy]
type = "jsonl_file"
path = "copy.jsonl"

[syncs.ingest.nodes.people]
source = "files.people"
[syncs.ingest.nodes.slow]
transform = "sleep"
inputs = ["people"]
options = {{ seconds = {sleep}, marker = "batch-started" }}
[syncs.ingest.nodes.copy]
destination = "copy"
inputs = ["slow"]
"""


def _config(tmp_path: Path, store_url: str, sleep: float) -> Path:
    people = tmp_path / "people.jsonl"
    if not people.exists():
        with people.open("w") as out:
            for n in range(RECORDS):
                out.write(json.dumps({"id": n, "n": n}) + "\n")
    return write_config(tmp_path, store_url, GRAPH.format(page=PAGE, sleep=sleep))


@pytest.fixture
def started() -> Iterator[list[Child]]:
    """The children a test started; killed if still running at its end."""
    children: list[Child] = []
    yield children
    for child in children:
        child.kill()


def _sync(tmp_path: Path, started: list[Child], env: dict[str, str] | None = None) -> Child:
    """``cdp sync ingest`` in a child process (its stderr in a file, read while it runs)."""
    child = Child(tmp_path, f"sync{len(started)}", ["sync", "ingest", "-c", str(tmp_path / "connectors.toml")], env)
    started.append(child)
    return child


def _finish(child: Child, timeout: float = 60) -> tuple[int, str, str]:
    out, _ = child.process.communicate(timeout=timeout)
    return child.process.returncode, out, child.log.read_text()


def _committed(system: SystemStore) -> int:
    """The highest ``n`` whose batch is committed (-1: none)."""
    cursor = system.cursor("ingest", "people")
    if isinstance(cursor, dict):
        value = cursor.get("max", cursor.get("watermark"))
        return int(value) if value is not None else -1
    return -1


def _copied(tmp_path: Path) -> list[int]:
    return [json.loads(line)["data"]["n"] for line in (tmp_path / "copy.jsonl").read_text().splitlines()]


def _run_row(system: SystemStore) -> Any:
    [run] = system.runs("ingest")
    return run


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_the_sync_after_its_batch(
    tmp_path: Path, store_url: str, started: list[Child], sig: signal.Signals
) -> None:
    _config(tmp_path, store_url, sleep=0.2)  # 40 batches: eight seconds
    system = SystemStore(store_url).create()
    child = _sync(tmp_path, started)
    wait_for(lambda: _committed(system) >= 3 * PAGE - 1, 60, "three committed batches", step=0.02)
    child.process.send_signal(sig)
    code, out, err = _finish(child)
    assert code == 0, err
    assert "Traceback" not in out + err
    assert sig.name in err and "stopping after the batch" in err

    run = _run_row(system)
    assert run.status == "interrupted" and run.finished_at is not None and run.error is None
    last = _committed(system)
    assert 3 * PAGE - 1 <= last < RECORDS - 1, "stopped early, mid-file"
    assert _copied(tmp_path) == list(range(last + 1)), "the batch being written was finished and committed"
    assert run.nodes["people"].records_out == last + 1 == run.nodes["copy"].records_out
    assert Leases(system.engine).holder_of("ingest") is None, "the lease was released"
    with system.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sync_leases").scalar_one() == 0

    # The next sync resumes from the cursor: the file holds every record once.
    _config(tmp_path, store_url, sleep=0)
    code, _, err = _finish(_sync(tmp_path, started))
    assert code == 0, err
    assert _copied(tmp_path) == list(range(RECORDS))
    system.engine.dispose()


def test_a_second_ctrl_c_stops_at_once_and_leaves_no_run_running(
    tmp_path: Path, store_url: str, started: list[Child]
) -> None:
    _config(tmp_path, store_url, sleep=30)  # one batch would take half a minute
    system = SystemStore(store_url).create()
    child = _sync(tmp_path, started)
    wait_for(lambda: (tmp_path / "batch-started").exists(), 60, "the first batch to be under way")
    child.process.send_signal(signal.SIGINT)
    wait_for(lambda: "stopping after" in child.log.read_text(), 30, "the first Ctrl-C to be seen")
    child.process.send_signal(signal.SIGINT)
    code, out, err = _finish(child, timeout=20)
    assert code == 130, err
    assert "Traceback" not in out + err and "interrupted" in err
    run = _run_row(system)
    assert run.status == "interrupted" and run.finished_at is not None
    assert "not committed" in (run.error or "")
    assert Leases(system.engine).holder_of("ingest") is None
    assert _committed(system) == -1 and not _copied(tmp_path)
    system.engine.dispose()


def test_a_killed_sync_is_abandoned_when_its_lease_expires_and_the_graph_runs_again(
    tmp_path: Path, store_url: str, started: list[Child]
) -> None:
    ttl = "3"
    _config(tmp_path, store_url, sleep=0.2)
    system = SystemStore(store_url).create()
    child = _sync(tmp_path, started, env={"CDP_LEASE_TTL": ttl})
    wait_for(lambda: _committed(system) >= 3 * PAGE - 1, 60, "three committed batches", step=0.02)
    child.process.send_signal(signal.SIGKILL)
    _finish(child)
    committed = _committed(system)
    dead = _run_row(system)
    assert dead.status == "running"
    assert dead.nodes["people"].records_out == committed + 1, "the counts of every committed batch are on the run"

    # While the dead process's lease lives, the graph is busy.
    code, _, err = _finish(_sync(tmp_path, started, env={"CDP_LEASE_TTL": ttl}))
    if code == 1:
        assert "busy" in err
    # Once it expired, `cdp sync` starts, marks the dead run abandoned and completes the set.
    wait_for(lambda: Leases(system.engine).holder_of("ingest") is None, 30, "the lease to expire", step=0.1)
    _config(tmp_path, store_url, sleep=0)
    code, _, err = _finish(_sync(tmp_path, started, env={"CDP_LEASE_TTL": ttl}))
    assert code == 0, err
    runs = {run.id: run for run in system.runs("ingest")}
    abandoned = runs[dead.id]
    assert abandoned.status == "abandoned" and "abandoned" in (abandoned.error or "")
    assert abandoned.finished_at is not None
    assert abandoned.nodes["people"].records_out == committed + 1
    assert abandoned.nodes["copy"].records_out == committed + 1
    assert not [run for run in runs.values() if run.status == "running"]
    assert _copied(tmp_path) == list(range(RECORDS)), "every record once: nothing of the killed batch repeated"
    system.engine.dispose()


RETRIED = 5_000  # five chunks of cdp_core.retry.CHUNK
RETRY_GRAPH = """
[connectors.files]
type = "jsonl"
streams.people = {{ path = "people.jsonl", cursor_field = "n" }}
[connectors.copy]
type = "jsonl_file"
path = "copy.jsonl"

[syncs.ingest.nodes.people]
source = "files.people"
[syncs.ingest.nodes.check]
{check}
inputs = ["people"]
[syncs.ingest.nodes.copy]
destination = "copy"
inputs = ["check"]
"""


def _retry_config(tmp_path: Path, store_url: str, check: str) -> Path:
    people = tmp_path / "people.jsonl"
    if not people.exists():
        people.write_text("".join(json.dumps({"id": n, "n": n}) + "\n" for n in range(RETRIED)))
    return write_config(tmp_path, store_url, RETRY_GRAPH.format(check=check))


def _retry(tmp_path: Path, started: list[Child]) -> Child:
    args = ["quarantine", "retry", "-c", str(tmp_path / "connectors.toml")]
    child = Child(tmp_path, f"retry{len(started)}", args)
    started.append(child)
    return child


def test_sigterm_ends_a_quarantine_retry_after_its_batch(tmp_path: Path, store_url: str, started: list[Child]) -> None:
    # Every record lacks an email: all of them go to quarantine at `check`.
    _retry_config(tmp_path, store_url, 'transform = "validate"\noptions = { required = ["email"] }')
    code, _, err = _finish(_sync(tmp_path, started))
    assert code == 0, err
    system = SystemStore(store_url).create()
    assert len(system.quarantined("ingest", None, [], None)) == RETRIED and not _copied(tmp_path)

    # Fixed (the check now lets everyone through, slowly): a retry sends them again, a chunk at a time.
    _retry_config(tmp_path, store_url, 'transform = "sleep"\noptions = { seconds = 1.0 }')
    child = _retry(tmp_path, started)
    wait_for(lambda: len(_copied(tmp_path)) >= 1_000, 120, "the first retried chunk", step=0.02)
    child.process.send_signal(signal.SIGTERM)
    code, out, err = _finish(child)
    assert code == 0, err
    assert "Traceback" not in out + err and "SIGTERM" in err
    [retry] = [run for run in system.runs("ingest") if run.kind == "retry"]
    assert retry.status == "interrupted" and retry.finished_at is not None
    copied = _copied(tmp_path)
    assert 1_000 <= len(copied) < RETRIED, "stopped early, between chunks"
    assert len(set(copied)) == len(copied), "the chunk being written was finished once"
    left = system.quarantined("ingest", None, [], None)
    assert len(left) + len(copied) == RETRIED, "what was not sent again is still in quarantine"
    assert Leases(system.engine).holder_of("ingest") is None, "the lease was released"

    # The next retry sends the rest: every record once.
    _retry_config(tmp_path, store_url, 'transform = "sleep"\noptions = { seconds = 0 }')
    code, _, err = _finish(_retry(tmp_path, started))
    assert code == 0, err
    assert sorted(_copied(tmp_path)) == list(range(RETRIED))
    assert not system.quarantined("ingest", None, [], None)
    system.engine.dispose()
