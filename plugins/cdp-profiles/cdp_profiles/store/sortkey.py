"""The canonical sort key of a stored record: its one encoding and its one parser.

Identity resolution replays records in canonical order: by time, records without one
last, then by the text ``STREAM|KEY``. The store keeps a record's position in that order
as text: ``TIME|STREAM|KEY``, where TIME is the UTC time in ISO format to the microsecond
(fixed width, so text order is time order) or ``~`` when the record has none (``~``
sorts after every digit). The text is what the tables hold (``id_sets.sort_key``,
``profiles.sort_key``, ``identities.first_seen``, the trait sources), so it compares in
SQL as it does here.

Every other module builds and reads keys only through this one. The separator cannot
occur in TIME, nor in STREAM: a stream is ``CONNECTOR.STREAM`` and both names are
limited to letters, digits, ``_`` and ``-`` (connectors.toml is refused otherwise, and
:func:`encode` refuses a record whose stream holds one). KEY is last and may hold
anything, ``|`` included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

SEPARATOR = "|"
NO_TIME = "~"


class SortKeyError(ValueError):
    """A record whose stream name cannot be part of a sort key."""


class SortKey(NamedTuple):
    """A sort key's parts: ``when`` is None for a record without a time."""

    when: datetime | None
    stream: str
    key: str


def naive_utc(occurred_at: datetime | None) -> datetime | None:
    """``occurred_at`` as a naive UTC time (a naive one is UTC already), as TIME holds it."""
    if occurred_at is not None and occurred_at.tzinfo is not None:
        return occurred_at.astimezone(UTC).replace(tzinfo=None)
    return occurred_at


def encode(occurred_at: datetime | None, stream: str, key: str) -> str:
    """The sort key of a record: ``TIME|STREAM|KEY`` (TIME ``~`` without a time)."""
    if SEPARATOR in stream:
        raise SortKeyError(f"the stream name {stream!r} holds {SEPARATOR!r}, which the store's record order reserves")
    if occurred_at is None:
        return f"{NO_TIME}{SEPARATOR}{stream}{SEPARATOR}{key}"
    if occurred_at.tzinfo is not None:
        occurred_at = occurred_at.astimezone(UTC).replace(tzinfo=None)
    return f"{occurred_at.isoformat('T', 'microseconds')}{SEPARATOR}{stream}{SEPARATOR}{key}"


def decode(sort_key: str) -> SortKey:
    """The parts of a sort key (:func:`encode`'s inverse, to the microsecond)."""
    when, _, rest = sort_key.partition(SEPARATOR)
    stream, _, key = rest.partition(SEPARATOR)
    return SortKey(time_of(when), stream, key)


def time_of(when: str) -> datetime | None:
    """The aware UTC time of a sort key's TIME part; None for ``~`` (or an empty part)."""
    if not when or when.startswith(NO_TIME):
        return None
    return datetime.fromisoformat(when).replace(tzinfo=UTC)


def stream_of(sort_key: str) -> str:
    """The STREAM part of a sort key, without parsing its time (hot: trait source priority)."""
    return sort_key.split(SEPARATOR, 2)[1]


def record_of(sort_key: str) -> str:
    """``STREAM|KEY``: the record a sort key belongs to, as the merge log and the 360° view name it."""
    return sort_key.partition(SEPARATOR)[2]
