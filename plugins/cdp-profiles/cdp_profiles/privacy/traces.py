"""Where one person's identifiers show up in text and JSON the store keeps about runs.

Forget deletes the rows that belong to the person by key; these helpers find the rest,
which names them only in free text: a quarantined record's payload, a run's error text
or node counts, a source's cursor. Pure functions over one value at a time: the callers
read the tables in chunks and write back set-wise.

- :meth:`Traces.in_quarantine`: a quarantine row carries the person when its payload
  (any key or value), its record key or its reason holds one of their identifiers, as
  written or as the store would normalize it (``Anna@X.de``, ``0171 1234567``), in any
  case;
- :meth:`Traces.scrub`: a run text with each identifier replaced by :data:`MARK`;
- :meth:`Traces.prune_cursor`: a cursor without the delivered keys that name the person.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cdp_profiles.store.queries import PHONE_LIKE

_NOT_DIGITS = re.compile(r"\D+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abAB]")
_TAIL = 6
"""Digits at the end of a phone number that every way of writing it keeps together (see ``Traces.phone_tails``)."""

MARK = "[forgotten]"
"""What replaces an identifier in a run text."""

Normalize = Callable[[str, Any], tuple[str | None, str]]
"""The store's identifier normalization: (type, raw value) -> (normalized or None, why not)."""


def forms(type_name: str, value: str) -> set[str]:
    """The ways a normalized identifier is written: as stored, and a phone's digits without ``+``
    (how Meta takes it, and how a form or a CSV often holds it)."""
    out = {value}
    if type_name == "phone" and value.startswith("+"):
        out.add(value[1:])
    return out


@dataclass(frozen=True)
class Traces:
    identifiers: frozenset[tuple[str, str]]
    """The person's normalized (type, value) pairs."""
    normalize: Normalize
    keys: frozenset[str] = frozenset()
    """The keys of their stored records (a source's cursor may list them as delivered)."""

    @classmethod
    def of(cls, identifiers: Iterable[tuple[str, str]], normalize: Normalize, keys: Iterable[str] = ()) -> Traces:
        return cls(frozenset(identifiers), normalize, frozenset(keys))

    @cached_property
    def values(self) -> frozenset[str]:
        """Every form of every identifier, case-folded."""
        return frozenset(f.casefold() for t, v in self.identifiers for f in forms(t, v))

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        """Any form of any identifier as a whole token (not inside a longer address or number), any case."""
        texts = sorted({f for t, v in self.identifiers for f in forms(t, v) if f}, key=len, reverse=True)
        if not texts:
            return None
        alternatives = "|".join(re.escape(t) for t in texts)
        return re.compile(rf"(?<![\w.+@-])(?:{alternatives})(?![\w@-]|\.\w)", re.IGNORECASE)

    @cached_property
    def phone_tails(self) -> frozenset[str]:
        """The last six digits of each of the person's phone numbers.

        However a number is written (``+49 171 1234567``, ``0171/123 45 67``, ``(0171) 1234567``,
        ``0049 171 1234567``, ``491711234567``), its last digits stand together among its digits:
        prefixes, trunk codes and separators come before them or between earlier ones. So a
        phone-like text whose digits hold none of these cannot normalize to one of the person's
        numbers, and is not parsed: parsing costs ~70 us a number, which made a forget over a
        large ingest log hold the store's write lock ~8 s per 100,000 messages with phone numbers.
        """
        return frozenset(v[-_TAIL:] for t, v in self.identifiers if t == "phone")

    @cached_property
    def _folded_values(self) -> frozenset[str]:
        return frozenset(_fold(v) for v in self.values)

    # -- quarantine ------------------------------------------------------------------------

    def in_quarantine(self, payload: Any, record_key: str | None, reason: str | None) -> bool:
        """Whether a quarantine row names the person (see the module's doc)."""
        return self.may_name(_row_text(json.dumps(payload, ensure_ascii=False, default=str), record_key, reason)) and (
            self._judged(payload, record_key, reason)
        )

    def in_stored_row(self, raw_json: str | None, record_key: str | None, reason: str | None) -> bool:
        """:meth:`in_quarantine` of a row whose JSON is read as the database holds it (not decoded):
        most rows of a large log are turned away by :meth:`may_name` without being decoded."""
        raw = raw_json or "null"
        if not self.may_name(_row_text(_unescaped(raw), record_key, reason)):
            return False
        return self._judged(json.loads(raw), record_key, reason)

    def may_name(self, text: str) -> bool:
        """A quick test of a row's whole text that is never wrong when it says no.

        A row names the person only if, in its text case-folded, one of the person's identifier
        forms appears as written (what the pattern, a number leaf, or an address that normalizes
        to theirs would match all contain), or its digits hold the end of one of their phone
        numbers (:attr:`phone_tails`). Case folding (:func:`_fold`) maps character by character, and
        JSON written without ASCII escapes keeps every character of a string but quotes, backslashes
        and control characters, which no identifier form holds. Measured in bench/forget_scan.py.
        """
        if self.pattern is None:
            return False
        folded = _fold(text)
        if any(form in folded for form in self._folded_values):
            return True
        tails = self.phone_tails
        if not tails:
            return False
        digits = _digits(text)
        return any(tail in digits for tail in tails)

    def _judged(self, payload: Any, record_key: str | None, reason: str | None) -> bool:
        """Every leaf of the row judged on its own: the exact answer (see the module's doc)."""
        pattern, values = self.pattern, self.values
        if pattern is None:
            return False
        if any(text and pattern.search(text) for text in (record_key, reason)):
            return True
        return any(self._names(leaf, pattern, values) for leaf in _leaves(payload))

    def _names(self, leaf: Any, pattern: re.Pattern[str], values: frozenset[str]) -> bool:
        if isinstance(leaf, bool) or leaf is None:
            return False
        if isinstance(leaf, (int, float)):
            return str(leaf).casefold() in values
        text = str(leaf)
        if pattern.search(text):
            return True
        guess = "email" if "@" in text else "phone" if PHONE_LIKE.fullmatch(text.strip()) else None
        if guess is None:
            return False
        if guess == "phone" and not any(tail in _digits(text) for tail in self.phone_tails):
            return False
        normalized, _ = self.normalize(guess, text)
        return normalized is not None and (guess, normalized) in self.identifiers

    # -- run texts -------------------------------------------------------------------------

    def scrub(self, value: Any) -> Any:
        """``value`` (a text, or JSON: its keys and strings) with every identifier replaced by :data:`MARK`."""
        pattern = self.pattern
        if pattern is None:
            return value
        return _map_strings(value, lambda text: pattern.sub(MARK, text))

    # -- cursors ---------------------------------------------------------------------------

    def prune_cursor(self, cursor: Any) -> Any:
        """``cursor`` without the object entries and list items that are one of the person's record
        keys or identifiers (the keys a source keeps as already delivered). A position (the mark, a
        page token) is kept: the source resumes where it was, and reads the person again only if
        they are within its overlap, where the suppression list drops them."""
        names = self.values | {k.casefold() for k in self.keys}

        def named(item: Any) -> bool:
            return not isinstance(item, (bool, dict, list)) and item is not None and str(item).casefold() in names

        def walk(node: Any) -> Any:
            if isinstance(node, dict):
                return {k: walk(v) for k, v in node.items() if not named(k)}
            if isinstance(node, list):
                return [walk(v) for v in node if not named(v)]
            return node

        return walk(cursor)


