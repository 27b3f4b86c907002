"""The cursor of a file stream: its typed watermark, and the JSON form kept between reads.

See :mod:`cdp_core.builtins.files` for the layout (``watermark``, ``max``, ``type``, and the
``offset``, ``line`` and ``mtime_ns`` of a read cut short).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from cdp_core.incremental import CursorValueError, Incremental
from cdp_core.records import JsonValue

CursorKind = Literal["timestamp", "number"]

_NUMBER_TEXT = re.compile(r"\s*-?\d+(?:\.\d+)?\s*")


def _infer_cursor_type(value: Any) -> CursorKind:
    """The type of an undeclared cursor, from its first value: a number (or digits as text), else a timestamp."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    return "number" if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value) else "timestamp"


class FileCursor:
    """The typed watermark of one read: values parse as the cursor's type and compare as such."""

    def __init__(self, field: str, declared: CursorKind | None, state: dict[str, Any]) -> None:
        self.field = field
        saved = state.get("type")
        self.type: CursorKind | None = declared or (saved if saved in ("timestamp", "number") else None)
        watermark, max_seen = state.get("watermark"), state.get("max", state.get("watermark"))
        if self.type is None and watermark is not None:
            self.type = _infer_cursor_type(watermark)
        self.watermark = self._load(watermark)
        self.max = self._load(max_seen)
        self._parse: Callable[[Any], Any] | None = None

    def _incremental(self) -> Incremental:
        assert self.type is not None
        return Incremental(self.field, type=self.type)

    def _load(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            return self._incremental().parse(value)
        except CursorValueError as exc:
            raise ValueError(f"the saved cursor is not of the cursor's type {self.type!r}: {exc}") from None

    def parse(self, value: Any) -> Any:
        """``value`` as the cursor's type (the first one decides an undeclared type); CursorValueError if not."""
        if self._parse is None:  # one Incremental per read, not per row (it was 6 % of a read)
            if self.type is None:
                self.type = _infer_cursor_type(value)
            self._parse = self._incremental().parse
        return self._parse(value)

    def encode(self, value: Any) -> JsonValue:
        return iso(value) if isinstance(value, datetime) else value

    def state(self, **more: Any) -> dict[str, JsonValue]:
        return {"watermark": self.encode(self.watermark), "max": self.encode(self.max), "type": self.type, **more}

    def final(self) -> dict[str, JsonValue]:
        return {"watermark": self.encode(self.max), "type": self.type}


def iso(value: datetime | None) -> str | None:
    """ISO 8601 as pydantic writes it (UTC as 'Z')."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
