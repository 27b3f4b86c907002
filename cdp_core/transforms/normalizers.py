"""Pure per-value normalizers, shared by normalize, hash, validate, generalize and expressions.

Each cached function takes text and returns the normalized text or an
:class:`Invalid` naming the problem. Returning (not raising) the problem lets
``lru_cache`` remember bad values too: a feed repeats its bad phone numbers as
often as its good ones, and phone parsing is the slowest step of a sync.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser
from pydantic import AfterValidator

from cdp_core.exports import lazy_exports
from cdp_core.transforms.countries import country_code
from cdp_core.transforms.fields import Invalid, show

if TYPE_CHECKING:
    from cdp_core.transforms.phones import Region, check_region, phone

# The phone functions are phonenumbers' (its metadata takes a while to import): imported on first
# use, so a lookup by email (`cdp profiles show`) does not load them.
__getattr__ = lazy_exports(
    __name__, dict.fromkeys(("Region", "check_region", "phone", "phone_in_region"), "cdp_core.transforms.phones")
)

__all__ = [
    "FieldNormalizer",
    "Invalid",
    "Normalizer",
    "Region",
    "TimeZoneName",
    "as_datetime",
    "build",
    "check_region",
    "check_timezone",
    "country",
    "email",
    "iso_date",
    "name",
    "parse_datetime",
    "phone",
    "to_utc_iso",
    "utc_datetime",
]
"""The public API: other parts of cdp (the profile store, destinations) normalize
identifiers with exactly these functions, so a match never depends on who normalized."""

Normalizer = Literal["email", "phone", "name", "country", "datetime", "date"]


# Cache sizes: a sync of millions of unique emails and phones must stay within its
# memory budget (an entry costs about 300 bytes), while the values that do repeat
# (first names, countries, the same phone in data and identifiers) still hit.
_CACHE_TEXT = 1 << 14
_CACHE_DATES = 1 << 13


# -- email ---------------------------------------------------------------------------------


_EMAIL = re.compile(r"[^\s@]+@(?:[^\s@.]+\.)+[^\s@.]+")
"""One ``@``, something before it, a domain of non-empty dot-separated labels, no whitespace.

Deliberately loose (no RFC 5322): the point is to catch typos and junk, and a
stricter check would reject addresses that mail servers accept.
"""


@lru_cache(maxsize=_CACHE_TEXT)
def email(value: str) -> str | Invalid:
    """Trimmed and lower-cased; must look like an address."""
    text = value.strip().lower()
    if _EMAIL.fullmatch(text) is None:
        return Invalid(f"not a valid email address: {show(value)}")
    return text


# -- names and countries -------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_WORD_START = re.compile(r"(^|[\s\-'’])(\w)")


def name(value: str, case: str = "keep") -> str:
    """NFC, trimmed, inner whitespace collapsed; ``case="title"`` fixes ALL-CAPS and all-lower input.

    Mixed case ("McDonald", "van der Berg") is left alone: it was typed on purpose.
    """
    return _name(case, value)


@lru_cache(maxsize=_CACHE_TEXT)
def _name(case: str, value: str) -> str:
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()
    if case == "title" and (text.islower() or text.isupper()):
        text = _WORD_START.sub(lambda m: m.group(1) + m.group(2).upper(), text.lower())
    return text


@lru_cache(maxsize=4096)
def country(value: str) -> str | Invalid:
    """ISO 3166-1 alpha-2, upper case, from a code or an English or German name."""
    code = country_code(value)
    return code if code is not None else Invalid(f"not a known country: {show(value)}")


# -- dates and times -----------------------------------------------------------------------

_YEAR_FIRST = re.compile(r"\d{4}[-/.]")
_EPOCH = re.compile(r"\d{10}(\d{3})?")
_COMPACT_DATE_NUMBER = re.compile(r"(1[89]|2\d)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
"""Eight digits that read as a date YYYYMMDD (1800-2999): as a number, ambiguous with Unix time."""
_DATEUTIL_DEFAULT = datetime(2000, 1, 1)  # a partial date ("May 2024") gets day 1, not today's day


def from_epoch(seconds: float) -> datetime:
    """Unix time in seconds, or in milliseconds when it is too large to be seconds (HubSpot, Stripe)."""
    if abs(seconds) > 1e11:
        seconds /= 1000
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


@lru_cache(maxsize=_CACHE_DATES)
def parse_datetime(value: str, dayfirst: bool = True) -> datetime | Invalid:
    """A datetime (naive when the text names no zone) from ISO 8601 or a common format.

    ISO text goes through ``fromisoformat`` first: dateutil with ``dayfirst`` would
    read "2024-05-07" as the 5th of July. Ten or thirteen digits are Unix time.
    """
    text = value.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    if _EPOCH.fullmatch(text):
        return from_epoch(int(text))
    try:
        if _YEAR_FIRST.match(text):
            return dateparser.parse(text, yearfirst=True, dayfirst=False, default=_DATEUTIL_DEFAULT)
        return dateparser.parse(text, dayfirst=dayfirst, default=_DATEUTIL_DEFAULT)
    except (ValueError, OverflowError):
        return Invalid(f"not a recognizable date/time: {show(value)}")


def as_datetime(value: Any, dayfirst: bool = True) -> datetime | Invalid | None:
    """Any input (text, datetime, date, Unix time) as a datetime; None for blank input."""
    if isinstance(value, str):
        return parse_datetime(value, dayfirst) if value.strip() else None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, int) and _COMPACT_DATE_NUMBER.fullmatch(str(value)):
            # 20240212 is a date (YYYYMMDD) or Unix time in 1970: never guessed
            return Invalid(f"ambiguous: {value} may be a date (YYYYMMDD) or Unix time; write dates as text")
        try:
            return from_epoch(value)
        except (OverflowError, ValueError):
            return Invalid(f"not a valid Unix time: {value!r}")
    if value is None:
        return None
    return Invalid(f"not a date/time: {type(value).__name__} {show(str(value))}")


def to_utc_iso(moment: datetime, timezone: str = "UTC") -> str:
    """ISO 8601 in UTC with a ``Z``; a naive ``moment`` is read in ``timezone``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def utc_datetime(value: str, dayfirst: bool = True, timezone: str = "UTC") -> str | Invalid:
    """ISO 8601 in UTC with ``Z``; text without an offset is read in ``timezone``."""
    return _utc_datetime(dayfirst, timezone, value)


