"""Opening the store for the product's read commands (``cdp profiles``, ``cdp nps``)."""

from __future__ import annotations

from cdp_core.cli import common
from cdp_core.config import Config
from cdp_core.plugins import Plugins
from sqlalchemy import Engine

from cdp_profiles.store.schema import PROFILES


def open_for_reading(config: Config, loaded: Plugins) -> Engine:
    """The store of ``config``, never created here.

    A missing store, a corrupt file, a folder, a lock held too long, an unreachable server
    or a store of a newer release is a one-line error and exit 1 (``common.open_store``).
    """
    from cdp_profiles.store import audience_models, privacy_models, profile_models, segment_models  # noqa: F401

    histories = [*loaded.migrations, *([] if PROFILES in loaded.migrations else [PROFILES])]
    return common.open_store(config, loaded, create=False, histories=histories).engine
