"""The privacy key: keyed hashes that reveal no identifier, and sealed payloads.

Two keys are derived from the configured one (HKDF-SHA256, one label each), so a
hash never equals a ciphertext's key material:

- :meth:`PrivacyKey.hash_identifier`: HMAC-SHA256 of ``TYPE\\x1fNORMALIZED VALUE``. Without the
  key, the hash of an email address cannot be checked against a guess (a plain SHA-256
  could be, from a list of addresses), so the suppression list and the audit log, which
  hold only these, reveal nobody to whoever reads the database.
- :meth:`PrivacyKey.seal` / :meth:`PrivacyKey.unseal`: AES-256-GCM, for what a forget request
  must still send to a vendor (a contact id, an email) until the vendor confirmed it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

MIN_KEY = 32
"""The shortest key taken: 32 characters of a random string (``openssl rand -hex 16`` gives 32)."""


class KeyProblem(ValueError):
    """No usable privacy key: the message says what to set."""


def _derive(secret: bytes, label: bytes) -> bytes:
    # HKDF (RFC 5869) with SHA-256, one block: extract with a fixed salt, expand with the label.
    prk = hmac.new(b"cdp-privacy", secret, hashlib.sha256).digest()
    return hmac.new(prk, label + b"\x01", hashlib.sha256).digest()


class PrivacyKey:
    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_KEY:
            raise KeyProblem(f"privacy.key: the privacy key must be at least {MIN_KEY} characters (got {len(secret)})")
        raw = secret.encode()
        self._hash_key = _derive(raw, b"identifier-hash")
        self._hasher = hmac.new(self._hash_key, digestmod=hashlib.sha256)
        """Keyed once: each hash copies it (a fifth of the time of a new HMAC; the screen hashes every identifier)."""
        self._seal_key = _derive(raw, b"sealed-payload")

    @classmethod
    def of(cls, secret: SecretStr | None) -> PrivacyKey:
        """The key from ``[privacy] key``; raises :class:`KeyProblem` saying what to set when it is missing."""
        if secret is None:
            raise KeyProblem(
                'privacy.key is not set: add `[privacy] key = "${CDP_PRIVACY_KEY}"` to connectors.toml and set '
                "CDP_PRIVACY_KEY to a random string of at least 32 characters (keep it: suppression needs the same key)"
            )
        return cls(secret.get_secret_value())

    def hash_identifier(self, type_name: str, normalized: str) -> str:
        """64 hex digits: the keyed hash of one normalized identifier."""
        hasher = self._hasher.copy()
        hasher.update(f"{type_name}\x1f{normalized}".encode())
        return hasher.hexdigest()

    def seal(self, data: bytes) -> str:
        """``data`` encrypted and authenticated, as ASCII (nonce + ciphertext, base64)."""
        nonce = os.urandom(12)
        return base64.b64encode(nonce + AESGCM(self._seal_key).encrypt(nonce, data, None)).decode("ascii")

    def unseal(self, token: str) -> bytes:
        """The data :meth:`seal` sealed; raises ``cryptography.exceptions.InvalidTag`` under another key."""
        blob = base64.b64decode(token)
        return AESGCM(self._seal_key).decrypt(blob[:12], blob[12:], None)
