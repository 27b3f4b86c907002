"""``[privacy]`` in connectors.toml: the privacy key (docs/privacy.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdp_core.base import PluginConfig
from pydantic import Field, SecretStr


class PrivacyConfig(PluginConfig):
    """``[privacy]``: ``key = "${CDP_PRIVACY_KEY}"`` keys the hashes of the suppression list and the
    audit log and seals what a pending forget request must still send to a vendor."""

    key: SecretStr | None = Field(
        default=None,
        description="the privacy key, from the environment: at least 32 characters; without it nothing can be "
        "forgotten or suppressed, and a store whose suppression list is not empty refuses to sync",
    )


def privacy_of(sections: Mapping[str, Any]) -> PrivacyConfig:
    """``[privacy]`` from a config's or a connector context's ``sections`` (its defaults where absent)."""
    section = sections.get("privacy")
    return section if isinstance(section, PrivacyConfig) else PrivacyConfig()
