"""Structured logs: JSON lines (or plain text) carrying the run id and graph of every line logged during a run.

Why a contextvar and a filter: the runner, plugins and observers log through
their own loggers and know nothing of the scheduler. The code that runs a graph
binds ``graph`` and ``run_id`` in a :class:`~contextvars.ContextVar` (per thread,
so parallel runs in a scheduler's worker threads stay apart); a
:class:`logging.Filter` on the handler copies them onto each record, and the
formatter writes them out. ``configure("json")`` switches cdp's stderr handler to
JSON lines: ``{"time", "level", "logger", "message", "run_id", "graph"}`` plus
``"exc"`` for a traceback. Messages keep going through the config's Redactor
filter (installed by ``cli.common.load``); the formatter redacts tracebacks too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FORMAT_ENV = "CDP_LOG_FORMAT"
FORMATS = ("text", "json")
FIELDS = ("run_id", "graph")

_context: ContextVar[dict[str, str]] = ContextVar("cdp_log_context", default={})  # noqa: B039 - never mutated


@contextlib.contextmanager
def context(**fields: str | None) -> Iterator[None]:
    """Add fields (``graph``, ``run_id``) to every line logged in this block, in this thread."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: str | None) -> None:
    """Add fields until the enclosing :func:`context` block ends (the runner's run id, once known)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def current() -> dict[str, str]:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record (an explicit ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get()
        for name in FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, bound.get(name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``run_id`` and ``graph`` are always present (null outside a run)."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self.redact = redact or (lambda text: text)

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
            "run_id": getattr(record, "run_id", None),
            "graph": getattr(record, "graph", None),
        }
        if record.exc_info:
            data["exc"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The plain format, with ``[graph run=abcd1234]`` when a run is bound."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redact or (lambda text: text)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        graph, run_id = getattr(record, "graph", None), getattr(record, "run_id", None)
        if graph or run_id:
            where = " ".join(p for p in (graph, f"run={run_id[:8]}" if run_id else None) if p)
            head, _, rest = text.partition(": ")
            text = f"{head} [{where}]: {rest}"
        return self.redact(text)


def resolve_format(option: str | None) -> str:
    """The ``--log-format`` option, else ``$CDP_LOG_FORMAT``, else text; ValueError for anything else."""
    value = (option or os.environ.get(FORMAT_ENV) or "text").lower()
    if value not in FORMATS:
        raise ValueError(f"unknown log format {value!r}: use text or json")
    return value


def configure(fmt: str | None = None, redact: Callable[[str], str] | None = None) -> str:
    """Give cdp's handlers on the root logger the chosen format and the context filter; returns the format."""
    chosen = resolve_format(fmt)
    root = logging.getLogger()
    handlers = [h for h in root.handlers if getattr(h, "_cdp", False)]
    if not handlers:
        stream = logging.StreamHandler()
        stream._cdp = True  # type: ignore[attr-defined]  # our mark on a stdlib handler, found again by the getattr above
        root.addHandler(stream)
        handlers = [stream]
    for handler in handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        handler.setFormatter(JsonFormatter(redact) if chosen == "json" else TextFormatter(redact))
    return chosen
