"""A sync killed with SIGKILL at any point, then run again, leaves every record exactly once in the store
and in the ``jsonl_file`` export fed by the same graph.

The sync runs in a real child process. It is killed at fixed points (during a
source read, after a transform, halfway through a file write, right after the
file write, inside the store's transaction before commit, right after a commit)
and at timed moments; after each kill the committed cursor must never be ahead of
the committed data, the file's committed part must hold exactly what the store
holds, and a final run completes the set: every record once in the store and
once in the file, no torn line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cdp_core.store import SystemStore
from sqlalchemy import func, select

from cdp_profiles.store import tables
from cdp_profiles.store.schema import PROFILES

RECORDS = 3000
PAGE = 100

CHILD = r'''
import os, signal, sys
from cdp_core import Register, Transform, hookimpl
from cdp_core.config import load_config
from cdp_core.plugins import load_plugins
from cdp_profiles import plugin as profiles_plugin
from cdp_core.runner import Runner
from cdp_core.store import checkpoint as checkpoint_module

point, nth = os.environ.get("KILL_AT", "never"), int(os.environ.get("KILL_NTH", "0"))
count = {"n": 0}

def maybe_kill(here):
    if here == point:
        count["n"] += 1
        if count["n"] == nth:
            os.kill(os.getpid(), signal.SIGKILL)

class Tap(Transform):
    def process(self, batch, ctx):
        maybe_kill("after_transform")
        return batch

original_write = checkpoint_module.Checkpoint.write
def write(self, conn):
    original_write(self, conn)
    maybe_kill("inside_transaction")  # batch and cursor written, not yet committed
checkpoint_module.Checkpoint.write = write

from cdp_core.builtins import filestate
original_append = filestate.OutputFile.append
def append(self, data, checkpoint):
    if point == "mid_file_write" and count["n"] + 1 == nth:
        os.write(self._fd, data[: len(data) // 2])  # half a batch on disk, the last line torn
        os.fsync(self._fd)
    maybe_kill("mid_file_write")
    return original_append(self, data, checkpoint)
filestate.OutputFile.append = append

class Plugin:
    @hookimpl
    def cdp_register_transforms(self, register: Register) -> None:
        register("tap", Tap)
    @hookimpl
    def cdp_batch_written(self, run, node, count):
        # The file is written first, the store last (it commits the checkpoint).
        maybe_kill("after_file_write" if node == "copy" else "after_commit")

plugins = load_plugins(entry_points=False, extra=[("crash", Plugin()), ("profiles", profiles_plugin)])
config = load_config(sys.argv[1], plugins)
runner = Runner(config, plugins)
if point == "during_read":
    original = runner.system.cursor
    def cursor(graph, node):
        value = original(graph, node)
        maybe_kill("during_read")
        return value
    runner.system.cursor = cursor
run = runner.run("ingest")
sys.exit(0 if str(run.status) == "succeeded" else 1)
'''


def _setup(tmp_path: Path, store_url: str) -> Path:
    with (tmp_path / "people.jsonl").open("w") as out:
        for i in range(RECORDS):
            person = {"id": i, "email": f"person{i % 2000}@example.org", "n": i, "updated": f"2024-01-01T00:00:{i:06d}"}
            out.write(json.dumps(person) + "\n")
    (tmp_path / "child.py").write_text(CHILD)
    config = tmp_path / "connectors.toml"
    config.write_text(
        f"""
[store]
url = "{store_url}"

[connectors.files]
type = "jsonl"
streams.people = {{ path = "people.jsonl", cursor_field = "n", batch_size = {PAGE}, identifiers = {{ email = "email" }} }}

[connectors.store]
type = "profile_store"

[connectors.export]
type = "jsonl_file"
path = "export.jsonl"

