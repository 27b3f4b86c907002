"""cdp-google-ads: a Google Ads Customer Match user list as a cdp destination, kept as a mirror of the people fed to it.

``[connectors.X] type = "google_ads"``. Identifiers are normalized and SHA-256
hashed as Google documents (:mod:`cdp_google_ads.normalize`); uploads go through an
OfflineUserDataJob; the mirror state lives in the store (:mod:`cdp_profiles.audiences`).
See README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp_core import Register, hookimpl
from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_google_ads.destination import GoogleAdsConfig, GoogleAdsDestination

# Imported on first use, not with the package: cdp imports every plugin's package to list its
# commands, and `cdp --help` should not pay for the HTTP client (docs/writing-plugins.md).
__getattr__ = lazy_exports(
    __name__,
    {
        "GoogleAdsConfig": "cdp_google_ads.destination",
        "GoogleAdsDestination": "cdp_google_ads.destination",
    },
)

TYPE_NAME = "google_ads"
"""The type name in connectors.toml: ``[connectors.X] type = "google_ads"``."""

__all__ = ["TYPE_NAME", "GoogleAdsConfig", "GoogleAdsDestination"]


@hookimpl
def cdp_register_destinations(register: Register) -> None:
    from cdp_google_ads.destination import GoogleAdsDestination

    register(TYPE_NAME, GoogleAdsDestination)
