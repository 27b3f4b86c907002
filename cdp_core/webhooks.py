"""Vendor webhooks: what a plugin registers with ``cdp_register_webhooks`` for a connector type.

A vendor that pushes changes (Shopify, Meta lead ads, Typeform) posts them to
``/webhooks/CONNECTOR`` of ``cdp serve``. For each configured connector whose type
has a registered :class:`Webhook`, the server builds one with the connector's
config and context and, per request:

- ``GET``: :meth:`Webhook.handshake` answers a subscription check (Meta's
  ``hub.challenge``); None (not a check, or the wrong verify token): 401. A webhook
  without a handshake answers GET with 405;
- ``POST``: :meth:`Webhook.verify` checks the signature on the raw body, in
  constant time; False: 401 and nothing stored. Then :meth:`Webhook.entries` says
  what to append to the ingest log (an empty list: acknowledged, nothing kept); the
  answer is sent once they are durable. A body it cannot read raises
  :class:`WebhookPayloadError`: a 400 with its message.

The read side is a source stream of the same connector (named in
:attr:`Webhook.streams`), built on :class:`cdp_core.ingest.IngestLogStream`: it reads
the logged entries by cursor and turns each into the same records as the plugin's
pull stream, so the store upserts the person or order the pull already knows. An entry
that cannot become a record makes its ``records`` function raise
:class:`EntryRejected`: the entry is quarantined with the reason, the read goes on.

The helpers below are what signature checks share: an HMAC-SHA256 of the raw body,
compared with :func:`hmac.compare_digest`, and case-insensitive header look-ups.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from cdp_core.base import ConnectorContext, PluginConfig
from cdp_core.ingest import IngestEntry
from cdp_core.isolation import describe

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "EntryRejected",
    "Webhook",
    "WebhookPayloadError",
    "body_digest",
    "entry_item",
    "header",
    "hmac_sha256",
    "json_body",
    "signature_matches",
]


class WebhookPayloadError(ValueError):
    """A signed body that cannot be logged (not JSON, not the documented shape); its text says what and where."""


class EntryRejected(ValueError):
    """Raised by a ``records(entry)`` function for an entry that gives no record: it is quarantined with the reason."""


class Webhook(ABC):
    """A connector type's webhook: verify a vendor's request, say what of it to log.

    Built once per configured connector with the connector's validated config (its
    source's ``config_model``) and its :class:`~cdp_core.ConnectorContext`; must not do
    I/O when built. Handlers are called from the server's request handling: answer
    fast, leave every vendor call to the reading stream.
    """

    streams: ClassVar[tuple[str, ...]] = ()
    """The streams of the connector's source that read what this webhook logs (e.g.
    ``("webhook_customers", "webhook_orders")``): what a graph names as ``CONNECTOR.STREAM``."""

    def __init__(self, config: PluginConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    secret_options: ClassVar[tuple[str, ...]] = ()
    """The config options it cannot work without (its secrets): :meth:`unavailable` names those not set."""

    def unavailable(self) -> str | None:
        """Why this connector's webhook can take nothing (a secret option not set), or None when it can."""
        missing = [name for name in self.secret_options if not _is_set(getattr(self.config, name, None))]
        if missing:
            return f"[connectors.{self.context.name}] sets no {' and no '.join(missing)}"
        return None

    def handshake(self, query: Mapping[str, str]) -> str | None:
        """The answer (text/plain) to a GET subscription check with this query, or None when it is not one.

        None is also the answer to a check with the wrong token: the server then refuses it
        with 401. A webhook that does not override it takes no GET (405).
        """
        return None

    @classmethod
    def has_handshake(cls) -> bool:
        """Whether the class answers GET subscription checks (overrides :meth:`handshake`)."""
        return cls.handshake is not Webhook.handshake

    @abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the request is the vendor's: its signature over the raw ``body``, compared in constant time.

        False when the signature header is missing, malformed or wrong, and when no secret is configured.
        """

    @abstractmethod
    def entries(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[IngestEntry]:
        """What of a verified request to append to the ingest log (``source`` = the connector's name).

        ``message_id`` is the vendor's own id of the delivery or object, so a retry is dropped as a
        duplicate; ``body`` is the parsed JSON the reading stream needs. Raises
        :class:`WebhookPayloadError` for a body it cannot read.
        """


def _is_set(value: Any) -> bool:
    return value is not None and bool(value.get_secret_value() if isinstance(value, SecretStr) else value)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name``, whatever the case of the keys of ``headers``."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, found in headers.items():
        if key.lower() == wanted:
            return found
    return None


def hmac_sha256(secret: SecretStr | str, body: bytes) -> bytes:
    """The HMAC-SHA256 of ``body`` keyed with ``secret`` (UTF-8)."""
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()


def signature_matches(
    secret: SecretStr | None,
    body: bytes,
    given: str | None,
    *,
    encoding: Literal["base64", "hex"],
    prefix: str = "",
) -> bool:
    """Whether ``given`` is ``prefix`` + the HMAC-SHA256 of ``body`` with ``secret``, compared in constant time.

    ``encoding`` is how the digest is written (``base64``: Shopify, Typeform; ``hex``: Meta).
    False for no secret, no header, another prefix (``sha1=``) or a wrong digest.
    """
    if secret is None or not secret.get_secret_value() or given is None:
        return False
    given = given.strip()
    if not given.startswith(prefix):
        return False
    given = given[len(prefix) :]
    digest = hmac_sha256(secret, body)
    if encoding == "hex":
        expected, given = digest.hex(), given.lower()
    else:
        expected = base64.b64encode(digest).decode("ascii")
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "surrogateescape"))


def json_body(body: bytes, what: str) -> dict[str, Any]:
    """``body`` parsed as a JSON object; :class:`WebhookPayloadError` naming ``what`` otherwise."""
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"{what}: the body is not JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise WebhookPayloadError(f"{what}: the body is a JSON {type(parsed).__name__}, not an object")
    return parsed


def body_digest(body: bytes) -> str:
    """A message id for a delivery that carries none: ``sha256:`` and the body's hex digest (same body, same id)."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def entry_item(value: Any, model: type[M], *, where: str) -> M:
    """``value`` (a logged entry's body, or part of it) validated with ``model``.

    :raises EntryRejected: naming ``where`` and the fields that do not match (never their values).
    """
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise EntryRejected(f"{where}: does not match {model.__name__}: {describe(exc)}") from None
