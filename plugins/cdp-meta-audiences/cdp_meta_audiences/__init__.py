"""cdp-meta-audiences: a Meta Custom Audience as a cdp destination, kept as a mirror of the people fed to it.

``[connectors.X] type = "meta_audiences"``. Identifiers are normalized and SHA-256
hashed as Meta documents (:mod:`cdp_meta_audiences.normalize`); the mirror state
lives in the store (:mod:`cdp_profiles.audiences`). See README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp_core import Register, hookimpl
from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_meta_audiences.destination import MetaAudiencesConfig, MetaAudiencesDestination

# Imported on first use, not with the package: cdp imports every plugin's package to list its
# commands, and `cdp --help` should not pay for the HTTP client (docs/writing-plugins.md).
__getattr__ = lazy_exports(
    __name__,
    {
        "MetaAudiencesConfig": "cdp_meta_audiences.destination",
        "MetaAudiencesDestination": "cdp_meta_audiences.destination",
    },
)

TYPE_NAME = "meta_audiences"
"""The type name in connectors.toml: ``[connectors.X] type = "meta_audiences"``."""

__all__ = ["TYPE_NAME", "MetaAudiencesConfig", "MetaAudiencesDestination"]


@hookimpl
def cdp_register_destinations(register: Register) -> None:
    from cdp_meta_audiences.destination import MetaAudiencesDestination

    register(TYPE_NAME, MetaAudiencesDestination)
