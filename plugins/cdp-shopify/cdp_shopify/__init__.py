"""cdp-shopify: a cdp source plugin for the Shopify Admin REST API.

Streams (``source = "CONNECTOR.STREAM"``):

- ``customers`` (kind ``profile``): ``GET /admin/api/{version}/customers.json``;
- ``consents`` (kind ``consent``): the same customers' ``email_marketing_consent``
  and ``sms_marketing_consent``, one record per purpose;
- ``orders`` (kind ``order``): ``GET /admin/api/{version}/orders.json?status=any``.

All three page through the ``Link`` header and are incremental by
``updated_at_min`` (see :mod:`cdp_shopify.source`). Why consent is a stream of its
own: a cdp stream emits one record kind (the conformance suite checks it), so
the customers endpoint is offered twice, once per kind; configure ``consents``
only where consent is wanted (it costs a second pass over the changed customers).

Shopify's webhooks (``cdp serve``'s ``/webhooks/CONNECTOR``, :mod:`cdp_shopify.webhooks`)
feed three more streams: ``webhook_customers``, ``webhook_consents`` and
``webhook_orders``, which make the same records as the pull streams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp_core import Register, hookimpl
from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_shopify.config import ShopifyConfig
    from cdp_shopify.mapping import CONSENT_STATUS, customer_consents, customer_profile, order_record
    from cdp_shopify.source import Consents, Customers, Orders, ShopifySource, ShopifyStream
    from cdp_shopify.webhooks import ShopifyWebhook, consent_records, customer_records, order_records

# Imported on first use, not with the package: cdp imports every plugin's package to list its
# commands, and `cdp --help` should not pay for the HTTP client (docs/writing-plugins.md).
__getattr__ = lazy_exports(
    __name__,
    {
        "ShopifyConfig": "cdp_shopify.config",
        "CONSENT_STATUS": "cdp_shopify.mapping",
        "customer_consents": "cdp_shopify.mapping",
        "customer_profile": "cdp_shopify.mapping",
        "order_record": "cdp_shopify.mapping",
        "Consents": "cdp_shopify.source",
        "Customers": "cdp_shopify.source",
        "Orders": "cdp_shopify.source",
        "ShopifySource": "cdp_shopify.source",
        "ShopifyStream": "cdp_shopify.source",
        "ShopifyWebhook": "cdp_shopify.webhooks",
        "consent_records": "cdp_shopify.webhooks",
        "customer_records": "cdp_shopify.webhooks",
        "order_records": "cdp_shopify.webhooks",
    },
)

TYPE_NAME = "shopify"
"""The type name in connectors.toml: ``[connectors.X] type = "shopify"``."""

__all__ = [
    "CONSENT_STATUS",
    "TYPE_NAME",
    "Consents",
    "Customers",
    "Orders",
    "ShopifyConfig",
    "ShopifySource",
    "ShopifyStream",
    "ShopifyWebhook",
    "cdp_register_sources",
    "cdp_register_webhooks",
    "consent_records",
    "customer_consents",
    "customer_profile",
    "customer_records",
    "order_record",
    "order_records",
]


@hookimpl
def cdp_register_sources(register: Register) -> None:
    from cdp_shopify.source import ShopifySource

    register(TYPE_NAME, ShopifySource)


@hookimpl
def cdp_register_webhooks(register: Register) -> None:
    from cdp_shopify.webhooks import ShopifyWebhook

    register(TYPE_NAME, ShopifyWebhook)
