"""The suppression list: identifiers whose records are never stored again, and the record screen that applies it.

The ``suppressions`` table holds, per suppressed identifier, its type and the keyed hash
of its normalized value (:meth:`PrivacyKey.hash_identifier
<cdp_profiles.privacy.keys.PrivacyKey.hash_identifier>`), never the value. Forget writes
a forgotten person's identifiers there; ``cdp privacy suppress`` one identifier.

For every run the product answers the kernel's ``cdp_record_screen`` hook (cdp_core/screens.py)
with :func:`suppression_screen`: one query loads the whole list; an empty list gives no
screen at all (the run does no screening). Otherwise:

- a record is dropped when one of its identifiers, normalized as the store normalizes it
  (:class:`~cdp_profiles.identifiers.IdentifierNormalizer`),
  hashes to an entry of its type;
- a quarantine entry is dropped when any text in its payload (or its key), read as each
  identifier type the list holds, does: a whole string value, and the addresses, phone
  numbers and words inside it (the text of a line that could not be parsed).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdp_core.config import Config
from cdp_core.records import JsonValue, Record, Rejected
from cdp_core.screens import RecordScreen
from cdp_core.store.engine import make_engine
from cdp_core.store.sql import upsert
from sqlalchemy import Connection, delete, inspect, select

from cdp_profiles.identifiers import IdentifierNormalizer
from cdp_profiles.identity import identity_section
from cdp_profiles.privacy.config import privacy_of
from cdp_profiles.privacy.identifiers import split_identifier
from cdp_profiles.privacy.keys import KeyProblem, PrivacyKey
from cdp_profiles.store import tables
from cdp_profiles.store.queries import PHONE_LIKE

_suppressions, _requests = tables.suppressions, tables.privacy_requests

Normalize = Callable[[str, Any], tuple[str | None, str]]
"""``(type, value) -> (normalized value or None, why not)``: the store's own normalization."""

_EMAIL_IN_TEXT = re.compile(r"[^\s,;:<>()\[\]{}\"'\\|]+@[^\s,;:<>()\[\]{}\"'\\|]+")
_PHONE_IN_TEXT = re.compile(r"\+?\d[\d ()./-]{4,22}\d")
_WORDS = re.compile(r"[\s,;:<>()\[\]{}\"'\\|=]+")
_LONGEST = 1_000
"""A longer text is only searched for the identifiers inside it, never read as one whole."""


KEY_CHECK = "__key__"
"""The type of the list's key check entry: not an identifier type (those start with a letter)."""


def key_check(key: PrivacyKey) -> str:
    """The entry that says which key the list was written with: a keyed hash of a fixed text."""
    return key.hash_identifier(KEY_CHECK, "the privacy key of this suppression list")


def verify_key(conn: Connection, key: PrivacyKey) -> None:
    """Raise :class:`KeyProblem` when the list was written under another key: with it, no identifier
    would match any more and every suppressed person would come back without a word."""
    checks = set(conn.execute(select(_suppressions.c.hash).where(_suppressions.c.type == KEY_CHECK)).scalars())
    if checks and key_check(key) not in checks:
        raise KeyProblem(
            "privacy.key is not the key the suppression list was written with: nothing can be checked against it; "
            "set CDP_PRIVACY_KEY (or what [privacy] key names) back to that key"
        )


class SuppressionList:
    """The suppressed hashes, by identifier type, with what it takes to check a value against them."""

    def __init__(self, hashes: Mapping[str, frozenset[str]], key: PrivacyKey, normalize: Normalize) -> None:
        self.hashes = dict(hashes)
        self.key = key
        self.normalize = normalize

    @staticmethod
    def load(conn: Connection) -> dict[str, frozenset[str]]:
        """Every entry of the list: type -> hashes (one query)."""
        found: dict[str, set[str]] = defaultdict(set)
        rows = select(_suppressions.c.type, _suppressions.c.hash).where(_suppressions.c.type != KEY_CHECK)
        for type_name, digest in conn.execute(rows):
            found[type_name].add(digest)
        return {t: frozenset(h) for t, h in found.items()}

    def holds(self, type_name: str, value: Any) -> bool:
        """Whether ``value``, normalized as a ``type_name``, is suppressed."""
        hashes = self.hashes.get(type_name)
        if hashes is None:
            return False
        normalized, _ = self.normalize(type_name, value)
        return normalized is not None and self.key.hash_identifier(type_name, normalized) in hashes

    def carries(self, identifiers: Mapping[str, Any]) -> bool:
        """Whether any of a record's identifiers (each value of a list) is suppressed."""
        return any(
            self.holds(t, v)
            for t, value in identifiers.items()
            if t in self.hashes
            for v in ((value,) if isinstance(value, str) else value or ())
        )

    def mentions(self, payload: JsonValue) -> bool:
        """Whether any text in ``payload`` (any JSON), read as each type the list holds, is suppressed."""
        return any(self.holds(t, c) for text in _texts(payload) for t in self.hashes for c in _candidates(t, text))


