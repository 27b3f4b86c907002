"""Meta Custom Audiences: normalization and SHA-256 hashing of customer data, as Meta documents it.

Meta's rules ("Hashing and normalizing data" of the Marketing API documentation):
trim and lower-case every value, then SHA-256 (hex):

| key | normalized before hashing |
|---|---|
| ``EMAIL`` | trimmed, lower-case (``john.doe@example.com``) |
| ``PHONE`` | digits only, with the country code, **no** ``+`` and no leading zeros (``491711234567``); read in ``default_region`` when written nationally |
| ``FN``, ``LN`` | lower-case, no punctuation and no spaces; UTF-8 letters kept (``zoë``) |
| ``FI`` | the first letter of ``FN`` |
| ``CT``, ``ST`` | lower-case letters only, no punctuation, no spaces (``münchen``) |
| ``ZIP`` | lower-case, no spaces, the part before a ``-`` (``12345-6789`` -> ``12345``) |
| ``COUNTRY`` | ISO 3166-1 alpha-2, lower-case (``de``) |
| ``GEN`` | ``m`` or ``f`` |
| ``DOBY``, ``DOBM``, ``DOBD`` | ``YYYY``, ``MM``, ``DD`` |
| ``EXTERN_ID`` | trimmed, **not hashed** |

Every function is pure and returns the normalized text, or None when the value is
blank or cannot be normalized (an unparseable phone number is left out, never
hashed as typed: its hash would match nobody).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any, Literal

from cdp_core.transforms import normalizers
from cdp_core.transforms.fields import Invalid
from cdp_profiles.audiences import PersonFields, as_text, member_key, sha256_hex

MetaKey = Literal[
    "EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST", "ZIP", "COUNTRY"
]
KEYS: tuple[str, ...] = (
    "EXTERN_ID",
    "EMAIL",
    "PHONE",
    "GEN",
    "DOBY",
    "DOBM",
    "DOBD",
    "LN",
    "FN",
    "FI",
    "CT",
    "ST",
    "ZIP",
    "COUNTRY",
)
"""The schema keys this plugin can send, in Meta's documented order (MADID is not supported: cdp holds no device ids)."""
UNHASHED = frozenset({"EXTERN_ID"})
MATCH_KEYS = ("EMAIL", "PHONE")
"""A row needs one of these: names, places and birthdays alone match too few people to be worth sending."""


def email(value: Any) -> str | None:
    text = as_text(value)
    if text is None:
        return None
    result = normalizers.email(text)
    return None if isinstance(result, Invalid) else result


def phone(value: Any, region: str = "DE") -> str | None:
    """Digits only with the country code, no ``+``: ``+49 (0)171 1234567`` -> ``491711234567``."""
    text = as_text(value)
    if text is None:
        return None
    result = normalizers.phone(text, region)
    if isinstance(result, Invalid):
        return None
    return result.lstrip("+")  # E.164: a country code never starts with 0, so no leading zeros remain


def letters(value: Any) -> str | None:
    """Lower-case letters only (any script, so ``Zoë`` -> ``zoë``): punctuation, digits and spaces go."""
    text = as_text(value)
    if text is None:
        return None
    kept = "".join(ch for ch in text.lower() if unicodedata.category(ch)[0] in "LM")
    return unicodedata.normalize("NFC", kept) or None


def first_name(value: Any) -> str | None:
    return letters(value)


def last_name(value: Any) -> str | None:
    return letters(value)


def first_initial(value: Any) -> str | None:
    name = letters(value)
    return name[0] if name else None


def city(value: Any) -> str | None:
    return letters(value)


def state(value: Any) -> str | None:
    return letters(value)


def zip_code(value: Any) -> str | None:
    """Lower-case, no spaces, the part before ``-``: ``12345-6789`` -> ``12345``, ``SW1A 1AA`` -> ``sw1a1aa``."""
    text = as_text(value)
    if text is None:
        return None
    text = "".join(text.lower().split()).split("-", 1)[0]
    return text or None


def country(value: Any) -> str | None:
    """ISO 3166-1 alpha-2, lower-case: ``Germany``, ``DE``, ``Deutschland`` -> ``de``."""
    text = as_text(value)
    if text is None:
        return None
    result = normalizers.country(text)
    return None if isinstance(result, Invalid) else result.lower()


_GENDERS = {
    "m": "m", "male": "m", "man": "m", "mann": "m", "männlich": "m", "herr": "m", "mr": "m",
    "f": "f", "female": "f", "woman": "f", "w": "f", "frau": "f", "weiblich": "f", "mrs": "f", "ms": "f",
}  # fmt: skip


