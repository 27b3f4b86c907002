"""Country names to ISO 3166-1 alpha-2: pycountry plus the names pycountry does not know.

pycountry knows codes and English names; customer data from DACH forms also holds
German names ("Österreich"), ASCII spellings of them ("Oesterreich") and colloquial
English ones ("UK", "Holland"). Keys are folded with :func:`fold`.
"""

from __future__ import annotations

from functools import lru_cache

import pycountry

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def fold(text: str) -> str:
    """Case-, space- and umlaut-insensitive key: "Österreich", "oesterreich " -> "oesterreich"."""
    return " ".join(text.split()).casefold().translate(_UMLAUTS).replace("-", " ")


# fmt: off
_NAMES: dict[str, str] = {
    # German
    "deutschland": "DE", "bundesrepublik deutschland": "DE", "brd": "DE",
    "österreich": "AT", "schweiz": "CH", "frankreich": "FR", "niederlande": "NL",
    "italien": "IT", "spanien": "ES", "vereinigtes königreich": "GB", "großbritannien": "GB",
    "vereinigte staaten": "US", "vereinigte staaten von amerika": "US", "amerika": "US",
    "belgien": "BE", "polen": "PL", "dänemark": "DK", "schweden": "SE", "norwegen": "NO",
    "finnland": "FI", "tschechien": "CZ", "tschechische republik": "CZ", "slowakei": "SK",
    "ungarn": "HU", "griechenland": "GR", "irland": "IE", "luxemburg": "LU", "kroatien": "HR",
    "slowenien": "SI", "rumänien": "RO", "bulgarien": "BG", "türkei": "TR", "russland": "RU",
    "weißrussland": "BY", "estland": "EE", "lettland": "LV", "litauen": "LT", "island": "IS",
    "zypern": "CY", "serbien": "RS", "kanada": "CA", "australien": "AU", "neuseeland": "NZ",
    "indien": "IN", "brasilien": "BR", "mexiko": "MX", "südafrika": "ZA", "ägypten": "EG",
    "marokko": "MA", "tunesien": "TN", "israel": "IL", "vereinigte arabische emirate": "AE",
    "saudi arabien": "SA", "südkorea": "KR", "singapur": "SG", "argentinien": "AR",
    "kolumbien": "CO", "chile": "CL", "kasachstan": "KZ", "nordmazedonien": "MK",
    "bosnien und herzegowina": "BA", "montenegro": "ME", "albanien": "AL", "moldawien": "MD",
    # colloquial English
    "uk": "GB", "u.k.": "GB", "great britain": "GB", "britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB", "u.s.": "US", "u.s.a.": "US",
    "united states of america": "US", "america": "US", "holland": "NL", "the netherlands": "NL",
    "russia": "RU", "turkey": "TR", "south korea": "KR", "north korea": "KP",
    "czech republic": "CZ", "ivory coast": "CI", "vatican": "VA", "macedonia": "MK",
    "uae": "AE", "moldova": "MD", "syria": "SY", "laos": "LA",
}
# fmt: on
_ALIASES = {fold(name): code for name, code in _NAMES.items()}


@lru_cache(maxsize=4096)
def country_code(value: str) -> str | None:
    """The alpha-2 code (upper case) for a code, English or German name; None if unknown."""
    key = fold(value)
    if not key:
        return None
    code = _ALIASES.get(key)
    if code is not None:
        return code
    try:
        # the original spelling: folding would break names such as "Guinea-Bissau"
        return str(pycountry.countries.lookup(" ".join(value.split())).alpha_2).upper()
    except LookupError:
        return None
