#!/usr/bin/env python3
"""The load generator of bench/serve.py, and the do-nothing server it is compared with.

    python bench/serve_load.py client --url http://127.0.0.1:PORT --phase batch --start T --seconds 20 ...
    python bench/serve_load.py null-app --port PORT

``client``: one process, one asyncio loop, ``--connections`` keep-alive HTTP/1.1 connections, each
with one request in flight at a time (a minimal client on asyncio streams: httpx's own pool was the
bottleneck, see bench/README.md). Each
request is a ``/v1/batch`` of ``--batch-size`` track calls or one ``/v1/track`` call, with
``messageId`` s ``PREFIX-<seq>`` unique within the run. It sends from the wall-clock time
``--start`` until ``--seconds`` later or until ``--max-events`` messages are sent, whichever
comes first. A request that gets no answer (connection refused or reset, a timeout) or a 429 or
5xx is sent again, the same body with the same messageIds, as Segment's SDKs retry; a request
in flight at the deadline is retried until ``--grace`` seconds after it (the kill run needs
that: the server may be restarting). It writes one JSON document to ``--out``: the messageIds
acknowledged with a 200, the latencies of the answered attempts, counts of errors and
duplicates, and the process's CPU seconds.

``null-app``: a Starlette application under uvicorn with the options ``cdp serve`` uses that
answers ``/v1/*`` as cdp does (reads the body, parses the JSON, answers 200 with the count of
messages) but stores nothing: the ceiling of HTTP in Python on this machine with this client.

Loopback only: the client refuses a URL whose host is not 127.0.0.1 or localhost.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

WRITE_KEY_ENV = "CDP_BENCH_WRITE_KEY"
"""The write key: in the environment of the server (its connectors.toml says ``${CDP_BENCH_WRITE_KEY}``) and the clients."""
LOOPBACK = ("127.0.0.1", "localhost")
EVENTS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed", "Page Scrolled")
RETRY_STATUSES = (429, 500, 502, 503, 504)


def track(message_id: str, seq: int, now: str) -> dict[str, Any]:
    """One track call as analytics-python sends it (~500 bytes of JSON)."""
    user = seq % 50_000
    return {
        "type": "track",
        "messageId": message_id,
        "userId": f"user-{user}",
        "anonymousId": f"anon-{user:08x}",
        "event": EVENTS[seq % len(EVENTS)],
        "properties": {
            "product_id": f"p-{seq % 997}",
            "price": round(5 + (seq % 300) / 7, 2),
            "currency": "EUR",
            "category": "shoes",
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.3"},
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
            "page": {"path": "/shoes/p-17", "url": "https://shop.example.com/shoes/p-17"},
        },
        "timestamp": now,
        "sentAt": now,
    }


class Load:
    """One client process's sending: shared counters of the tasks of one loop."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.batch = args.batch_size if args.phase == "batch" else 1
        self.path = "/v1/batch" if args.phase == "batch" else "/v1/track"
        self.next_seq = 0
        self.acked: list[str] = []
        self.latencies: list[float] = []
        self.at: list[float] = []
        """When each answered attempt was answered, seconds into the phase."""
        self.attempts = 0
        self.retries = 0
        self.errors: dict[str, int] = {}
        self.duplicates = 0
        self.unacked: list[str] = []
        self.rejected = 0

    def take(self) -> tuple[list[str], bytes] | None:
        """The next request's messageIds and body, or None when the count bound is reached."""
        if self.next_seq >= self.args.max_events:
            return None
        first = self.next_seq
        count = min(self.batch, self.args.max_events - first)
        self.next_seq += count
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        ids = [f"{self.args.prefix}-{seq}" for seq in range(first, first + count)]
        messages = [track(mid, seq, now) for mid, seq in zip(ids, range(first, first + count), strict=True)]
        if self.args.phase == "batch":
            body = {"batch": messages, "sentAt": now}
        else:
            body = messages[0]
        return ids, json.dumps(body, separators=(",", ":")).encode()

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def worker(self, connection: Connection, deadline: float, grace: float) -> None:
        while time.time() < deadline:
            work = self.take()
            if work is None:
                return
            ids, body = work
            while True:
                self.attempts += 1
                started = time.perf_counter()
                try:
                    status, answer = await asyncio.wait_for(connection.post(self.path, body), self.args.timeout)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    connection.close()
                    self.error(type(exc).__name__)
                    status = None
                if status == 200:
                    self.latencies.append(time.perf_counter() - started)
                    self.at.append(time.time() - self.args.start)
                    self.acked.extend(ids)
                    self.duplicates += int(json.loads(answer).get("duplicates", 0))
                    break
                if status is not None:
                    self.error(str(status))
                    if status not in RETRY_STATUSES:
                        self.rejected += len(ids)  # the bench's own bug: a 4xx is never retried
                        break
                if time.time() > grace:
                    self.unacked.extend(ids)
                    break
                self.retries += 1
                await asyncio.sleep(self.args.backoff)