def _unescaped(raw_json: str) -> str:
    """JSON text with its escapes undone (``\\u00fc`` -> ``ü``): the characters of its strings as they are.

    The store writes JSON in ASCII with escapes; undoing them as Python's string escapes do is
    ~8x cheaper than decoding and writing the JSON again, which the rest still take (a surrogate
    pair must become one character; text not in ASCII was written by something else).
    """
    if "\\" not in raw_json:
        return raw_json
    if raw_json.isascii() and not _SURROGATE_ESCAPE.search(raw_json):
        return raw_json.encode("ascii").decode("unicode_escape")
    return json.dumps(json.loads(raw_json), ensure_ascii=False)


def _fold(text: str) -> str:
    """Case-folded, with the one letter the pattern's case-insensitive match equates and case folding
    does not: the dotless ``ı`` matches ``i`` (Python's ``re.IGNORECASE``), so both are ``i`` here."""
    return text.casefold().replace("\u0131", "i")


def _row_text(payload_json: str, record_key: str | None, reason: str | None) -> str:
    return "\x00".join((payload_json, record_key or "", reason or ""))


def _digits(text: str) -> str:
    """The decimal digits of ``text``, in order, as ASCII (a number may be written in any script's digits)."""
    digits = _NOT_DIGITS.sub("", text)
    return digits if digits.isascii() else "".join(str(unicodedata.decimal(c)) for c in digits)


def _leaves(node: Any) -> Iterable[Any]:
    """Every key and scalar of a JSON value."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            yield item


def _map_strings(node: Any, change: Callable[[str], str]) -> Any:
    if isinstance(node, str):
        return change(node)
    if isinstance(node, dict):
        return {change(k) if isinstance(k, str) else k: _map_strings(v, change) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_strings(v, change) for v in node]
    return node
