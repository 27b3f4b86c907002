"""Key paths into connectors.toml (``syncs.nightly.nodes.clean.inputs[0]``) and name hints."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

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
    errors: list[Any],
    prefix: tuple[PathPart, ...],
    hide_input: Callable[[tuple[PathPart, ...]], bool],
    model: type[BaseModel] | None = None,
) -> list[tuple[tuple[PathPart, ...], str]]:
    """(key path, message) for each pydantic error; the offending value is shown only when short and not hidden.

    With ``model`` (the validated model), an unknown key gets a did-you-mean among the keys known where it is.
    """
    out = []
    for err in errors:
        loc = prefix + tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            message = "unknown key"
            known = known_keys(model, tuple(err["loc"])[:-1]) if model is not None else []
            key = err["loc"][-1] if err["loc"] else None
            if isinstance(key, str) and known:
                message += did_you_mean(key, known) or f"; known keys: {', '.join(known)}"
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


def known_keys(model: type[BaseModel], loc: tuple[PathPart, ...]) -> list[str]:
    """The keys (field names and aliases) of the model found at ``loc`` inside ``model``; [] if none is."""
    current: Any = model
    for part in loc:
        current = _inner_model(current, part)
        if current is None:
            return []
    if typing.get_origin(current) in (typing.Union, types.UnionType):  # an optional table: M | None
        current = next((a for a in typing.get_args(current) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return []
    return sorted({f.alias or name for name, f in current.model_fields.items()})


def _inner_model(current: Any, part: PathPart) -> Any:
    """What sits at ``part`` inside ``current`` (a model class or a type annotation), or None."""
    while typing.get_origin(current) is typing.Annotated:
        current = typing.get_args(current)[0]
    if isinstance(current, type) and issubclass(current, BaseModel):
        if not isinstance(part, str):
            return None
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        return None if field is None else field.annotation
    args = [a for a in typing.get_args(current) if a is not type(None)]
    origin = typing.get_origin(current)
    if origin in (dict, typing.Union, types.UnionType) or origin in (list, tuple, set):
        # dict[str, M], list[M], M | None: the part is a key or an index of the container (or of the union's model).
        candidates = args[-1:] if origin is dict else args
        for candidate in candidates:
            if origin in (typing.Union, types.UnionType):
                found = _inner_model(candidate, part)
                if found is not None:
                    return found
            else:
                return candidate
    return None
