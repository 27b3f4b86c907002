"""The ASGI application of ``cdp serve``: Segment's HTTP Tracking API, vendor webhooks, health and metrics.

Every accepted message is in the ingest log, committed, before the answer (the group
committer shares transactions among concurrent requests). Answers:

- 200 ``{"success": true, "accepted": N, "duplicates": N}`` (a repeated ``messageId`` is
  dropped and counted, still 200, as Segment does);
- 400 ``{"success": false, "error": REASON}``: not JSON, too large, a message that does
  not follow the API, an unknown ``Content-Encoding``; nothing of the request is stored;
- 401: no write key, or one no ``tracking_api`` connector has; a webhook delivery whose signature
  does not match, a subscription check without the right verify token, or any request to a
  webhook whose connector lacks its secret;
- 404: no such call or webhook; 405: a GET to a webhook that has no subscription check;
- 429 with ``Retry-After``: over the key's ``rate_limit``;
- 503: the store cannot take the write (the sender retries; nothing was acknowledged).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cdp_core.ingest.committer import GroupCommitter
from cdp_core.ingest.log import AppendResult, IngestEntry
from cdp_core.ingest.tracking import MAX_BATCH, MessageError, batch_messages, parse_body, single_message
from cdp_core.runner import describe_error
from cdp_core.serve.metrics import Metrics
from cdp_core.serve.screening import RecordsOf, ServeScreens
from cdp_core.serve.ratelimit import TokenBucket
from cdp_core.timeutil import utc_now
from cdp_core.webhooks import Webhook

log = logging.getLogger("cdp.serve")

MAX_WEBHOOK = 5 * 2**20
"""Bytes a webhook delivery may take."""
CALLS = ("identify", "track", "page", "screen", "group", "alias")
SHORT_PATHS = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group", "a": "alias", "b": "batch"}
"""analytics.js (analytics-next) posts to ``/v1/t``, ``/v1/i``... and batches to ``/v1/b``: the same calls."""


@dataclass
class KeyedSource:
    """A ``tracking_api`` connector as the server sees it: its name, write key and rate limit."""

    name: str
    write_key: str
    bucket: TokenBucket | None = None


@dataclass
class ServeState:
    """What the application needs: the store, the committer, the sources and webhooks it serves."""

    engine: Engine
    committer: GroupCommitter
    sources: list[KeyedSource]
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    now: Callable[[], datetime] = utc_now
    on_stored: Callable[[], None] = lambda: None
    """Called after a request stored something (wakes the continuous graphs)."""
    unverifiable: dict[str, str] = field(default_factory=dict)
    """Connectors of a webhook type that cannot verify a delivery (a secret not set), with why: every request gets 401."""
    screens: ServeScreens | None = None
    """The suppression screens applied before anything is logged (cdp_core/serve/screening.py)."""
    records_of: RecordsOf = lambda entry: None
    """The records a logged entry becomes (Tracking API calls), for the screens."""
    redact: Callable[[str], str] = lambda text: text
    """The config's secret redaction, for what is logged."""

    def source_for(self, key: str | None) -> KeyedSource | None:
        """The source whose write key is ``key``, compared in constant time with every key."""
        if not key:
            return None
        found = None
        for source in self.sources:
            if hmac.compare_digest(source.write_key.encode(), key.encode()):
                found = source
        return found


