"""The options of ``[connectors.X] type = "shopify"``."""

from __future__ import annotations

import re
from typing import Annotated

from cdp_core import PluginConfig
from cdp_core.http import check_base_url
from cdp_core.traits import TraitMap, TraitsByStream, trait_streams
from pydantic import Field, SecretStr, field_validator

_SHOP = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")
_VERSION = re.compile(r"\d{4}-(01|04|07|10)|unstable")

CUSTOMER_TRAITS = TraitMap.of(
    {
        "first_name": "first_name",
        "last_name": "last_name",
        "tags": {"field": "tags", "type": "list"},
        "orders_count": {"field": "orders_count", "type": "number"},
        "total_spent": {"field": "total_spent", "type": "number"},
        "currency": "currency",
        "city": "city",
        "province": "province",
        "country": "country",
        "country_code": "country_code",
        "zip": "zip",
        "verified_email": {"field": "verified_email", "type": "boolean"},
        "customer_since": {"field": "created_at", "type": "timestamp"},
    }
)
"""The traits a customer gives by default: names, tags, what they bought, where they live.
Not the customer id, the account state, the address list or the modification date:
they stay in the stored record."""


class ShopifyConfig(PluginConfig):
    """Unknown keys are errors (``PluginConfig``)."""

    shop: str = Field(
        description='The shop\'s permanent domain, "my-shop.myshopify.com" (or just "my-shop").',
    )
    base_url: str | None = Field(
        None,
        description="The Admin API's base URL (a proxy, a test server; http:// only for loopback); default https://SHOP.",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

    access_token: SecretStr = Field(
        description='The Admin API access token of a custom app, as "${SHOPIFY_TOKEN}" in connectors.toml.',
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="The secret Shopify signs webhooks with (X-Shopify-Hmac-SHA256): the app's client secret, or the "
        'key shown under Settings > Notifications > Webhooks, as "${SHOPIFY_WEBHOOK_SECRET}"; unset: no webhook.',
    )
    api_version: str = Field("2024-10", description='The Admin API version, "YYYY-MM" (a quarterly release).')
    page_size: int = Field(250, ge=1, le=250, description="Records per request (Shopify's maximum is 250).")
    calls_per_second: int = Field(
        2, ge=1, le=100, description="The REST bucket's leak rate: 2 (standard), 4 (Advanced), 20 (Plus)."
    )
    bucket_size: int = Field(40, ge=1, le=4000, description="The REST bucket's size: 40 on standard plans.")
    lookback_seconds: int = Field(
        60,
        ge=0,
        le=86400,
        description="How far before the newest updated_at read the next run starts (records seen there are skipped).",
    )
    traits: Annotated[TraitsByStream, trait_streams("customers")] = Field(
        default_factory=dict,
        description="stream -> the trait mapping replacing its default (customers: CUSTOMER_TRAITS).",
    )

    @field_validator("shop")
    @classmethod
    def _shop(cls, value: str) -> str:
        shop = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        if "." not in shop:
            shop += ".myshopify.com"
        if not _SHOP.fullmatch(shop):
            raise ValueError(
                f"{value!r} is not a shop's myshopify.com domain (e.g. my-shop.myshopify.com); "
                "the Admin API is not served on a custom domain"
            )
        return shop

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not a Shopify API version such as 2024-10 (YYYY-01/04/07/10)")
        return value.strip()

    @property
    def api_base(self) -> str:
        """``base_url`` when set, else ``https://SHOP``."""
        return self.base_url or f"https://{self.shop}"
