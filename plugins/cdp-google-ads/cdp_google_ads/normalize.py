"""Google Ads Customer Match: normalization and SHA-256 hashing of customer data, as Google documents it.

Google's rules (Google Ads Help, Customer Match "Prepare your data"):

| identifier | normalized | hashed |
|---|---|---|
| email (``hashedEmail``) | trimmed, lower-case; for ``gmail.com`` and ``googlemail.com`` the dots before ``@`` removed | SHA-256 hex |
| phone (``hashedPhoneNumber``) | E.164 **with** ``+`` (``+491711234567``; the opposite of Meta) | SHA-256 hex |
| first / last name (``addressInfo.hashedFirstName`` / ``hashedLastName``) | trimmed, lower-case (``zoë``) | SHA-256 hex |
| country (``addressInfo.countryCode``) | ISO 3166-1 alpha-2 (``DE``) | **not hashed** |
| postal code (``addressInfo.postalCode``) | trimmed | **not hashed** |

An ``addressInfo`` needs all four of first name, last name, country and postal
code, or it is left out. Every function is pure; None means blank or not
normalizable (an unparseable phone is left out, never hashed as typed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from cdp_core.transforms import normalizers
from cdp_core.transforms.fields import Invalid
from cdp_profiles.audiences import PersonFields, as_text, member_key, sha256_hex

Identifier = Literal["email", "phone", "address"]
IDENTIFIERS: tuple[Identifier, ...] = ("email", "phone", "address")
_GMAIL = frozenset({"gmail.com", "googlemail.com"})


def email(value: Any) -> str | None:
    """Trimmed, lower-case; ``John.Doe@GMail.com`` -> ``johndoe@gmail.com`` (other domains keep their dots)."""
    text = as_text(value)
    if text is None:
        return None
    result = normalizers.email(text)
    if isinstance(result, Invalid):
        return None
    local, _, domain = result.rpartition("@")
    if domain in _GMAIL:
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


def phone(value: Any, region: str = "DE") -> str | None:
    """E.164 with ``+``: ``+49 (0)171 1234567`` -> ``+491711234567``."""
    text = as_text(value)
    if text is None:
        return None
    result = normalizers.phone(text, region)
    return None if isinstance(result, Invalid) else result


def name(value: Any) -> str | None:
    """Trimmed and lower-case, inner spaces collapsed: ``  Zoë `` -> ``zoë``."""
    text = as_text(value)
    return " ".join(text.lower().split()) if text else None


def country_code(value: Any) -> str | None:
    """ISO 3166-1 alpha-2, upper-case, not hashed: ``Germany`` -> ``DE``."""
    text = as_text(value)
    if text is None:
        return None
    result = normalizers.country(text)
    return None if isinstance(result, Invalid) else result


def postal_code(value: Any) -> str | None:
    """Trimmed, inner spaces collapsed, not hashed."""
    text = as_text(value)
    return " ".join(text.split()) if text else None


def user_identifiers(
    fields: PersonFields, wanted: Sequence[str] = IDENTIFIERS, region: str = "DE"
) -> list[dict[str, Any]]:
    """The ``userIdentifiers`` of one ``UserData``: one object per identifier (each email and phone of the
    person), hashed where Google hashes."""
    identifiers: list[dict[str, Any]] = []
    # Every email and phone of the person (the primary first): Google matches a UserData on any of them.
    if "email" in wanted:
        emails = dict.fromkeys(e for v in fields.all("email") if (e := email(v)))
        identifiers.extend({"hashedEmail": sha256_hex(e)} for e in emails)
    if "phone" in wanted:
        phones = dict.fromkeys(p for v in fields.all("phone") if (p := phone(v, region)))
        identifiers.extend({"hashedPhoneNumber": sha256_hex(p)} for p in phones)
    if "address" in wanted:
        first, last = name(fields.get("first_name")), name(fields.get("last_name"))
        country, postal = country_code(fields.get("country")), postal_code(fields.get("zip"))
        if first and last and country and postal:
            identifiers.append(
                {
                    "addressInfo": {
                        "hashedFirstName": sha256_hex(first),
                        "hashedLastName": sha256_hex(last),
                        "countryCode": country,
                        "postalCode": postal,
                    }
                }
            )
    return identifiers


def member(
    fields: PersonFields, wanted: Sequence[str] = IDENTIFIERS, region: str = "DE"
) -> tuple[str, list[dict[str, Any]]] | str:
    """``(member key, userIdentifiers)`` for a person, or the reason it cannot be sent.

    The member key is the SHA-256 of the normalized email, else the phone, else the address.
    """
    identifiers = user_identifiers(fields, wanted, region)
    if not identifiers:
        problems = [
            f"its {field} is not valid"
            for field in ("email", "phone")
            if field in wanted and fields.get(field) is not None
        ]
        needs = " or ".join(
            {
                "email": "a valid email",
                "phone": "a valid phone",
                "address": "first name, last name, country and postal code",
            }[w]
            for w in wanted
        )
        detail = f" ({'; '.join(problems)})" if problems else ""
        return f"no usable identifier for Google Customer Match: needs {needs}{detail}"
    first = identifiers[0]
    if "hashedEmail" in first:
        key = member_key("email", first["hashedEmail"])
    elif "hashedPhoneNumber" in first:
        key = member_key("phone", first["hashedPhoneNumber"])
    else:
        address = first["addressInfo"]
        key = member_key("address", "|".join(address[k] for k in sorted(address)))
    return key, identifiers
