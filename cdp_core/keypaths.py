"""Key paths into connectors.toml (``syncs.nightly.nodes.clean.inputs[0]``) and name hints."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

PathPart = str | int


def format_path(parts: tuple[PathPart, ...] | list[PathPart]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            out += f".{text}" if out else text
    return out


def validation_messages(
    errors: list[Any], prefix: tuple[PathPart, ...], hide_input: Callable[[tuple[PathPart, ...]], bool]
) -> list[tuple[tuple[PathPart, ...], str]]:
    """(key path, message) for each pydantic error; the offending value is shown only when short and not hidden."""
    out = []
    for err in errors:
        loc = prefix + tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        else:
            message = err["msg"]
            value = err.get("input")
            if isinstance(value, (int, float, bool, str)) and len(repr(value)) <= 80 and not hide_input(loc):
                message += f" (got {value!r})"
        out.append((loc, message))
    return out


SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
"""Connector, graph, node and stream names: a letter, then up to 63 letters, digits, ``_`` or ``-``.

No dot: ``source = "CONNECTOR.STREAM"`` and a record's ``stream`` split at the first
one. No ``|``: the store joins stream and key with it in its sort keys. Nothing that
needs quoting in TOML keys, file names or log lines."""


def unsafe_name(what: str, name: str) -> str | None:
    """The message for ``name`` (a ``what``: connector, graph, node, stream) outside :data:`SAFE_NAME`, else None."""
    if SAFE_NAME.fullmatch(name):
        return None
    return f"{what} name {name!r} is not allowed: start with a letter, then up to 63 letters, digits, '_' or '-'"


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
