"""Bad-input corpus: stops and output files. `cdp sync` is run as a real process on both databases.

Each case asserts the exit code, a message that says what and where, no traceback, and the
counts (records read = written + quarantined) on the run's row. The signal cases use the
scheduler tests' plugin (a slow transform that marks when a batch is under way).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cdp_core.store import SystemStore

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from test_scheduler_kit import cli_command, wait_for
from test_sync_stops import RECORDS, _config


@dataclass
class Case:
    prepare: Callable[[Path], None]
    """Changes the output after a first complete run (or makes it before any)."""
    code: int
    message: str
    status: str
    first_run: bool = True
    signal: int | None = None


def _cut(tmp_path: Path) -> None:
    out = tmp_path / "copy.jsonl"
    out.write_bytes(out.read_bytes()[:100])


def _rewritten(tmp_path: Path) -> None:
    out = tmp_path / "copy.jsonl"
    data = out.read_bytes()
    assert data.endswith(b"null}\n")
    out.write_bytes(data[:-6] + b"1234}\n" + b"{}\n")  # the committed end changed, and a line added


def _torn_from_before(tmp_path: Path) -> None:
    out = tmp_path / "copy.jsonl"
    out.write_bytes(b'{"key": "old"}\n{"key": "ol')


def _directory(tmp_path: Path) -> None:
    (tmp_path / "copy.jsonl").mkdir()


def _nothing(tmp_path: Path) -> None:
    pass


CASES = {
    "output-cut-shorter-than-committed": Case(_cut, 1, "holds 100 bytes, fewer than the", "failed"),
    "output-committed-part-changed": Case(_rewritten, 1, "are not what the last run committed", "failed"),
    "output-torn-line-found-at-start": Case(_torn_from_before, 0, "ends in an incomplete line", "succeeded", False),
    "output-path-is-a-directory": Case(_directory, 1, "is a directory, not a file", "failed", False),
    "sigterm-mid-batch": Case(_nothing, 0, "SIGTERM: stopping after the batch", "interrupted", False, signal.SIGTERM),
    "sigint-mid-batch": Case(_nothing, 0, "SIGINT: stopping after the batch", "interrupted", False, signal.SIGINT),
}


def _sync(tmp_path: Path, config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command("sync", "ingest", "-c", str(config)),
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.parametrize("name", list(CASES))
def test_stop_and_output_file_corpus(tmp_path: Path, store_url: str, name: str) -> None:
    case = CASES[name]
    config = _config(tmp_path, store_url, sleep=0)
    if case.first_run:
        first = subprocess.run(
            cli_command("sync", "ingest", "-c", str(config)),
            cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
        )
        assert first.returncode == 0, first.stderr
        with (tmp_path / "people.jsonl").open("a") as people:
            people.write(json.dumps({"id": RECORDS, "n": RECORDS}) + "\n")
    case.prepare(tmp_path)
    if case.signal is not None:
        _config(tmp_path, store_url, sleep=0.2)
    child = _sync(tmp_path, config)
    try:
        if case.signal is not None:
            wait_for(lambda: (tmp_path / "batch-started").exists(), 60, "a batch under way")
            child.send_signal(case.signal)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    output = out + err
    assert child.returncode == case.code, output
    assert case.message in output, output
    assert "Traceback" not in output
    if case.code == 1:
        assert "copy.jsonl" in output, "the message names the file"

    system = SystemStore(store_url)
    try:
        run = system.runs("ingest")[0]
        assert run.status == case.status, run
        assert not [r for r in system.runs("ingest") if r.status == "running"]
        totals = run.totals()
        assert totals.read == totals.written + totals.rejected, totals
        if case.signal is not None:
            assert 0 < totals.read < RECORDS, "stopped mid-run, after a committed batch"
        if case.status == "failed":
            assert totals.read == 0, "nothing was read: the file was left alone"
    finally:
        system.engine.dispose()