class Refused(Exception):
    """A request answered with an error status and a reason."""

    def __init__(self, status: int, reason: str, error: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.reason = reason
        self.error = error
        self.headers = dict(headers or {})


def build_app(state: ServeState, lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None) -> Starlette:
    """The Starlette application over ``state``."""

    def timed(endpoint: str, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            started = time.perf_counter()
            response = await handler(request)
            state.metrics.request(endpoint, response.status_code, time.perf_counter() - started)
            return response

        return run

    async def call(request: Request) -> Response:
        kind = SHORT_PATHS.get(request.path_params["kind"], request.path_params["kind"])
        source_name = "-"
        if kind not in (*CALLS, "batch"):
            return _refuse(state, source_name, Refused(404, "not_found", f"no call /v1/{kind}; calls: {', '.join(CALLS)}, batch"))
        try:
            header_key = _basic_user(request.headers.get("authorization"))
            source = state.source_for(header_key)
            source_name = source.name if source is not None else source_name
            if header_key is not None and source is None:
                raise Refused(401, "unknown_write_key", "unknown write key")
            raw = await _read_body(request, MAX_BATCH, "request")
            body = parse_body(raw)
            if source is None:
                source = state.source_for(body.get("writeKey") if isinstance(body.get("writeKey"), str) else None)
                if source is None:
                    why = "unknown write key" if body.get("writeKey") else "no write key (HTTP basic user or 'writeKey')"
                    raise Refused(401, "unknown_write_key", why)
            source_name = source.name
            messages = batch_messages(body) if kind == "batch" else [single_message(body, kind, len(raw))]
            _rate_limit(source, len(messages))
            received = state.now()
            entries = [IngestEntry(source.name, m["messageId"], m["type"], m, received) for m in messages]
            result = await _store(state, entries)
        except MessageError as exc:
            return _refuse(state, source_name, Refused(400, exc.reason, str(exc)))
        except Refused as refused:
            return _refuse(state, source_name, refused)
        state.metrics.stored(source.name, result.accepted, result.duplicates)
        if result.accepted:
            state.on_stored()
        return JSONResponse({"success": True, "accepted": result.accepted, "duplicates": result.duplicates})

    async def webhook(request: Request) -> Response:
        name = request.path_params["connector"]
        if (why := state.unverifiable.get(name)) is not None:
            log.warning("webhook %s refused: %s", name, why)  # the operator's problem: not told to the caller
            return _refuse(state, name, Refused(401, "not_configured", "this webhook cannot verify deliveries"))
        handler = state.webhooks.get(name)
        if handler is None:
            return _refuse(state, name, Refused(404, "not_found", f"no webhook for connector {name!r}"))
        if request.method == "GET":
            if not handler.has_handshake():
                refused = Refused(405, "method_not_allowed", "this webhook takes POST only", {"Allow": "POST"})
                return _refuse(state, name, refused)
            answer = handler.handshake(dict(request.query_params))
            if answer is None:
                refused = Refused(401, "bad_verify_token", "not a subscription check with the right verify token")
                return _refuse(state, name, refused)
            return PlainTextResponse(answer)
        try:
            raw = await _read_body(request, MAX_WEBHOOK, "delivery")
            if not handler.verify(request.headers, raw):
                raise Refused(401, "bad_signature", "the signature does not match")
            try:
                entries = handler.entries(request.headers, raw, state.now())
            except ValueError as exc:  # WebhookPayloadError: the signed body is not the documented shape
                raise Refused(400, "invalid", str(exc)) from None
            result = await _store(state, entries)
        except Refused as refused:
            return _refuse(state, name, refused)
        except MessageError as exc:
            return _refuse(state, name, Refused(400, exc.reason, str(exc)))
        state.metrics.stored(name, result.accepted, result.duplicates)
        if result.accepted:
            state.on_stored()
        return JSONResponse({"success": True, "accepted": result.accepted, "duplicates": result.duplicates})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        try:
            await run_in_threadpool(_ping, state.engine)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("not ready: the store cannot be reached: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable", "error": "the store cannot be reached"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    routes = [
        Route("/v1/{kind:str}", timed("/v1/call", call), methods=["POST"]),
        Route("/webhooks/{connector:str}", timed("/webhooks", webhook), methods=["GET", "POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]

    # Browsers (analytics.js on the customer's site) post from other origins: allowed, without credentials.
    middleware = [Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"], allow_headers=["*"])]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    return app


async def _store(state: ServeState, entries: list[IngestEntry]) -> AppendResult:
    dropped = 0
    if state.screens is not None and entries:
        source = entries[0].source  # one request: one source
        if state.screens.due():
            try:
                await run_in_threadpool(state.screens.refresh)
            except Exception as exc:  # noqa: BLE001 - unscreened, nothing may be stored: the sender retries
                log.error("the suppression list cannot be read: %s", describe_error(exc, state.redact))
                raise Refused(503, "screen_unavailable", "the server cannot take messages now; retry") from None
        entries, dropped = state.screens.keep(entries, state.records_of)
        if dropped:
            state.metrics.suppress(source, dropped)
    if not entries:  # all suppressed: answered as accepted (nobody learns who is suppressed), never stored
        return AppendResult(accepted=dropped)
    try:
        result = await asyncio.wrap_future(state.committer.submit(entries))
        if dropped:
            result = AppendResult(result.accepted + dropped, result.duplicates, result.stored)
        return result
    except Exception as exc:  # noqa: BLE001 - nothing acknowledged: the sender retries
        log.error("storing %d messages failed: %s", len(entries), type(exc).__name__)
        raise Refused(503, "store_unavailable", "the store cannot take the write now; retry") from None


def _refuse(state: ServeState, source: str, refused: Refused) -> Response:
    state.metrics.reject(source, refused.reason)
    return JSONResponse({"success": False, "error": refused.error}, status_code=refused.status, headers=refused.headers)


def _rate_limit(source: KeyedSource, count: int) -> None:
    if source.bucket is None:
        return
    wait = source.bucket.take(count)
    if wait == 0.0:
        return
    if math.isinf(wait):
        raise Refused(429, "rate_limited", f"{count} messages are more than the rate limit's burst ({source.bucket.capacity:g})")
    raise Refused(429, "rate_limited", "rate limit exceeded", {"Retry-After": str(max(1, math.ceil(wait)))})


def _basic_user(header: str | None) -> str | None:
    """The user name of an HTTP basic ``Authorization`` header (the write key); None without one."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(401, "unknown_write_key", "the Authorization header is not valid HTTP basic") from None
    return decoded.partition(":")[0] or None


async def _read_body(request: Request, limit: int, what: str) -> bytes:
    """The body, gzip or deflate undone, at most ``limit`` bytes (else a 400 saying so)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise MessageError(f"the {what} is over {limit:,} bytes; at most {limit // 1024} KB are accepted", "too_large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate"):
        raise Refused(400, "bad_encoding", f"Content-Encoding {encoding!r} is not supported (gzip, deflate)")
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib, by the header
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise Refused(400, "bad_encoding", f"the body is not valid {encoding}: {exc}") from None
    if len(out) > limit:
        raise MessageError(f"the {what} is over {limit:,} bytes uncompressed; at most {limit // 1024} KB are accepted", "too_large")
    return out


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))

