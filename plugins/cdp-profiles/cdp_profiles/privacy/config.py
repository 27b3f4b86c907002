"""``[privacy]`` in connectors.toml: the privacy key, and how long data of each kind is kept (docs/privacy.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from cdp_core.base import PluginConfig
from cdp_core.graph import parse_every
from pydantic import Field, SecretStr, field_validator

RETENTION_KINDS = ("events", "orders", "nps_responses", "consents", "quarantine", "runs", "ingest_log")
"""What ``[privacy.retention]`` may bound, in the order a purge goes through them."""


def parse_retention(text: str) -> timedelta:
    """``"400d"``, ``"90d"``, ``"36h"`` -> timedelta; ValueError saying why, for less than a day too."""
    try:
        delta = parse_every(text)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (write days, e.g. 400d; h for hours)") from None
    if delta < timedelta(days=1):
        raise ValueError(f"a retention is at least a day: {text!r} (m is minutes, not months; write days, e.g. 400d)")
    return delta


class RetentionConfig(PluginConfig):
    """``[privacy.retention]``: per kind, how long its rows are kept (``"400d"``); unset: kept for ever."""

    events: str | None = Field(default=None, description="events, by the time they happened (else when stored)")
    orders: str | None = Field(default=None, description="orders, by the time they were placed (else when stored)")
    nps_responses: str | None = Field(default=None, description="NPS answers, by when answered (else when stored)")
    consents: str | None = Field(
        default=None,
        description="consent decisions by their time; the decision in force per person and purpose is always kept",
    )
    quarantine: str | None = Field(default=None, description="quarantined records, by when they were rejected")
    runs: str | None = Field(
        default=None, description="finished runs, by when they started; each graph's latest run and latest success stay"
    )
    ingest_log: str | None = Field(
        default=None,
        description="messages `cdp serve` logged, by when received; only those every node reading their source "
        "has committed its cursor past",
    )

    @field_validator(*RETENTION_KINDS)
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_retention(value)
        return value

    def periods(self) -> dict[str, timedelta]:
        """kind -> how long it is kept, for the kinds given a retention."""
        return {kind: parse_retention(v) for kind in RETENTION_KINDS if (v := getattr(self, kind)) is not None}


class PrivacyConfig(PluginConfig):
    """``[privacy]``: ``key = "${CDP_PRIVACY_KEY}"`` keys the hashes of the suppression list and the
    audit log and seals what a pending forget request must still send to a vendor;
    ``[privacy.retention]`` bounds how long data of each kind is kept."""

    key: SecretStr | None = Field(
        default=None,
        description="the privacy key, from the environment: at least 32 characters; without it nothing can be "
        "forgotten or suppressed, and a store whose suppression list is not empty refuses to sync",
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig)


def privacy_of(sections: Mapping[str, Any]) -> PrivacyConfig:
    """``[privacy]`` from a config's or a connector context's ``sections`` (its defaults where absent)."""
    section = sections.get("privacy")
    return section if isinstance(section, PrivacyConfig) else PrivacyConfig()
