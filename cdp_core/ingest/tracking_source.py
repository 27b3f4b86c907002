"""The ``tracking_api`` connector: an ingestion source speaking Segment's HTTP Tracking API.

``[connectors.web] type = "tracking_api"`` with a ``write_key`` (a secret) makes ``cdp serve``
accept ``/v1/*`` calls sent with that key, and gives the connector one stream,
``messages``, that reads what was accepted from the ingest log:

- ``identify`` -> a ``profile`` record: ``traits`` as its data; identifiers from
  ``userId`` (type ``user_id``, configurable), ``anonymousId`` (``anonymous_id``) and
  ``traits.email`` / ``traits.phone``;
- ``alias`` -> a ``profile`` record with no data linking ``previousId`` (as ``anonymous_id``)
  and ``userId``;
- ``track`` -> an ``event`` named by ``event``; ``page`` -> ``Page Viewed``; ``screen`` ->
  ``Screen Viewed``; ``group`` -> ``Group Identified``; each with the call's ``properties``
  (page/screen: with ``name`` and ``category``; group: ``group_id`` and ``group_traits``);
- ``context.consent.categoryPreferences`` ``{purpose: true|false}`` on any call -> one
  ``consent`` record per purpose, ``granted`` or ``denied``.

Keys derive from the ``messageId`` (``<id>``, ``<id>:consent:<purpose>``), so reading the
log again never stores a record twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from cdp_core import Register, hookimpl
from cdp_core.base import ConnectorContext, PluginConfig, Source, Stream
from cdp_core.ingest.log import IngestEntry
from cdp_core.ingest.reader import IngestLogStream
from cdp_core.ingest.tracking import TYPES, occurred_at
from cdp_core.records import Record, RecordKind

TYPE_NAME = "tracking_api"
EVENT_NAMES = {"page": "Page Viewed", "screen": "Screen Viewed", "group": "Group Identified"}


class RateLimit(BaseModel):
    """``rate_limit = { per_second = 100, burst = 500 }``: messages per second per write key, in a token bucket."""

    model_config = ConfigDict(extra="forbid")

    per_second: float = Field(gt=0, description="messages per second accepted on average")
    burst: int = Field(default=0, ge=0, description="messages accepted at once (default: one second's worth)")

    @property
    def capacity(self) -> float:
        return float(self.burst) if self.burst else max(1.0, self.per_second)


class TrackingApiConfig(PluginConfig):
    write_key: SecretStr = Field(description="the write key senders use as the HTTP basic user; a secret: ${ENV}")
    user_id_type: str = Field(default="user_id", pattern=r"^[a-z][a-z0-9_]*$", description="identifier type of userId")
    anonymous_id_type: str = Field(
        default="anonymous_id", pattern=r"^[a-z][a-z0-9_]*$", description="identifier type of anonymousId"
    )
    rate_limit: RateLimit | None = Field(default=None, description="per write key; beyond it: 429 with Retry-After")


class TrackingApiSource(Source):
    """What ``cdp serve`` accepted for this connector, as records (stream ``messages``)."""

    config_model = TrackingApiConfig
    config: TrackingApiConfig

    def __init__(self, config: TrackingApiConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._stream = MessagesStream(config, context)

    def streams(self) -> Sequence[Stream]:
        return [self._stream]

    def close(self) -> None:
        self._stream.close()


class MessagesStream(IngestLogStream):
    """Every logged call of one ``tracking_api`` connector, in the order it became visible."""

    def __init__(self, config: TrackingApiConfig, context: ConnectorContext) -> None:
        super().__init__(
            "messages",
            source=context.name,
            store_url=context.store_url,
            kind=RecordKind.profile,
            kinds=TYPES,
            identifier_types=(config.user_id_type, config.anonymous_id_type, "email", "phone"),
        )
        self.config = config

    def records(self, entry: IngestEntry) -> list[Record]:
        return message_records(entry, self.config, self.name)


def message_records(entry: IngestEntry, config: TrackingApiConfig, stream: str) -> list[Record]:
    """The records one logged call becomes (see the module docstring)."""
    message = entry.body
    kind = entry.kind
    key = entry.message_id
    when = occurred_at(message, entry.received_at)
    identifiers = _identifiers(message, config)
    out: list[Record] = []
    if kind == "identify":
        traits = _object(message.get("traits"))
        for field in ("email", "phone"):
            if isinstance(traits.get(field), str) and traits[field].strip():
                identifiers[field] = traits[field]
        out.append(Record(stream=stream, kind=RecordKind.profile, key=key, data=traits, identifiers=identifiers, occurred_at=when))
    elif kind == "alias":
        identifiers[config.anonymous_id_type] = str(message["previousId"])
        out.append(Record(stream=stream, kind=RecordKind.profile, key=key, identifiers=identifiers, occurred_at=when))
    elif kind in ("track", "page", "screen", "group"):
        data: dict[str, Any] = {**_object(message.get("properties"))}
        if kind in ("page", "screen"):
            for field in ("name", "category"):
                if message.get(field) is not None:
                    data[field] = message[field]
        if kind == "group":
            data["group_id"] = message["groupId"]
            data["group_traits"] = _object(message.get("traits"))
        data["event"] = message["event"] if kind == "track" else EVENT_NAMES[kind]
        out.append(Record(stream=stream, kind=RecordKind.event, key=key, data=data, identifiers=identifiers, occurred_at=when))
    else:
        raise ValueError(f"not a tracking API call type: {kind!r}")
    consent = _object(_object(message.get("context")).get("consent")).get("categoryPreferences")
    if isinstance(consent, dict):
        for purpose, granted in sorted(consent.items()):
            if not isinstance(granted, bool):
                continue  # not a decision
            out.append(
                Record(
                    stream=stream,
                    kind=RecordKind.consent,
                    key=f"{key}:consent:{purpose}",
                    data={"purpose": purpose, "status": "granted" if granted else "denied", "source": entry.source},
                    identifiers=dict(identifiers),
                    occurred_at=when,
                )
            )
    return out


def _identifiers(message: dict[str, Any], config: TrackingApiConfig) -> dict[str, str]:
    ids: dict[str, str] = {}
    if message.get("userId") is not None:
        ids[config.user_id_type] = str(message["userId"])
    if message.get("anonymousId") is not None:
        ids[config.anonymous_id_type] = str(message["anonymousId"])
    return ids


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@hookimpl
def cdp_register_sources(register: Register) -> None:
    register(TYPE_NAME, TrackingApiSource)
