"""Phone numbers to E.164 with phonenumbers, and the shortcuts that keep it fast.

Phone parsing is the slowest step of a typical sync (about 40 us per number), so
the everyday spellings are rewritten and only validated (:func:`_quick`), results
are cached, and an E.164 result handed back in (normalize, then hash) is known.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator

from cdp_core.transforms.fields import Invalid, show

_CACHE_PHONE = 1 << 14  # about 300 bytes an entry: bounded for runs over millions of unique numbers

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _split_country_code(text: str) -> tuple[int, str] | None:
    """Split "+CCNNN..." into (CC, "NNN..."); country codes are a prefix code, tried shortest first as ``parse`` does."""
    for length in (1, 2, 3):
        code = int(text[1 : 1 + length])
        if code in _COUNTRY_CODES:
            return code, text[1 + length :]
    return None


def _valid_e164(text: str) -> bool:
    """Whether canonical E.164 text is a valid number, without the slow full parse.

    Normalize and then hash both normalize a phone: the second time the value is
    already E.164, and this check is about 3x cheaper than ``phonenumbers.parse``.
    """
    split = _split_country_code(text)
    if split is None:
        return False
    code, national = split
    if not national or national[0] == "0":
        return False  # leading zeros (Italy) need parse's bookkeeping
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return bool(phonenumbers.is_valid_number(number))


_SEPARATORS = re.compile(r"[\s\-./()]")


@cache
def _dialling(region: str) -> tuple[str | None, bool]:
    """(the "+CC" to put in front of a national number starting with "0", whether "00" starts an
    international one) for regions whose rules are exactly these; otherwise (None, False)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return None, False
    simple_trunk = (
        meta.national_prefix == "0"
        and meta.national_prefix_for_parsing in (None, "0")
        and meta.national_prefix_transform_rule is None
    )
    return (f"+{meta.country_code}" if simple_trunk else None), meta.international_prefix == "00"


def _quick(text: str, region: str) -> str | None:
    """E.164 for the everyday spellings ("0171 1234567", "+49 (0)171-1234567", "0049...") when
    cheap rewriting yields a valid number; None leaves the decision to ``phonenumbers.parse``.

    Parsing is ~3x slower than validating, and phones are the slowest field of a sync.
    Only a plain "0" trunk prefix and the "00" exit code are rewritten, and only for
    countries that use exactly these (DE, AT, CH, FR, NL...); a test checks the
    results against ``parse`` over thousands of numbers.
    """
    compact = _SEPARATORS.sub("", text)
    if compact.startswith("+"):
        candidate = compact
    else:
        trunk, exit_00 = _dialling(region)
        if compact.startswith("00") and exit_00:
            candidate = "+" + compact[2:]
        elif compact.startswith("0") and trunk is not None:
            candidate = trunk + compact[1:]
        else:
            return None
    if _E164.fullmatch(candidate) is None:
        return None
    split = _split_country_code(candidate)
    if split is not None and split[1][:1] == "0":
        # "+49 (0)171 ...": the trunk 0 written after the country code, dialled only at home
        home = phonenumbers.region_code_for_country_code(split[0])
        if _dialling(home)[0] is None:
            return None
        candidate = f"+{split[0]}{split[1][1:]}"
    return candidate if _valid_e164(candidate) else None


def phone(value: str, region: str = "DE") -> str | Invalid:
    """E.164 (``+4917112345678``); numbers without a ``+`` are read in ``region``."""
    return phone_in_region(region, value)


# Options come first in the cached functions so ``partial(fn, option)`` binds them
# positionally: a C-level call straight into the C-level cache, per record.
@lru_cache(maxsize=_CACHE_PHONE)
def phone_in_region(region: str, value: str) -> str | Invalid:
    """:func:`phone` with the region first, for ``partial(phone_in_region, region)``."""
    text = value.strip()
    if text in _KNOWN_E164:
        return text
    result = _quick(text, region)
    if result is None:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            return Invalid(f"not a valid phone number for region {region}: {show(value)}")
        result = str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    if len(_KNOWN_E164) >= _KNOWN_E164_MAX:
        _KNOWN_E164.clear()
    _KNOWN_E164.add(result)
    return result


_KNOWN_E164: set[str] = set()
"""Results of :func:`phone_in_region`: a pipeline that normalizes and then hashes (or normalizes
twice) hands the E.164 output back in, and validating a number is the slow part."""
_KNOWN_E164_MAX = 1 << 15  # a set of short strings: holds a whole page of phones cheaply


def check_region(region: str) -> str:
    """Validate a default phone region from the config (upper-cased)."""
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {region!r}: use an ISO 3166-1 alpha-2 code such as 'DE'")
    return code


Region = Annotated[str, AfterValidator(check_region)]
"""A phone region option: upper-cased, one phonenumbers knows."""
