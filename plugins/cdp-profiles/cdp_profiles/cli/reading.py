"""Loading and opening the store for the product's read commands (``cdp profiles``, ``cdp segments``, ``cdp nps``).

A read command loads ``[store]`` and the sections it reads, checked, and nothing else of
connectors.toml (no connector, graph, source or job: ``cdp validate`` checks the whole file).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import typer
from cdp_core.cli import common
from cdp_core.config import Config
from cdp_core.plugins import Plugins
from sqlalchemy import Engine

from cdp_profiles.store.schema import PROFILES

PROFILE_SECTIONS = ("identity", "consent")
"""What reading profiles needs: how identifiers are normalized, and the consent purposes."""
RULE_SECTIONS = (*PROFILE_SECTIONS, "computed_traits", "segments", "analytics")
"""What the segment language needs (``rules_from``): the rules, the purposes, the analytics traits."""


def load_for_reading(config: Path, sections: Collection[str] = PROFILE_SECTIONS) -> tuple[Config, Plugins]:
    """``[store]`` and ``sections`` of the file, checked (exit 2 on a problem in them)."""
    return common.load_for_reading(config, sections)


def rules_for_reading(cfg: Config) -> Any:
    """The compiled rules of a config loaded with ``RULE_SECTIONS``; a rule that does not compile is exit 2.

    ``cdp validate`` reports the same problems (the product's ``cdp_validate_config``), with every other one.
    """
    from cdp_core.config import ConfigError, ConfigIssue
    from cdp_core.keypaths import format_path
    from cdp_core.tomllines import Locator

    from cdp_profiles.membership.engine import rules_of
    from cdp_profiles.segments.rules import RulesError

    try:
        return rules_of(cfg)
    except RulesError as exc:
        locate = Locator(cfg.text)
        issues = [ConfigIssue(format_path(where), message, locate(where)) for where, message in exc.problems]
        common.print_config_error(ConfigError(str(cfg.path), issues), common.stderr)
        raise typer.Exit(common.EXIT_USAGE) from None


def open_for_reading(config: Config, loaded: Plugins) -> Engine:
    """The store of ``config``, never created here.

    A missing store, a corrupt file, a folder, a lock held too long, an unreachable server
    or a store of a newer release is a one-line error and exit 1 (``common.open_store``).
    """
    histories = [*loaded.migrations, *([] if PROFILES in loaded.migrations else [PROFILES])]
    return common.open_engine(config, loaded, create=False, histories=histories)
