"""cdp-meta-audiences: a Meta Custom Audience as a cdp destination, kept as a mirror of the people fed to it.

``[connectors.X] type = "meta_audiences"``. Identifiers are normalized and SHA-256
hashed as Meta documents (:mod:`cdp_meta_audiences.normalize`); the mirror state
lives in the store (:mod:`cdp_profiles.audiences`). See README.md.
"""

from __future__ import annotations

from cdp_core import Register, hookimpl

from cdp_meta_audiences.destination import MetaAudiencesConfig, MetaAudiencesDestination

TYPE_NAME = "meta_audiences"
"""The type name in connectors.toml: ``[connectors.X] type = "meta_audiences"``."""

__all__ = ["TYPE_NAME", "MetaAudiencesConfig", "MetaAudiencesDestination"]


@hookimpl
def cdp_register_destinations(register: Register) -> None:
    register(TYPE_NAME, MetaAudiencesDestination)
