"""The line of a key path in a TOML text, for error messages (``file:line: key.path: message``).

tomllib keeps no positions, so this scans the text's table headers and ``key =`` lines.
"""

from __future__ import annotations

import re

from cdp_core.keypaths import PathPart


def line_from_message(message: str) -> int | None:
    """The line a parser's error message names ("... (at line 7, column 3)"), or None."""
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


class Locator:
    """Finds the line that defines a key path, for error messages.

    tomllib keeps no positions, so this scans table headers and ``key =`` lines;
    it answers the line of the deepest prefix of the path it finds (a key inside
    an inline table points at the line of that table).
    """

    _header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _assign = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")

    def __init__(self, text: str) -> None:
        self.entries: list[tuple[tuple[str, ...], int]] = []
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._header.match(line)
            if header:
                table = split_key(header.group(1))
                self.entries.append((table, number))
                continue
            assign = self._assign.match(line)
            if assign:
                self.entries.append((table + split_key(assign.group(1)), number))

    def __call__(self, loc: tuple[PathPart, ...] | list[PathPart]) -> int | None:
        keys = tuple(str(p) for p in loc if isinstance(p, str))
        best, best_len = None, 0
        for entry, number in self.entries:
            if len(entry) > best_len and keys[: len(entry)] == entry:
                best, best_len = number, len(entry)
        if best_len < len(keys):
            # A table defined only through its sub-tables ([syncs.g.nodes.a] defines
            # syncs.g): the first line inside it is closer than its parent's line.
            inside = next((number for entry, number in self.entries if entry[: len(keys)] == keys), None)
            best = inside if inside is not None else best
        return best


def split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)", key)
    return tuple(a or b or c for a, b, c in parts)
