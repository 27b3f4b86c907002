"""An identifier an operator names on the command line (``TYPE:VALUE``, a bare email or phone number),
read the one way every privacy command reads it, and normalized as the store normalizes it."""

from __future__ import annotations

from typing import Any

from cdp_profiles.store.queries import PHONE_LIKE, TYPE_NAME


def split_identifier(text: str) -> tuple[str, str]:
    """(type, value as written): ``TYPE:VALUE``; a bare email or phone number; else ``("", text)``."""
    stripped = text.strip()
    head, sep, rest = stripped.partition(":")
    if sep and TYPE_NAME.fullmatch(head):
        return head, rest.strip()
    return ("email" if "@" in stripped else "phone" if PHONE_LIKE.fullmatch(stripped) else ""), stripped


def asked_for(identifier: str, normalize: Any) -> tuple[str, str]:
    """The identifier as the store would key it: (type, normalized value), as the lookup reads it;
    a value that does not normalize, or one of no known type, is kept as written (``profile:ID`` lower-cased)."""
    type_name, value = split_identifier(identifier)
    if type_name and type_name != "profile":
        normalized, _ = normalize(type_name, value)
        return type_name, normalized if normalized is not None else value
    return type_name, value.lower() if type_name == "profile" else value
