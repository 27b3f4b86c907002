"""`cdp serve` as a real process on a real socket: a live identify shows in `cdp profiles show`; two servers on one
PostgreSQL store take interleaved batches at once and every message lands once.

Waits are on conditions with generous deadlines (the server answering, the person appearing), never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy import func, select, text

from cdp_core.store import SystemStore
from cdp_core.store.engine import make_engine

CDP = str(Path(sys.executable).with_name("cdp"))
KEY = "wk_live_test_key"
DEADLINE = 90.0


def wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Check ``condition`` until it returns something truthy; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline:.0f}s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, store_url: str) -> Path:
    path = folder / "connectors.toml"
    path.write_text(
        f"""
[store]
url = "{store_url}"

[connectors.web]
type = "tracking_api"
write_key = "${{WEB_WRITE_KEY}}"

[connectors.store]
type = "profile_store"

[syncs.live]
continuous = true

[syncs.live.nodes.web]
source = "web.messages"

[syncs.live.nodes.store]
destination = "store"
inputs = ["web"]
""",
        encoding="utf-8",
    )
    return path


class Server:
    """One `cdp serve` subprocess on a free port."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        env = {**os.environ, "WEB_WRITE_KEY": KEY}
        self.process = subprocess.Popen(
            [CDP, "serve", "-c", str(config), "--port", str(self.port), "--poll", "0.2"],
            stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )
        wait_for(self._healthy, f"cdp serve on port {self.port} to answer /health")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"cdp serve exited with {self.process.returncode}: {self.log.read_text()}")
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> int:
        """SIGTERM, then the exit code (a clean stop is 0)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail("cdp serve did not stop within 60s of SIGTERM")
        self._out.close()
        return code


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def test_a_live_identify_shows_in_profiles_show_within_seconds(tmp_path: Path, servers: list[Server]) -> None:
    config = write_config(tmp_path, "sqlite:///cdp.sqlite")
    server = Server(config, tmp_path / "serve.log")
    servers.append(server)
    auth = (KEY, "")
    identify = {
        "userId": "u-42", "anonymousId": "anon-7", "messageId": "id-1",
        "traits": {"email": "Live.Person@Example.com", "first_name": "Live"},
        "context": {"consent": {"categoryPreferences": {"email": True}}},
    }
    track = {"userId": "u-42", "event": "Order Completed", "properties": {"revenue": 30}, "messageId": "tr-1"}
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
        assert client.post("/v1/identify", json=identify).json() == {"success": True, "accepted": 1, "duplicates": 0}
        assert client.post("/v1/track", json=track).status_code == 200
        assert client.post("/v1/track", json=track).json()["duplicates"] == 1
        assert client.post("/v1/track", json=track, auth=("wk_wrong", "")).status_code == 401

    def shown() -> dict[str, Any] | None:
        done = subprocess.run(
            [CDP, "profiles", "show", "email:live.person@example.com", "-c", str(config), "--json"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            return None
        view = json.loads(done.stdout)
        return view if view.get("events") else None

    view = wait_for(shown, "the person and their event in `cdp profiles show`")
    text_view = json.dumps(view)
    assert "u-42" in text_view and "anon-7" in text_view and "Order Completed" in text_view
    assert server.stop() == 0
    assert KEY not in server.log.read_text()


@pytest.mark.postgres
def test_two_servers_on_one_postgresql_store_store_every_message_once(
    tmp_path: Path, servers: list[Server], postgres_database: str
) -> None:
    config = write_config(tmp_path, postgres_database)
    SystemStore(postgres_database).create()  # migrate once up front (each server would, under the lock)
    servers.extend([Server(config, tmp_path / "a.log"), Server(config, tmp_path / "b.log")])
    batches, per_batch = 30, 50
    errors: list[str] = []

    def send(worker: int) -> None:
        with httpx.Client(auth=(KEY, ""), timeout=60) as client:
            for b in range(batches):
                # interleaved: each sender alternates servers, and the two senders start on different ones
                server = servers[(worker + b) % 2]
                batch = [
                    {"type": "track", "userId": f"u{worker}-{i % 7}", "event": "Clicked", "messageId": f"w{worker}-b{b}-m{i}"}
                    for i in range(per_batch)
                ]
                response = client.post(f"{server.url}/v1/batch", json={"batch": batch})
                if response.status_code != 200:
                    errors.append(response.text)
                # a retry of the same batch through the other server is dropped there
                if b % 5 == 0:
                    again = client.post(f"{servers[(worker + b + 1) % 2].url}/v1/batch", json={"batch": batch})
                    if again.json().get("duplicates") != per_batch:
                        errors.append(f"retry not dropped: {again.text}")

    senders = [threading.Thread(target=send, args=(w,)) for w in range(2)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    assert errors == []
    expected = 2 * batches * per_batch
    engine = make_engine(postgres_database)
    try:
        def events_stored() -> bool:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one()) == expected

        wait_for(events_stored, f"{expected} events in the profile store")
        assert [server.stop() for server in servers] == [0, 0]
        done = subprocess.run([CDP, "sync", "live", "-c", str(config)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "WEB_WRITE_KEY": KEY}, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout + done.stderr
        with engine.connect() as conn:
            logged = int(conn.execute(text("SELECT count(*) FROM ingest_log")).scalar_one())
            keys = conn.execute(text("SELECT count(DISTINCT key), count(*) FROM events")).one()
        assert logged == expected
        assert tuple(keys) == (expected, expected)
        # no loss and no duplicate delivery: the runs of both servers (and the last sync) read each message once
        runs = SystemStore(engine).runs("live", 10_000)
        assert sum(run.totals().read for run in runs) == expected
        assert len({run.id for run in runs}) >= 2
    finally:
        engine.dispose()
