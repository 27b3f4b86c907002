"""``[analytics]`` in connectors.toml: currency, which orders count, RFM bins, the lifetime-value horizon (docs/analytics.md).

::

    [analytics]
    currency = "EUR"                  # convert with [analytics.rates]; unset: the orders' main currency
    exclude_statuses = ["cancelled", "canceled", "refunded", "voided"]

    [analytics.rates]                 # what one unit of each currency is worth in `currency`
    USD = 0.92

    [analytics.rfm]                   # RFM scores and groups as computed traits
    bins = 5

    [analytics.clv]                   # BG/NBD + Gamma-Gamma predictions as computed traits
    horizon_days = 90

The traits are written only when their table (``[analytics.rfm]``, ``[analytics.clv]``) is present.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from cdp_core.base import PluginConfig
from pydantic import Field, field_validator, model_validator

TraitKind = Literal["number", "text"]
CURRENCY = re.compile(r"[A-Z]{3}")
DEFAULT_EXCLUDED = ("cancelled", "canceled", "refunded", "voided")


def _currency(value: str) -> str:
    if not CURRENCY.fullmatch(value):
        raise ValueError(f"a currency is a three-letter ISO 4217 code in capitals, like 'EUR'; got {value!r}")
    return value


class RfmConfig(PluginConfig):
    """``[analytics.rfm]``: recency, frequency and monetary scores 1..bins, and the named groups."""

    bins: int = Field(default=5, ge=2, le=10, description="scores run from 1 to bins (5: quintiles)")


class ClvConfig(PluginConfig):
    """``[analytics.clv]``: BG/NBD and Gamma-Gamma, fitted on every live profile's orders at each full refresh."""

    horizon_days: int = Field(default=90, ge=1, le=3650, description="expected purchases and value over this many days")
    annual_discount_rate: float = Field(default=0.0, ge=0.0, lt=1.0, description="discount on future value, per year")


class AnalyticsConfig(PluginConfig):
    """The ``[analytics]`` section."""

    currency: str | None = Field(default=None, description="report and score money in this currency")
    rates: dict[str, float] = Field(default_factory=dict, description="CURRENCY = value of one unit in `currency`")
    exclude_statuses: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDED),
        description="orders with one of these statuses (case-insensitive) are not purchases",
    )
    rfm: RfmConfig | None = None
    clv: ClvConfig | None = None

    _code = field_validator("currency")(classmethod(lambda cls, v: None if v is None else _currency(v)))

    @field_validator("rates")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        for code, rate in value.items():
            _currency(code)
            if not rate > 0:
                raise ValueError(f"rate of {code} must be a positive number, got {rate!r}")
        return value

    @field_validator("exclude_statuses")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return sorted({s.strip().lower() for s in value})

    @model_validator(mode="after")
    def _target(self) -> AnalyticsConfig:
        if self.rates and self.currency is None:
            raise ValueError("[analytics.rates] needs [analytics] currency = '...' (the currency they convert to)")
        return self


def analytics_of(sections: Mapping[str, Any]) -> AnalyticsConfig:
    """``[analytics]`` from a config's or a connector context's ``sections`` (its defaults where absent)."""
    section = sections.get("analytics")
    return section if isinstance(section, AnalyticsConfig) else AnalyticsConfig()


RFM_TRAITS: dict[str, TraitKind] = {
    "rfm_recency": "number", "rfm_frequency": "number", "rfm_monetary": "number", "rfm_score": "text",
    "rfm_group": "text",
}  # fmt: skip


def clv_traits(horizon_days: int) -> dict[str, TraitKind]:
    return {
        f"clv_expected_purchases_{horizon_days}d": "number",
        "clv_p_alive": "number",
        f"clv_value_{horizon_days}d": "number",
    }


def trait_kinds(config: AnalyticsConfig | None) -> dict[str, TraitKind]:
    """name -> kind of the traits the config makes (none without ``[analytics.rfm]`` / ``[analytics.clv]``)."""
    out: dict[str, TraitKind] = {}
    if config is None:
        return out
    if config.rfm is not None:
        out.update(RFM_TRAITS)
    if config.clv is not None:
        out.update(clv_traits(config.clv.horizon_days))
    return out
