"""A person's audience member keys: which rows of the audience mirrors are theirs.

An ad destination keys each member of its mirror (cdp_profiles/audiences.py) by
:func:`~cdp_profiles.audiences.member_key` over its primary identifier, normalized the
platform's way, and the platforms differ:

- Meta (``meta_audiences``): the normalized email, else the phone's digits without ``+``;
- Google Ads (``google_ads``): the SHA-256 of the normalized email (for ``gmail.com`` and
  ``googlemail.com`` without the dots before ``@``), else of the E.164 phone with ``+``.

From the store's normalized identifiers (email lower-case, phone E.164) every variant is
derived, so a person's rows are found whichever destination wrote them. A Google member
keyed by a postal address alone (no email or phone) is not found this way.
"""

from __future__ import annotations

from collections.abc import Iterable

from cdp_profiles.audiences import member_key, sha256_hex

_GMAIL = frozenset({"gmail.com", "googlemail.com"})


def _google_email(email: str) -> str:
    local, _, domain = email.rpartition("@")
    return f"{local.replace('.', '')}@{domain}" if domain in _GMAIL and local else email


def member_keys(identifiers: Iterable[tuple[str, str]]) -> list[str]:
    """Every audience member key the person's normalized ``(type, value)`` identifiers can have, sorted."""
    keys: set[str] = set()
    for type_name, value in identifiers:
        if type_name == "email":
            keys.add(member_key("email", value))  # Meta
            keys.add(member_key("email", sha256_hex(_google_email(value))))  # Google
        elif type_name == "phone":
            keys.add(member_key("phone", value.lstrip("+")))  # Meta
            keys.add(member_key("phone", sha256_hex(value if value.startswith("+") else f"+{value}")))  # Google
    return sorted(keys)