@lru_cache(maxsize=_CACHE_DATES)
def _utc_datetime(dayfirst: bool, timezone: str, value: str) -> str | Invalid:
    moment = parse_datetime(value, dayfirst)
    return moment if isinstance(moment, Invalid) else to_utc_iso(moment, timezone)


def iso_date(value: str, dayfirst: bool = True) -> str | Invalid:
    """``YYYY-MM-DD``; a datetime keeps the date as written (a birthday must not shift a day in UTC)."""
    return _iso_date(dayfirst, value)


@lru_cache(maxsize=_CACHE_DATES)
def _iso_date(dayfirst: bool, value: str) -> str | Invalid:
    moment = parse_datetime(value, dayfirst)
    return moment if isinstance(moment, Invalid) else moment.date().isoformat()


def check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ValueError, KeyError, OSError):
        raise ValueError(f"unknown time zone {timezone!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'") from None
    return timezone


TimeZoneName = Annotated[str, AfterValidator(check_timezone)]


# -- one callable per configured field ----------------------------------------------------


# A dataclass, not a NamedTuple: mypy does not treat a NamedTuple's __call__ as making it a Callable.
@dataclass(frozen=True, slots=True)
class FieldNormalizer:
    """The normalizer of one configured field, its options bound once.

    Both return the normalized value, ``None`` (blank input) or :class:`Invalid`.
    ``text`` takes non-blank text only and is what the per-record loops call (one
    cache lookup); ``any`` takes whatever a source delivered.
    """

    text: Callable[[str], Any]
    any: Callable[[Any], Any]

    def __call__(self, value: Any) -> Any:
        if value.__class__ is str:
            return self.text(value) if value and not value.isspace() else None
        return self.any(value)


def build(
    kind: Normalizer,
    *,
    region: str = "DE",
    dayfirst: bool = True,
    timezone: str = "UTC",
    name_case: str = "keep",
) -> FieldNormalizer:
    """The normalizer ``kind`` with its options bound."""
    if kind == "email":
        return _text_input(email, "an email address")
    if kind == "phone":
        from cdp_core.transforms.phones import phone_in_region

        return _text_input(partial(phone_in_region, region), "a phone number", numbers=True)
    if kind == "name":
        return _text_input(partial(_name, name_case), "a name")
    if kind == "country":
        return _text_input(country, "a country")
    if kind == "datetime":
        text = partial(_utc_datetime, dayfirst, timezone)

        def to_datetime(value: Any) -> Any:
            if isinstance(value, str):
                return text(value) if value.strip() else None
            moment = as_datetime(value, dayfirst)
            return moment if moment is None or isinstance(moment, Invalid) else to_utc_iso(moment, timezone)

        return FieldNormalizer(text, to_datetime)
    if kind == "date":
        text = partial(_iso_date, dayfirst)

        def to_date(value: Any) -> Any:
            if isinstance(value, str):
                return text(value) if value.strip() else None
            moment = as_datetime(value, dayfirst)
            return moment if moment is None or isinstance(moment, Invalid) else moment.date().isoformat()

        return FieldNormalizer(text, to_date)
    raise ValueError(f"unknown normalizer {kind!r}")


def _text_input(fn: Callable[[str], Any], what: str, numbers: bool = False) -> FieldNormalizer:
    def normalize(value: Any) -> Any:
        if isinstance(value, str):
            return fn(value) if value and not value.isspace() else None
        if value is None:
            return None
        if numbers and isinstance(value, int) and not isinstance(value, bool) and value > 0:
            # JSON sources deliver phone numbers as integers, having lost the '+' (or the
            # national leading zero): try with a country code first, then as a national number.
            result = fn("+" + str(value))
            return fn(str(value)) if isinstance(result, Invalid) else result
        return Invalid(f"expected {what} as text, got {type(value).__name__} {show(str(value))}")

    return FieldNormalizer(fn, normalize)
