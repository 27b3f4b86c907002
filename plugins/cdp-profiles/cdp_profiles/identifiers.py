"""How the profile store normalizes one identifier value: the one rule for writing and for finding.

The write path (:class:`cdp_profiles.store.profiles.ProfileWriter`), lookups (``cdp profiles show``),
privacy requests and the suppression list all normalize with :class:`IdentifierNormalizer`, so a value
asked for matches the value stored. It needs no database: a read command uses it without loading the
write path.
"""

from __future__ import annotations

import re
from typing import Any

from cdp_profiles.identity import IdentityConfig

_E164 = re.compile(r"\+[1-9]\d{6,14}")


class IdentifierNormalizer:
    """``normalize(type_name, value) -> (normalized value or None, why not)`` under ``[identity]``'s rules."""

    def __init__(self, identity: IdentityConfig) -> None:
        from cdp_core.transforms import normalizers  # the same normalizers the normalize transform uses

        self.identity = identity
        self.rules = identity.rules
        self._normalizers = normalizers

    def __call__(self, type_name: str, value: Any) -> tuple[str | None, str]:
        text = str(value).strip()
        if not text:
            return None, "empty"
        if type_name == "email":
            result = self._normalizers.email(text)
        elif type_name == "phone":
            # Already E.164 (the normalize transform's output, or a vendor's): taken as is;
            # full parsing costs ~100 us a number and would dominate a large ingest.
            result = text if _E164.fullmatch(text) else self._normalizers.phone(text, self.identity.default_region)
        else:
            result = text
        if isinstance(result, self._normalizers.Invalid):
            return None, result.problem
        if self.rules.is_blocked(type_name, result):
            return None, f"{type_name} {result!r} is blocked"
        return result, ""
