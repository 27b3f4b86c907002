"""The base of a vendor webhook handler, which ``cdp serve`` mounts at ``/webhooks/{connector}``.

A plugin registers a subclass for a connector type (``cdp_register_webhooks``). For each
configured connector of that type ``cdp serve`` builds one with the connector's config and
context, and for each request:

- ``GET``: :meth:`Webhook.handshake` with the query (a vendor's subscription check); a
  string is answered 200 as plain text, None is 404;
- ``POST``: :meth:`Webhook.verify` on the headers and the raw body (False: 401, nothing
  stored), then :meth:`Webhook.entries` (a ``ValueError``: 400), appended to the ingest log
  and durable before the 200. The connector's source reads them back with an
  :class:`cdp_core.ingest.IngestLogStream`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from cdp_core.base import ConnectorContext, PluginConfig
from cdp_core.ingest.log import IngestEntry


class Webhook:
    """Handles one connector's webhook deliveries; subclass it and implement :meth:`verify` and :meth:`entries`."""

    def __init__(self, config: PluginConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    def handshake(self, query: Mapping[str, str]) -> str | None:
        """The answer to a GET verification request, or None when it is not one this vendor makes."""
        return None

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the delivery is the vendor's: its signature over the raw body, compared with ``hmac.compare_digest``."""
        raise NotImplementedError

    def entries(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[IngestEntry]:
        """What to store of a verified delivery; ``message_id`` from the vendor's own delivery or event id."""
        raise NotImplementedError
