"""The ingest log's vocabulary: what a webhook or an HTTP endpoint hands over to be stored.

A minimal placeholder of the ingest package: :class:`IngestEntry` as it is appended
to the ingest log, and :class:`IngestLogStream`, the base of a source stream that
reads one connector's entries by cursor and turns each into records. The log table,
``append`` and the stream's ``read`` belong to the ingest log itself.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdp_core.base import Page, Stream
from cdp_core.records import JsonValue, Record

__all__ = ["IngestEntry", "IngestLogStream"]


@dataclass(frozen=True)
class IngestEntry:
    """One message to keep in the ingest log; a repeated ``(source, message_id)`` is dropped.

    :param source: the connector's name (``[connectors.NAME]``).
    :param message_id: the sender's own id of the message, so that a re-delivery is recognised.
    :param kind: what it is: ``identify``, ``track``..., or a webhook topic (``customers/create``).
    :param body: the message as parsed JSON.
    :param received_at: when it arrived (aware, UTC).
    """

    source: str
    message_id: str
    kind: str
    body: dict[str, Any]
    received_at: datetime


class IngestLogStream(Stream):
    """A stream over one connector's ingest log entries; subclasses say what records an entry gives."""

    def __init__(self, source: str, store_url: str) -> None:
        self.source_name = source
        self.store_url = store_url

    @abstractmethod
    def records(self, entry: IngestEntry) -> list[Record]:
        """The records one logged entry gives (none for an entry of another kind)."""

    def read(self, cursor: JsonValue) -> Iterator[Page]:
        raise NotImplementedError("the ingest log is not part of this build")
