"""A sync killed with SIGKILL at any point, then run again, leaves every record exactly once in the store.

The sync runs in a real child process. It is killed at fixed points (during a
source read, after a transform, inside the store's transaction before commit,
right after a commit) and at timed moments; after each kill the committed cursor
must never be ahead of the committed data, and a final run completes the set.
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

from cdp_profiles.store import profile_models as m
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

class Plugin:
    @hookimpl
    def cdp_register_transforms(self, register: Register) -> None:
        register("tap", Tap)
    @hookimpl
    def cdp_batch_written(self, run, node, count):
        maybe_kill("after_commit")

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

[syncs.ingest.nodes.people]
source = "files.people"
[syncs.ingest.nodes.tap]
transform = "tap"
inputs = ["people"]
[syncs.ingest.nodes.store]
destination = "store"
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
        return list(conn.execute(select(m.RecordIndex.key)).scalars())


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
        identities = conn.execute(select(func.count()).select_from(m.Identity)).scalar_one()
        live = conn.execute(select(func.count()).select_from(m.Profile).where(m.Profile.merged_into.is_(None))).scalar_one()
    assert identities == live  # one email per person here: every live profile owns exactly its email


@pytest.mark.parametrize(
    "kills",
    [
        [("during_read", 1)],
        [("after_transform", 3), ("after_transform", 1)],
        [("inside_transaction", 2), ("inside_transaction", 5)],
        [("after_commit", 4), ("inside_transaction", 1), ("after_transform", 2)],
    ],
    ids=["during-read", "after-transform", "inside-transaction", "mixed"],
)
def test_sigkill_at_fixed_points_then_rerun(tmp_path: Path, store_url: str, kills: list[tuple[str, int]]) -> None:
    config = _setup(tmp_path, store_url)
    system = SystemStore(store_url).create([PROFILES])
    for point, nth in kills:
        child = _start(tmp_path, config, point, nth)
        _, err = child.communicate(timeout=300)
        assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
        _check_consistent(system)
    child = _start(tmp_path, config)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 0, err.decode()[-2000:]
    keys = _stored_keys(system)
    assert sorted(keys, key=int) == [str(i) for i in range(RECORDS)]
    _check_consistent(system)
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
    child = _start(tmp_path, config)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 0, err.decode()[-2000:]
    assert sorted(_stored_keys(system), key=int) == [str(i) for i in range(RECORDS)]
    system.engine.dispose()