class Connection:
    """One keep-alive HTTP/1.1 connection to the server: a request at a time, reconnecting after an error.

    A minimal client on asyncio streams, because httpx's pool spent a whole core at ~280 requests/s
    with 32 connections (bench/README.md): the client must not be what is measured.
    """

    def __init__(self, host: str, port: int, headers: bytes) -> None:
        self.host, self.port, self.headers = host, port, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (path.encode(), self.headers, len(body))
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, keep = 0, True
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
            elif name == b"transfer-encoding":
                raise ValueError("chunked answers are not expected")
        answer = await self.reader.readexactly(length)
        if not keep:
            self.close()
        return status, answer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def client_main(args: argparse.Namespace) -> dict[str, Any]:
    parts = urlsplit(args.url)
    if parts.hostname not in LOOPBACK or parts.port is None:
        raise SystemExit(f"serve_load: refusing {args.url}: the load generator sends to a loopback port only")
    load = Load(args)
    auth = base64.b64encode(f"{os.environ[WRITE_KEY_ENV]}:".encode()).decode()
    headers = f"Host: {parts.netloc}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\n".encode()
    connections = [Connection(parts.hostname, parts.port, headers) for _ in range(args.connections)]
    wait = args.start - time.time()
    if wait > 0:
        await asyncio.sleep(wait)
    began = time.time()
    deadline = args.start + args.seconds
    grace = deadline + args.grace
    await asyncio.gather(*(load.worker(connection, deadline, grace) for connection in connections))
    for connection in connections:
        connection.close()
    ended = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "began": began,
        "ended": ended,
        "acked": load.acked,
        "latencies": load.latencies,
        "at": load.at,
        "attempts": load.attempts,
        "retries": load.retries,
        "errors": load.errors,
        "duplicates": load.duplicates,
        "unacked": load.unacked,
        "rejected": load.rejected,
        "sent": load.next_seq,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def null_app(port: int) -> None:
    """cdp serve's HTTP work without the store: read, parse, count, answer."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def call(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        count = len(body["batch"]) if request.path_params["kind"] == "batch" else 1
        return JSONResponse({"success": True, "accepted": count, "duplicates": 0})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/v1/{kind:str}", call, methods=["POST"]), Route("/health", health)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    client = sub.add_parser("client")
    client.add_argument("--url", required=True)
    client.add_argument("--phase", choices=["batch", "single"], required=True)
    client.add_argument("--prefix", required=True, help="messageIds are PREFIX-<seq>")
    client.add_argument("--start", type=float, required=True, help="wall-clock time to begin (time.time())")
    client.add_argument("--seconds", type=float, required=True)
    client.add_argument("--max-events", type=int, required=True)
    client.add_argument("--connections", type=int, required=True)
    client.add_argument("--batch-size", type=int, default=100)
    client.add_argument("--grace", type=float, default=0.0, help="seconds after the deadline to keep retrying")
    client.add_argument("--backoff", type=float, default=0.05)
    client.add_argument("--timeout", type=float, default=30.0)
    client.add_argument("--out", type=Path, required=True)
    null = sub.add_parser("null-app")
    null.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "null-app":
        null_app(args.port)
        return 0
    result = asyncio.run(client_main(args))
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
