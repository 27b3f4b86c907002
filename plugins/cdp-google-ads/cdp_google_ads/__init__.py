"""cdp-google-ads: a Google Ads Customer Match user list as a cdp destination, kept as a mirror of the people fed to it.

``[connectors.X] type = "google_ads"``. Identifiers are normalized and SHA-256
hashed as Google documents (:mod:`cdp_google_ads.normalize`); uploads go through an
OfflineUserDataJob; the mirror state lives in the store (:mod:`cdp_profiles.audiences`).
See README.md.
"""

from __future__ import annotations

from cdp_core import Register, hookimpl

from cdp_google_ads.destination import GoogleAdsConfig, GoogleAdsDestination

TYPE_NAME = "google_ads"
"""The type name in connectors.toml: ``[connectors.X] type = "google_ads"``."""

__all__ = ["TYPE_NAME", "GoogleAdsConfig", "GoogleAdsDestination"]


@hookimpl
def cdp_register_destinations(register: Register) -> None:
    register(TYPE_NAME, GoogleAdsDestination)
