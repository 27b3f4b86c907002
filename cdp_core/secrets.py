"""Secret values (``${ENV_VAR}`` references, secret-typed options) and their redaction everywhere.

A secret leaves the process in more shapes than its plain text: the ``repr`` of a
string with a backslash or a quote doubles them, JSON escapes them, a URL
percent-encodes them, and a message cut at a length limit may end in the middle of
one. The :class:`Redactor` blanks out every such form:

- each value is registered with its escaped forms (``repr``/``unicode_escape``, JSON,
  URL-encoded, and those forms of each other, two deep);
- a text that ends (or stops before a cut marker such as ``...`` or ``…``) with the
  start of a form, or starts (or resumes after a marker) with its end, has that part
  blanked too: what was cut elsewhere does not leak its first or last characters;
- :func:`cut` redacts *before* it truncates, so a secret is never cut past recognition.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

REDACTED = "***"
MIN_SECRET = 4
"""Shorter values are not taken as secrets (they would blank out ordinary words); also the
shortest piece of a secret blanked at a cut point."""
CUT_MARKERS = ("...", "…", "[truncated]")


def _escape_repr(value: str) -> str:
    return repr(value)[1:-1]


def _escape_unicode(value: str) -> str:
    return value.encode("unicode_escape").decode("ascii")


def _json(value: str) -> str:
    return json.dumps(value)[1:-1]


def _json_utf8(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _url(value: str) -> str:
    return quote(value, safe="")


def _url_path(value: str) -> str:
    return quote(value)


ENCODINGS: tuple[Callable[[str], str], ...] = (
    _escape_repr, _escape_unicode, _json, _json_utf8, _url, _url_path, quote_plus,
)  # fmt: skip
"""The forms a secret takes in output: escaped as Python and JSON print it, URL-encoded."""


def forms(value: str) -> set[str]:
    """``value`` and its encoded forms, up to two encodings deep (the URL of a token, JSON-escaped)."""
    found = {value}
    frontier = {value}
    for _ in range(2):
        frontier = {encode(v) for v in frontier for encode in ENCODINGS} - found
        found |= frontier
    return found


class Redactor:
    """Knows every secret value of a loaded config and blanks it out of any text, in any form."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._forms: list[str] = []
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        # Very short values would blank out ordinary words; a 3-character token is no secret.
        if len(value) >= MIN_SECRET and value not in self._values:
            self._values.add(value)
            self._pattern = None

    def add_all(self, values: Iterable[str]) -> None:
        for value in values:
            self.add(value)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __call__(self, text: str) -> str:
        if not self._values or not text:
            return text
        if self._pattern is None:
            every = set().union(*(forms(v) for v in self._values))
            self._forms = sorted((f for f in every if len(f) >= MIN_SECRET), key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(f) for f in self._forms))
        return self._cut_ends(self._pattern.sub(REDACTED, text))

    def _cut_ends(self, text: str) -> str:
        """Blank a secret's start at the end of the text or before a cut marker, and its end at the start or after one."""
        ends = [len(text)]
        starts = [0]
        for marker in CUT_MARKERS:
            ends += [m.start() for m in re.finditer(re.escape(marker), text)]
            starts += [m.end() for m in re.finditer(re.escape(marker), text)]
        for end in sorted(set(ends), reverse=True):
            piece = self._longest_prefix_ending_at(text, end)
            if piece:
                text = text[: end - piece] + REDACTED + text[end:]
        for start in sorted(set(starts), reverse=True):
            piece = self._longest_suffix_starting_at(text, start)
            if piece:
                text = text[:start] + REDACTED + text[start + piece :]
        return text

    def _longest_prefix_ending_at(self, text: str, end: int) -> int:
        best = 0
        for form in self._forms:
            window = text[max(0, end - len(form) + 1) : end]
            head = form[:MIN_SECRET]
            pos = window.find(head)
            while pos != -1:
                piece = window[pos:]
                if form.startswith(piece):
                    best = max(best, len(piece))
                    break
                pos = window.find(head, pos + 1)
        return best

    def _longest_suffix_starting_at(self, text: str, start: int) -> int:
        best = 0
        for form in self._forms:
            window = text[start : start + len(form) - 1]
            tail = form[-MIN_SECRET:]
            pos = window.rfind(tail)
            while pos != -1:
                piece = window[: pos + MIN_SECRET]
                if form.endswith(piece):
                    best = max(best, len(piece))
                    break
                pos = window.rfind(tail, 0, pos + MIN_SECRET - 1)
        return best

    def filter(self) -> logging.Filter:
        """A logging filter that redacts every record's message, arguments and traceback."""
        redact = self

        class _RedactFilter(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                message = record.getMessage()
                cleaned = redact(message)
                if cleaned != message:
                    record.msg, record.args = cleaned, None
                if record.exc_info and not record.exc_text:
                    record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                elif record.exc_text:
                    record.exc_text = redact(record.exc_text)
                if record.stack_info:
                    record.stack_info = redact(record.stack_info)
                return True

        return _RedactFilter()


def cut(text: str, limit: int, redact: Callable[[str], str] | None = None, marker: str = "...") -> str:
    """``text`` redacted, then cut to ``limit`` characters (``marker`` included) if longer.

    Redaction comes first: cutting first could leave a secret's start that no longer
    matches it. What the cut leaves at the end is redacted again (a cut right after an
    earlier ``***`` is harmless; a secret's own start cannot remain, it was replaced).
    """
    if redact is not None:
        text = redact(text)
    if len(text) <= limit:
        return text
    shortened = text[: max(0, limit - len(marker))] + marker
    return redact(shortened) if redact is not None else shortened