def _texts(payload: JsonValue) -> Iterator[str]:
    """Every string and integer in a JSON value, as text."""
    todo = [payload]
    while todo:
        value = todo.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, int) and not isinstance(value, bool):
            yield str(value)
        elif isinstance(value, dict):
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)


def _candidates(type_name: str, text: str) -> Iterator[str]:
    """What in ``text`` might be a ``type_name``: the whole text, and the identifiers written inside it."""
    whole = text.strip()
    if type_name == "email":
        if "@" in whole:
            if len(whole) <= _LONGEST:
                yield whole
            yield from _EMAIL_IN_TEXT.findall(whole)
    elif type_name == "phone":
        # Only what looks like a number is parsed: a phone number costs ~100 us to parse.
        if len(whole) <= _LONGEST and PHONE_LIKE.fullmatch(whole):
            yield whole
        else:
            yield from _PHONE_IN_TEXT.findall(whole)
    else:
        if len(whole) <= _LONGEST:
            yield whole
        words = _WORDS.split(whole)
        if len(words) > 1:
            yield from (w for w in words if w)


class SuppressionScreen(RecordScreen):
    """Drops the records and quarantine entries of suppressed people (cdp_core/screens.py)."""

    def __init__(self, suppressed: SuppressionList) -> None:
        self.list = suppressed

    def keep(self, records: list[Record]) -> list[Record]:
        carries = self.list.carries
        return [r for r in records if not (r.identifiers and carries(r.identifiers))]

    def suppresses(self, rejected: Rejected) -> bool:
        return self.list.mentions(rejected.raw) or (rejected.key is not None and self.list.mentions(rejected.key))


def suppression_screen(config: Config) -> SuppressionScreen | None:
    """The screen of a run: None when the suppression list is empty.

    Raises :class:`~cdp_profiles.privacy.keys.KeyProblem` (naming ``privacy.key``) when the list is
    not empty and the key is missing, or is not the key the list was written with: without it no
    record can be checked, so nothing may run.
    """
    engine = make_engine(config.store_url)
    try:
        with engine.connect() as conn:
            # A store without the product's tables (a graph that never writes to the profile store,
            # whose runs bring only the kernel's tables) has suppressed nobody.
            if not inspect(conn).has_table(_suppressions.name):
                return None
            hashes = SuppressionList.load(conn)
            if not hashes:
                return None
            key = PrivacyKey.of(privacy_of(config.sections).key)
            verify_key(conn, key)
        return SuppressionScreen(SuppressionList(hashes, key, IdentifierNormalizer(identity_section(config))))
    finally:
        engine.dispose()  # the normalizer needs no connection


# -- changing the list --------------------------------------------------------------------------


@dataclass(frozen=True)
class Named:
    """An identifier an operator named: its type and normalized value."""

    type: str
    value: str


class NotAnIdentifier(ValueError):
    """The text names no identifier that can be suppressed; the message says why."""




def parse_identifier(text: str, normalize: Normalize) -> Named:
    """``TYPE:VALUE``, or a bare email address or phone number, normalized as the store does."""
    type_name, value = split_identifier(text)
    if not type_name:
        raise NotAnIdentifier(
            "not an email address or a phone number; write TYPE:VALUE (email:..., phone:..., hubspot_id:...)"
        )
    if type_name == "profile":
        raise NotAnIdentifier("a profile id is not an identifier a source sends; name the person's email, phone or ids")
    normalized, why = normalize(type_name, value)
    if normalized is None:
        raise NotAnIdentifier(f"{type_name}: {why}")
    return Named(type_name, normalized)


def scrub(reason: str | None, *values: str) -> str | None:
    """``reason`` with every one of ``values`` (any case) replaced by ``[identifier]``."""
    if reason is None:
        return None
    for value in sorted({v.strip() for v in values if v.strip()}, key=len, reverse=True):
        reason = re.sub(re.escape(value), "[identifier]", reason, flags=re.IGNORECASE)
    return reason


def add_suppressions(
    conn: Connection, key: PrivacyKey, identifiers: list[tuple[str, str]], request_id: str, now: datetime
) -> int:
    """Suppress normalized ``(type, value)`` identifiers; returns how many were not suppressed before."""
    rows = {key.hash_identifier(t, v): t for t, v in identifiers}
    if not rows:
        return 0
    verify_key(conn, key)  # never a list written under two keys
    known = set(conn.execute(select(_suppressions.c.hash).where(_suppressions.c.hash.in_(list(rows)))).scalars())
    values = [{"hash": h, "type": t, "created_at": now, "request_id": request_id} for h, t in rows.items()]
    values.append({"hash": key_check(key), "type": KEY_CHECK, "created_at": now, "request_id": None})
    upsert(conn, _suppressions, values, keys=("hash",), update=())
    return len(rows.keys() - known)


def remove_suppression(conn: Connection, key: PrivacyKey, named: Named) -> int:
    """Lift the suppression of one identifier; returns how many entries were removed (0 or 1)."""
    digest = key.hash_identifier(named.type, named.value)
    return conn.execute(delete(_suppressions).where(_suppressions.c.hash == digest)).rowcount