[syncs.ingest.nodes.people]
source = "files.people"
[syncs.ingest.nodes.tap]
transform = "tap"
inputs = ["people"]
[syncs.ingest.nodes.store]
destination = "store"
inputs = ["tap"]
[syncs.ingest.nodes.copy]
destination = "export"
inputs = ["tap"]
"""
    )
    return config


def _start(tmp_path: Path, config: Path, point: str = "never", nth: int = 0) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KILL_AT": point, "KILL_NTH": str(nth)}
    return subprocess.Popen(
        [sys.executable, str(tmp_path / "child.py"), str(config)], env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _stored_keys(system: SystemStore) -> list[str]:
    with system.engine.connect() as conn:
        return list(conn.execute(select(tables.record_index.c.key)).scalars())


def _file_keys(data: bytes) -> list[int]:
    """The record keys of JSON lines, every line complete."""
    assert not data or data.endswith(b"\n"), f"a torn last line: {data[-80:]!r}"
    return [int(json.loads(line)["key"]) for line in data.decode().splitlines()]


def _check_file(system: SystemStore, path: Path) -> None:
    """The file's committed part (its length is committed with the cursor) holds exactly what the store holds."""
    state = system.cursor("ingest", "copy")
    if state is None:
        assert not path.exists() or path.stat().st_size == 0
        return
    assert state["file"] == str(path)
    data = path.read_bytes()
    assert len(data) >= state["length"], "the file lost committed bytes"
    committed = _file_keys(data[: state["length"]])
    assert len(committed) == len(set(committed)), "a record twice in the committed part of the file"
    assert set(committed) == {int(k) for k in _stored_keys(system)}, "file and store disagree"


def _check_consistent(system: SystemStore) -> None:
    """The committed cursor never runs ahead of the committed records."""
    keys = {int(k) for k in _stored_keys(system)}
    cursor = system.cursor("ingest", "people")
    if cursor is None:
        assert keys == set()
        return
    offset_done = cursor.get("max") if "offset" in cursor else cursor.get("watermark")
    if offset_done is not None:
        assert set(range(int(offset_done) + 1)) <= keys, "cursor is ahead of the data"
    with system.engine.connect() as conn:
        identities = conn.execute(select(func.count()).select_from(tables.identities)).scalar_one()
        live = conn.execute(select(func.count()).select_from(tables.profiles).where(tables.profiles.c.merged_into.is_(None))).scalar_one()
    assert identities == live  # one email per person here: every live profile owns exactly its email


def _check_complete(system: SystemStore, tmp_path: Path) -> None:
    """After a run that finished: every record exactly once in the store and in the file, no torn line."""
    keys = _stored_keys(system)
    assert sorted(keys, key=int) == [str(i) for i in range(RECORDS)]
    _check_consistent(system)
    _check_file(system, tmp_path / "export.jsonl")
    exported = _file_keys((tmp_path / "export.jsonl").read_bytes())
    assert sorted(exported) == list(range(RECORDS)), "the file holds a record twice, or misses one"
    assert system.cursor("ingest", "copy")["length"] == (tmp_path / "export.jsonl").stat().st_size


@pytest.mark.parametrize(
    "kills",
    [
        [("during_read", 1)],
        [("after_transform", 3), ("after_transform", 1)],
        [("inside_transaction", 2), ("inside_transaction", 5)],
        [("after_commit", 4), ("inside_transaction", 1), ("after_transform", 2)],
        [("mid_file_write", 3), ("mid_file_write", 1), ("mid_file_write", 2)],
        [("after_file_write", 2), ("after_file_write", 1), ("after_commit", 3), ("after_file_write", 4)],
        [("mid_file_write", 2), ("after_commit", 2), ("after_file_write", 3), ("inside_transaction", 1)],
    ],
    ids=[
        "during-read", "after-transform", "inside-transaction", "mixed",
        "mid-file-write", "after-file-write", "mixed-file",
    ],
)
def test_sigkill_at_fixed_points_then_rerun(tmp_path: Path, store_url: str, kills: list[tuple[str, int]]) -> None:
    config = _setup(tmp_path, store_url)
    system = SystemStore(store_url).create([PROFILES])
    for point, nth in kills:
        child = _start(tmp_path, config, point, nth)
        _, err = child.communicate(timeout=300)
        assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
        _check_consistent(system)
        _check_file(system, tmp_path / "export.jsonl")
    child = _start(tmp_path, config)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 0, err.decode()[-2000:]
    _check_complete(system, tmp_path)
    system.engine.dispose()


def test_sigkill_at_timed_moments_then_rerun(tmp_path: Path, store_url: str) -> None:
    config = _setup(tmp_path, store_url)
    system = SystemStore(store_url).create([PROFILES])
    for delay in (0.8, 1.5, 2.5):
        child = _start(tmp_path, config)
        time.sleep(delay)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.communicate(timeout=300)
        _check_consistent(system)
        _check_file(system, tmp_path / "export.jsonl")
    child = _start(tmp_path, config)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 0, err.decode()[-2000:]
    _check_complete(system, tmp_path)
    system.engine.dispose()
