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


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
