"""The total time limit of one HTTP call bounds the whole call, a body that trickles in included.

Over a real local socket: httpx's read timeout bounds each wait for a chunk, so a
server sending a byte every few milliseconds never trips it; the client's deadline must.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from cdp_core.http import HttpFactory, NetworkError, RetryPolicy, Timeouts


@pytest.fixture
def trickling_server() -> Iterator[tuple[str, threading.Event]]:
    """An HTTP server on 127.0.0.1 that announces a large body and sends it one byte at a time, until told to stop."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        listener.settimeout(30)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
            try:
                while not stop.wait(0.01):
                    conn.sendall(b" ")
            except OSError:
                pass  # the client gave up and closed the connection: what the test wants

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", stop
    stop.set()
    listener.close()
    thread.join(30)


def test_a_trickling_body_fails_the_call_at_its_total_time_limit(trickling_server: tuple[str, threading.Event]) -> None:
    url, stop = trickling_server
    factory = HttpFactory(
        timeouts=Timeouts(connect=5, read=30, write=5, total=1.0), retry=RetryPolicy(max_attempts=1)
    )
    client = factory.client(base_url=url, connector="slow")
    outcome: list[BaseException | object] = []

    def call() -> None:
        try:
            outcome.append(client.get("/contacts"))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(60)  # far beyond the limit: without the deadline on the body the call never ends
    stop.set()
    assert not worker.is_alive(), "the call outlived its total time limit by far"
    [error] = outcome
    assert isinstance(error, NetworkError) and error.timed_out, error
    assert "total time limit" in str(error) and "connector 'slow'" in str(error)
    client.close()