def gender(value: Any) -> str | None:
    """``m`` or ``f``; anything else is left out."""
    text = as_text(value)
    return _GENDERS.get(text.lower().rstrip(".")) if text else None


def birthday(value: Any) -> tuple[str, str, str] | None:
    """``(YYYY, MM, DD)`` from a date, a date-time or a written date (day first when ambiguous)."""
    text = as_text(value)
    if text is None:
        return None
    result = normalizers.iso_date(text)
    if isinstance(result, Invalid):
        return None
    year, month, day = result.split("-")
    return year, month, day


def extern_id(value: Any) -> str | None:
    return as_text(value)


def normalized_values(fields: PersonFields, keys: Sequence[str], region: str = "DE") -> dict[str, str]:
    """The normalized (not yet hashed) value of each schema key the person has."""
    values: dict[str, str | None] = {}
    wanted = set(keys)
    if "EMAIL" in wanted:
        values["EMAIL"] = email(fields.get("email"))
    if "PHONE" in wanted:
        values["PHONE"] = phone(fields.get("phone"), region)
    if "FN" in wanted:
        values["FN"] = first_name(fields.get("first_name"))
    if "FI" in wanted:
        values["FI"] = first_initial(fields.get("first_name"))
    if "LN" in wanted:
        values["LN"] = last_name(fields.get("last_name"))
    if "CT" in wanted:
        values["CT"] = city(fields.get("city"))
    if "ST" in wanted:
        values["ST"] = state(fields.get("state"))
    if "ZIP" in wanted:
        values["ZIP"] = zip_code(fields.get("zip"))
    if "COUNTRY" in wanted:
        values["COUNTRY"] = country(fields.get("country"))
    if "GEN" in wanted:
        values["GEN"] = gender(fields.get("gender"))
    if wanted & {"DOBY", "DOBM", "DOBD"}:
        born = birthday(fields.get("birthday"))
        if born is not None:
            values.update({"DOBY": born[0], "DOBM": born[1], "DOBD": born[2]})
    if "EXTERN_ID" in wanted:
        values["EXTERN_ID"] = extern_id(fields.get("extern_id"))
    return {key: value for key, value in values.items() if key in wanted and value}


def hashed_row(values: dict[str, str]) -> dict[str, str]:
    """SHA-256 (hex) of every normalized value, but ``EXTERN_ID``, which Meta takes as is."""
    return {key: value if key in UNHASHED else sha256_hex(value) for key, value in values.items()}


def member(fields: PersonFields, keys: Sequence[str], region: str = "DE") -> tuple[str, dict[str, str]] | str:
    """``(member key, hashed row)`` for a person, or the reason it cannot be sent.

    The member key is the SHA-256 of the normalized email, else of the phone digits.
    """
    values = normalized_values(fields, keys, region)
    if "EMAIL" in values:
        key = member_key("email", values["EMAIL"])
    elif "PHONE" in values:
        key = member_key("phone", values["PHONE"])
    else:
        offered = [k for k in MATCH_KEYS if k in keys]
        problems = []
        for key_name, field in (("EMAIL", "email"), ("PHONE", "phone")):
            if key_name in offered and fields.get(field) is not None:
                problems.append(f"its {field} is not valid")
        detail = f" ({'; '.join(problems)})" if problems else ""
        return f"no usable identifier for Meta: needs a valid {' or '.join(f.lower() for f in offered)}{detail}"
    return key, hashed_row(values)


def secondary_rows(fields: PersonFields, keys: Sequence[str], region: str = "DE") -> list[tuple[str, dict[str, str]]]:
    """``(member key, hashed row)`` for each email and phone of the person after the primary one (a person
    with several, from an identifier list): a row with just that value, keyed like a person's row."""
    rows: list[tuple[str, dict[str, str]]] = []
    for key_name, field, clean in (("EMAIL", "email", email), ("PHONE", "phone", None)):
        if key_name not in keys:
            continue
        normalized = [clean(v) if clean else phone(v, region) for v in fields.all(field)]
        for value in list(dict.fromkeys(v for v in normalized if v))[1:]:
            rows.append((member_key(field, value), hashed_row({key_name: value})))
    return rows


def payload(schema: Sequence[str], rows: Sequence[dict[str, str]]) -> dict[str, Any]:
    """Meta's ``payload``: ``{"schema": [...], "data": [[...], ...]}``, ``""`` for a value a person lacks.

    Rows stored by an earlier run may hold keys the schema no longer lists (a
    removal of a row uploaded under an older schema): those keys are appended.
    """
    keys = list(schema)
    extra = {k for row in rows for k in row} - set(keys)
    keys += [k for k in KEYS if k in extra] + sorted(extra - set(KEYS))
    return {"schema": keys, "data": [[row.get(k, "") for k in keys] for row in rows]}
