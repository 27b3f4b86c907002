"""Segment's HTTP Tracking API v1, the wire format: reading a request's messages and checking each one.

What is checked (a failure is :class:`MessageError`, answered 400 with the reason):

- the type: ``identify``, ``track``, ``page``, ``screen``, ``group``, ``alias`` (a batch
  message names it in ``type``; a single call's comes from its path);
- ``userId`` or ``anonymousId`` (one is required; numbers are taken as text); ``alias``
  needs ``userId`` and ``previousId``, ``group`` a ``groupId``, ``track`` a non-empty ``event``;
- ``traits``, ``properties``, ``context`` and ``integrations`` are objects when given;
  ``timestamp``, ``sentAt`` and ``originalTimestamp`` are ISO 8601 times when given;
- at most :data:`MAX_MESSAGE` bytes of JSON per message, :data:`MAX_BATCH` per request.

A message without ``messageId`` gets one (``cdp-`` and a random UUID), as Segment's own API
does: it is stored, but a retry of it cannot be recognised; every Segment and RudderStack
library sends one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from cdp_core.timeutil import as_utc

MAX_MESSAGE = 32 * 1024
"""Bytes of JSON one message may take (Segment: 32 KB)."""
MAX_BATCH = 500 * 1024
"""Bytes one request body may take, after gzip is undone (Segment: 500 KB)."""
TYPES = ("identify", "track", "page", "screen", "group", "alias")
_OBJECT_FIELDS = ("traits", "properties", "context", "integrations")
_TIME_FIELDS = ("timestamp", "sentAt", "originalTimestamp")


class MessageError(ValueError):
    """A message (or request) that does not follow the API; the text says what and where.

    ``reason`` names the kind of problem for the metrics: ``invalid``, ``bad_json`` or ``too_large``.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or :class:`MessageError` (also for ``NaN`` and ``Infinity``: not JSON)."""
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise MessageError(f"the body is not valid JSON: {exc}", "bad_json") from None
    if not isinstance(body, dict):
        raise MessageError(f"the body must be a JSON object, not {type(body).__name__}", "bad_json")
    return body


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON value")


def single_message(body: dict[str, Any], kind: str, size: int) -> dict[str, Any]:
    """The message of a ``/v1/<kind>`` call, checked; ``size``: its body's length in bytes."""
    if size > MAX_MESSAGE:
        raise MessageError(f"the message is {size:,} bytes; at most {MAX_MESSAGE:,} (32 KB) are accepted", "too_large")
    given = body.get("type")
    if given is not None and given != kind:
        raise MessageError(f"type {given!r} sent to /v1/{kind}")
    return check_message({k: v for k, v in body.items() if k != "writeKey"}, kind, owned=True)


def batch_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of a ``/v1/batch`` call, each checked; batch-level ``context`` and ``sentAt`` handed down."""
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise MessageError("a batch needs 'batch': a list of messages")
    if not batch:
        raise MessageError("'batch' is empty")
    shared_context = body.get("context")
    if shared_context is not None and not isinstance(shared_context, dict):
        raise MessageError("'context' must be an object")
    messages = []
    for index, item in enumerate(batch):
        where = f"batch[{index}]"
        if not isinstance(item, dict):
            raise MessageError(f"{where}: a message must be an object")
        size = json_size(item)
        if size > MAX_MESSAGE:
            raise MessageError(
                f"{where}: the message is {size:,} bytes; at most {MAX_MESSAGE:,} (32 KB) are accepted", "too_large"
            )
        kind = item.get("type")
        if kind not in TYPES:
            raise MessageError(f"{where}: 'type' must be one of {', '.join(TYPES)}; got {kind!r}")
        message = {k: v for k, v in item.items() if k != "writeKey"}
        if shared_context and isinstance(message.get("context", {}), dict):
            message["context"] = {**shared_context, **message.get("context", {})}
        if "sentAt" not in message and body.get("sentAt") is not None:
            message["sentAt"] = body["sentAt"]
        try:
            messages.append(check_message(message, kind, owned=True))
        except MessageError as exc:
            raise MessageError(f"{where}: {exc}", exc.reason) from None
    return messages


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (orjson: a batch's 100 messages are measured in every request)."""
    try:
        return len(orjson.dumps(value))
    except TypeError:  # beyond orjson: an integer over 64 bits, a lone surrogate (json.loads lets both through)
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


def check_message(message: dict[str, Any], kind: str, *, owned: bool = False) -> dict[str, Any]:
    """The message with ``type`` and ``messageId`` set and ids as text; :class:`MessageError` if it is not one.

    :param owned: ``message`` is the caller's own copy: it is changed and returned, not copied again.
    """
    out = message if owned else dict(message)
    out["type"] = kind
    for name in ("userId", "anonymousId", "previousId", "groupId", "messageId"):
        value = out.get(name)
        if isinstance(value, bool) or not (value is None or isinstance(value, (str, int, float))):
            raise MessageError(f"'{name}' must be a string")
        if value is not None:
            out[name] = str(value)
            if not out[name].strip():
                del out[name]
    if "userId" not in out and "anonymousId" not in out:
        raise MessageError("a message needs 'userId' or 'anonymousId'")
    if kind == "track" and not (isinstance(out.get("event"), str) and out["event"].strip()):
        raise MessageError("a track call needs 'event': the event's name")
    if kind == "alias" and ("userId" not in out or "previousId" not in out):
        raise MessageError("an alias call needs 'userId' and 'previousId'")
    if kind == "group" and "groupId" not in out:
        raise MessageError("a group call needs 'groupId'")
    for name in _OBJECT_FIELDS:
        if out.get(name) is not None and not isinstance(out[name], dict):
            raise MessageError(f"'{name}' must be an object")
    for name in _TIME_FIELDS:
        if out.get(name) is not None:
            parse_time(out[name], name)
    if "messageId" not in out:
        out["messageId"] = f"cdp-{uuid.uuid4()}"
    return out


def parse_time(value: Any, name: str) -> datetime:
    """An ISO 8601 time of a message (UTC when it has no offset); :class:`MessageError` if it is not one."""
    if not isinstance(value, str):
        raise MessageError(f"'{name}' must be an ISO 8601 time, not {type(value).__name__}")
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise MessageError(f"'{name}' is not an ISO 8601 time: {value!r}") from None


def occurred_at(message: Mapping[str, Any], received_at: datetime) -> datetime:
    """When it happened: ``timestamp`` corrected for the sender's clock skew, as Segment does.

    With ``sentAt`` (the sender's clock when it sent), the skew is ``sentAt - received_at``
    and the time is ``timestamp - skew``; without it, ``timestamp`` as given; without a
    ``timestamp``, when it was received.
    """
    received = as_utc(received_at)
    if message.get("timestamp") is None:
        return received
    stamp = parse_time(message["timestamp"], "timestamp")
    if message.get("sentAt") is None:
        return stamp
    skew: timedelta = parse_time(message["sentAt"], "sentAt") - received
    return stamp - skew
