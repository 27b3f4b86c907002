"""The one reading of a dotted field path (``address.city``, ``items.0.sku``) in record data.

The rule, at every level: a key equal to the whole remaining path wins (CSV headers
and vendor payloads do have flat keys such as ``"utm.source"``); otherwise the part
before the first dot is looked up (a mapping's key, or a list's index, negative
from the end) and the rest of the path read inside its value. So ``"utm.source"``
reads ``{"utm.source": 1}`` as 1 and ``{"utm": {"source": 2}}`` as 2, and the flat
key wins when a record has both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["json_path", "lookup"]

_ABSENT: Any = object()
_SCALARS = (str, bytes, int, float, bool)


def lookup(data: Any, path: str, default: Any = None, *, attributes: bool = False) -> Any:
    """The value at ``path`` in ``data``, or ``default`` when any part of it is absent.

    :param attributes: also read attributes of other objects (a response body parsed
        into a pydantic model); off for record data, where ``"name.upper"`` must not
        find a string's method.
    """
    current, rest = data, path
    while True:
        if isinstance(current, Mapping):
            if rest in current:
                return current[rest]
            head, dot, rest = rest.partition(".")
            if not dot or head not in current:
                return default
            current = current[head]
            continue
        head, dot, rest = rest.partition(".")
        if isinstance(current, (list, tuple)):
            index = int(head) if head.lstrip("-").isdigit() else len(current)
            if not -len(current) <= index < len(current):
                return default
            current = current[index]
        elif attributes and current is not None and not isinstance(current, _SCALARS):
            current = getattr(current, head, _ABSENT)
            if current is _ABSENT:
                return default
        else:
            return default
        if not dot:
            return current


def json_path(data: Any, path: str) -> Any:
    """``json_path(body, "paging.next.after")``: :func:`lookup` in a response body, its
    dicts, lists, or a model's attributes; None if absent."""
    return lookup(data, path, attributes=True)
