"""Incremental reads: a stream's high-water mark, its lookback and the records already delivered.

A source that reads "what changed since last time" needs the same four things
whatever the vendor: the value of the cursor field it got to (the *high-water
mark*), where the next read starts (the mark, or a *lookback* before it for an
API whose index lags its writes), the keys of the records already delivered
inside that overlap (so an inclusive ``>=`` filter or the lookback never
delivers them twice), and a JSON form of all that for :attr:`cdp_core.Page.cursor`.
:class:`Incremental` keeps them, in the spirit of dlt's ``Incremental``::

    inc = Incremental("updated_at", lookback=timedelta(minutes=1), cursor_key="updated_after")
    inc.load(cursor)                                   # None on the first run
    params = {"updated_after": inc.encode(inc.start_value)} if inc.start_value else {}
    for page in pages(params):
        records = [to_record(item) for item in page if inc.admit(item["id"], item["updated_at"])]
        yield Page(records, inc.to_cursor())

The cursor's layout (``cursor_key``, ``save``, ``seen_as``, ``unit``) is
configurable so that a source that stored its own layout before keeps reading
the cursors already committed in every store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

from cdp_core.records import JsonValue

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CursorType = Literal["timestamp", "number", "token"]
"""What the cursor field holds: a point in time, a number (an id, a version), or an opaque token."""

TimestampUnit = Literal["iso", "s", "ms"]
"""How a timestamp is written into the cursor: ISO 8601 text, Unix seconds or Unix milliseconds."""

SeenLayout = Literal["values", "keys"]
"""How the delivered keys are written: ``{key: value}``, or a list of keys that all have the saved value."""


class CursorValueError(ValueError):
    """A cursor-field value (of a record or of a saved cursor) that cannot be read as the declared type."""

    def __init__(self, field: str, value: Any, expected: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"cursor field {field!r}: {value!r} is not {expected}")


_COMPACT_DATE = re.compile(r"\d{8}")
_UNIX_TEXT = re.compile(r"-?\d+(?:\.\d+)?")


def parse_timestamp(value: Any, unit: TimestampUnit = "iso") -> datetime:
    """A cursor's point in time as an aware UTC datetime; :class:`ValueError` says why not.

    The accepted forms are explicit, nothing is guessed:

    - a ``datetime`` (naive: taken as UTC), or ISO 8601 text (``2024-02-12``,
      ``2024-02-12T10:15:00+01:00``, ``20240212T101500Z``...);
    - eight digits as text are a compact ISO date (``"20240212"`` is the 12th of February 2024),
      never Unix time;
    - any other number, or digits as text, is Unix time in ``unit`` (seconds for ``"s"``
      and ``"iso"``, milliseconds for ``"ms"``): the declared unit, not a guess from the size;
      an eight-digit *number* that is also a calendar date (``20240212``) is refused as
      ambiguous (a date or Unix time in 1970?);
    - anything else (``12/02/2024``: the 12th of February or the 2nd of December?) is refused.
    """
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if value is None or isinstance(value, bool):
        raise ValueError("no value")
    number: float | None = None
    if isinstance(value, str):
        text = value.strip()
        if text[4:5] == "-":
            # "YYYY-...", the common form: neither pattern below matches a "-" there, so the ISO parse
            # decides at once (two regular expressions fewer per row, bench/file_sources.py)
            return _iso_timestamp(text)
        if _COMPACT_DATE.fullmatch(text):
            try:
                return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)
            except ValueError:
                raise ValueError("eight digits that are not a date YYYYMMDD") from None
        if _UNIX_TEXT.fullmatch(text):
            number = float(text) if "." in text else int(text)
        else:
            return _iso_timestamp(text)
    elif isinstance(value, (int, float)):
        number = value
    else:
        raise ValueError(f"a {type(value).__name__}, not text or a number")
    if isinstance(number, int) and _COMPACT_DATE.fullmatch(str(abs(number))) and _is_date(str(number)):
        raise ValueError("an eight-digit number is ambiguous (a date YYYYMMDD, or Unix time?): write dates as text")
    try:
        seconds = number / 1000 if unit == "ms" else number
        return _EPOCH + timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise ValueError(f"out of range as Unix time in {'milliseconds' if unit == 'ms' else 'seconds'}") from None


def _iso_timestamp(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not ISO 8601 (such as 2024-02-12T10:15:00Z) nor Unix time") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _is_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


@dataclass
class Incremental:
    """The incremental state of one read: where it starts, how far it got, what it delivered.

    :param cursor_field: the record field the stream is incremental by (used in error messages).
    :param type: ``"timestamp"`` (compared as aware UTC datetimes), ``"number"``, or
        ``"token"`` (opaque, not ordered: the last one read is the mark).
    :param initial_value: where the first read starts (``None``: from the beginning).
    :param lookback: how far before the mark the next read starts: a ``timedelta`` for
        timestamps, a number for numbers; the records delivered inside it are dropped
        when they come again with a value that is not newer.
    :param dedupe: drop records already delivered with the same or a newer value. The
        keys of the records at or after the next start are kept in the cursor: with no
        lookback, those whose value equals the mark (an inclusive filter returns them again).
    :param cursor_key: the cursor's key for the saved value.
    :param save: ``"last_value"`` saves the mark (the next read subtracts the lookback);
        ``"start"`` saves where the next read starts (the mark minus the lookback).
    :param seen_as: how the delivered keys are saved under ``"seen"``: ``"values"``
        (``{key: value}``), ``"keys"`` (a sorted list; each has the saved value), or
        ``None`` (not saved: a token stream dedupes only inside one read).
    :param unit: how timestamps are written: ISO 8601 text, Unix seconds or milliseconds.
    :param max_seen: keep at most this many keys in the cursor; a key left out may be
        delivered once more (a repeat, never a loss), which bounds the cursor's size when
        thousands of records share one value (a bulk import).
    """

    cursor_field: str
    type: CursorType = "timestamp"
    initial_value: Any = None
    lookback: timedelta | float | None = None
    dedupe: bool = True
    cursor_key: str = "last_value"
    save: Literal["last_value", "start"] = "last_value"
    seen_as: SeenLayout | None = "values"
    unit: TimestampUnit = "iso"
    max_seen: int | None = None

    start_value: Any = field(default=None, init=False)
    """Where this read starts (inclusive): records before it are dropped."""
    last_value: Any = field(default=None, init=False)
    """The high-water mark: the greatest cursor value read (a token stream: the last one)."""
    seen: dict[str, Any] = field(default_factory=dict, init=False)
    """Keys delivered by earlier reads at or after ``start_value``, with their values."""
    fresh: dict[str, Any] = field(default_factory=dict, init=False)
    """Keys delivered by this read, with their values."""
    _loaded: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.type == "token" and self.lookback is not None:
            raise ValueError(f"cursor field {self.cursor_field!r}: a token cursor has no lookback")
        if self.type == "timestamp" and self.lookback is not None and not isinstance(self.lookback, timedelta):
            raise TypeError(f"cursor field {self.cursor_field!r}: the lookback of a timestamp is a timedelta")
        if self.type == "number" and isinstance(self.lookback, timedelta):
            raise TypeError(f"cursor field {self.cursor_field!r}: the lookback of a number is a number")
        self.initial_value = self.parse(self.initial_value) if self.initial_value is not None else None
        self.start_value = self.initial_value

    # -- values ----------------------------------------------------------------------------

    def parse(self, value: Any) -> Any:
        """``value`` as the declared type; :class:`CursorValueError` names the field and value.

        Timestamps become aware UTC datetimes (:func:`parse_timestamp`: ISO 8601 text, a
        datetime, or Unix time in the declared ``unit``; naive ones are taken as UTC): never
        compared as text, where "2024-05-01T10:00:00+02:00" sorts after "2024-05-01T09:00:00Z".
        """
        if self.type == "token":
            if isinstance(value, str) and value:
                return value
            raise CursorValueError(self.cursor_field, value, "a token (a non-empty string)")
        if self.type == "number":
            if isinstance(value, bool):
                raise CursorValueError(self.cursor_field, value, "a number")
            try:
                number = (
                    value
                    if isinstance(value, (int, float))
                    else int(value)
                    if isinstance(value, str) and value.strip().lstrip("-").isdigit()
                    else float(value)
                )
            except (TypeError, ValueError):
                raise CursorValueError(self.cursor_field, value, "a number") from None
            if not math.isfinite(number):
                raise CursorValueError(self.cursor_field, value, "a finite number")
            return number
        return self._timestamp(value)

    def _timestamp(self, value: Any) -> datetime:
        try:
            return parse_timestamp(value, self.unit)
        except ValueError as exc:
            raise CursorValueError(self.cursor_field, value, f"a date-time ({exc})") from None

    def encode(self, value: Any) -> JsonValue:
        """``value`` (already parsed) as JSON: a timestamp in ``unit``, a number or token as is."""
        if value is None or not isinstance(value, datetime):
            return value
        if self.unit == "s":
            return int(value.timestamp())
        if self.unit == "ms":
            return round(value.timestamp() * 1000)
        return value.isoformat()

    def encode_seen(self, keys: Mapping[str, Any]) -> JsonValue:
        """Delivered keys as the cursor holds them (``seen_as``), sorted for a stable cursor."""
        if self.seen_as == "keys":
            return sorted(keys)
        return {key: self.encode(keys[key]) for key in sorted(keys)}

    def _parse_seen(self, raw: Any, value: Any) -> dict[str, Any]:
        if not raw:
            return {}
        if isinstance(raw, Mapping):
            return {str(key): self.parse(v) for key, v in raw.items()}
        if isinstance(raw, list) and value is not None:  # the "keys" layout: all at the saved value
            return {str(key): value for key in raw}
        raise CursorValueError(self.cursor_field, raw, "a list or an object of delivered keys")

    # -- state -----------------------------------------------------------------------------

    def load(self, cursor: Any, *, what: str = "cursor") -> Self:
        """Restore from a cursor that :meth:`to_cursor` wrote (``None``: the first read).

        :param cursor: the saved cursor (a JSON object), or the part of it the source gave this stream.
        :param what: names the cursor in the error raised for one of another shape ("typeform cursor").
        """
        if cursor is None:
            return self
        if not isinstance(cursor, Mapping):
            raise ValueError(f"{what}: expected a JSON object, got {cursor!r}")  # noqa: TRY004 - a bad value, as for JSON
        raw = cursor.get(self.cursor_key)
        value = self.parse(raw) if raw is not None else None
        self._loaded = value
        if self.save == "start":
            self.start_value = value if value is not None else self.initial_value
        else:
            self.last_value = value
            self.start_value = self._minus_lookback(value) if value is not None else self.initial_value
        if self.dedupe:
            self.seen = self._parse_seen(cursor.get("seen"), value)
        return self

    def load_progress(self, last_value: Any, fresh: Any) -> Self:
        """Restore what a read that was cut short had done (its mark and the keys it delivered).

        :param last_value: the saved mark of the unfinished read (``encode(last_value)``), or None.
        :param fresh: its delivered keys (``encode_seen(fresh)``), or None.
        """
        if last_value is not None:
            mark = self.parse(last_value)
            self.last_value = mark if self.last_value is None or self.type == "token" else max(self.last_value, mark)
        self.fresh = self._parse_seen(fresh, self.last_value)
        return self

    def admit(self, key: str | None, value: Any) -> bool:
        """Note a record read; False when it was delivered already (or is before the start).

        :param key: the record's key (its id); ``None`` skips de-duplication for it.
        :param value: its cursor-field value, parsed with :meth:`parse`.
        """
        parsed = self.parse(value)
        if self.type == "token":
            self.last_value = parsed  # tokens are not ordered: the mark is where the read got to
        elif self.last_value is None or parsed > self.last_value:
            self.last_value = parsed
        if self.type != "token" and self.start_value is not None and parsed < self.start_value:
            return False  # a filter coarser than the cursor (a whole day, a whole second) sent it again
        if not self.dedupe or key is None:
            return True
        before = [v for v in (self.seen.get(key), self.fresh.get(key)) if v is not None]
        if before and (self.type == "token" or max(before) >= parsed):
            return False  # delivered with this value or a newer one: a repeat, not a new version
        self.fresh[key] = parsed
        return True

    def next_start(self, *, cap: Any = None) -> Any:
        """Where the next read starts: the mark minus the lookback, never before this read's start.

        :param cap: a value the mark may not pass (the server's time when the read began:
            a record changed during the read on a page already read is then caught next time).
        """
        if self.type == "token":  # no order, no lookback: the next read goes on after the last token
            return self.last_value if self.last_value is not None else self.start_value
        if self.last_value is None:
            return self.start_value
        mark = min(self.last_value, cap) if cap is not None else self.last_value
        start = self._minus_lookback(mark)
        return start if self.start_value is None else max(self.start_value, start)

    def prune(self, *, cap: Any = None) -> None:
        """Forget this read's keys that no later read can return again (call it once per page)."""
        self.fresh = self._kept(self.fresh, self.next_start(cap=cap))

    def to_cursor(self, *, cap: Any = None) -> dict[str, JsonValue]:
        """The cursor the next read starts from: the saved value and the keys to drop there.

        :param cap: as in :meth:`next_start`.
        """
        start = self.next_start(cap=cap)
        value = start if self.save == "start" else self.last_value
        cursor: dict[str, JsonValue] = {self.cursor_key: self.encode(value)}
        if self.dedupe and self.seen_as is not None:
            cursor["seen"] = self.encode_seen(self._kept({**self.seen, **self.fresh}, start))
        return cursor

    def start_cursor(self) -> dict[str, JsonValue]:
        """The cursor this read started from: with :meth:`load_progress`'s two values, a read cut short resumes."""
        cursor: dict[str, JsonValue] = {self.cursor_key: self.encode(self._loaded)}
        if self.dedupe and self.seen_as is not None:
            cursor["seen"] = self.encode_seen(self.seen)
        return cursor

    def _kept(self, keys: dict[str, Any], floor: Any) -> dict[str, Any]:
        if self.type == "token":
            return keys
        kept = {k: v for k, v in keys.items() if floor is None or v >= floor}
        if self.max_seen is not None and len(kept) > self.max_seen:
            kept = dict(list(kept.items())[: self.max_seen])  # the first ones: a later read repeats the rest
        return kept

    def _minus_lookback(self, value: Any) -> Any:
        if not self.lookback:
            return value
        return value - self.lookback


__all__ = ["CursorType", "CursorValueError", "Incremental", "SeenLayout", "TimestampUnit", "parse_timestamp"]
