"""A person's audience member keys, as the audience destinations compute them.

An audience mirror row (cdp_profiles/audiences.py) is keyed by :func:`member_key` of the
member's primary identifier, in the form each destination hashes (its normalize.py):

- Meta Custom Audiences: ``member_key("email", email)``, else ``member_key("phone", digits)``
  (E.164 without ``+``);
- Google Customer Match: ``member_key("email", sha256(email))`` (for gmail.com and
  googlemail.com without the dots before ``@``), else ``member_key("phone", sha256(E.164))``,
  else ``member_key("address", ...)`` of the hashed first and last name, country and postal code.

Forget derives every one of them from the person's normalized identifiers and their
profile's traits, so it finds their rows in every mirror whichever destination wrote it.
The fields are read where the destinations read them by default (``DEFAULT_SOURCES``):
a destination configured to read a name or an address from elsewhere may key an
address-only member differently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cdp_core.transforms import normalizers
from cdp_core.transforms.fields import Invalid
from sqlalchemy import Connection, select

from cdp_profiles.audiences import DEFAULT_SOURCES, as_text, member_key, sha256_hex
from cdp_profiles.privacy.person import Person
from cdp_profiles.store import tables

_GMAIL = frozenset({"gmail.com", "googlemail.com"})


def person_member_keys(conn: Connection, person: Person) -> list[str]:
    """Every member key a mirror may hold for ``person``: from their own identifiers, and an address
    from the traits of each of their profiles (one query)."""
    profiles = tables.profiles
    rows = conn.execute(select(profiles.c.traits).where(profiles.c.id.in_(person.profile_ids))).scalars()
    keys = set(member_keys(person.own, {}))
    for traits in rows:
        if isinstance(traits, dict):
            keys.update(member_keys(person.own, traits))
    return sorted(keys)


def member_keys(identifiers: Iterable[tuple[str, str]], traits: Mapping[str, Any]) -> list[str]:
    """Every member key a mirror may hold for the person, sorted."""
    keys: set[str] = set()
    for type_name, value in identifiers:
        if type_name == "email":
            local, _, domain = value.rpartition("@")
            google = f"{local.replace('.', '')}@{domain}" if domain in _GMAIL else value
            keys.update({member_key("email", value), member_key("email", sha256_hex(google))})
        elif type_name == "phone":
            keys.update({member_key("phone", value.lstrip("+")), member_key("phone", sha256_hex(value))})
    address = _google_address(traits)
    if address is not None:
        keys.add(member_key("address", "|".join(address[k] for k in sorted(address))))
    return sorted(keys)


def _trait(traits: Mapping[str, Any], field: str) -> str | None:
    for path in DEFAULT_SOURCES[field]:
        if not path.startswith("identifiers.") and (text := as_text(traits.get(path))) is not None:
            return text
    return None


def _google_address(traits: Mapping[str, Any]) -> dict[str, str] | None:
    """Google's ``addressInfo`` of the person, as cdp_google_ads/normalize.py builds it, or None."""
    first, last = _trait(traits, "first_name"), _trait(traits, "last_name")
    country, postal = _trait(traits, "country"), _trait(traits, "zip")
    if not (first and last and country and postal):
        return None
    code = normalizers.country(country)
    if isinstance(code, Invalid):
        return None
    return {
        "hashedFirstName": sha256_hex(" ".join(first.lower().split())),
        "hashedLastName": sha256_hex(" ".join(last.lower().split())),
        "countryCode": code,
        "postalCode": " ".join(postal.split()),
    }
