"""``[computed_traits.NAME]`` and ``[segments.NAME]`` in connectors.toml, and their check against the whole file."""

from __future__ import annotations

from typing import Any

from cdp_core.base import PluginConfig
from cdp_core.config import Config

Report = Any  # Callable[[tuple[str | int, ...], str], None]


class ComputedTraitConfig(PluginConfig):
    """One computed trait: ``expression = "sum(orders.amount, days = 365)"``."""

    expression: str
    description: str = ""


class SegmentConfig(PluginConfig):
    """One segment: ``where = "count(orders, days = 90) >= 2"``."""

    where: str
    description: str = ""


class ComputedTraitsConfig(PluginConfig):
    """The ``[computed_traits]`` section: a table of named computed traits."""

    traits: dict[str, ComputedTraitConfig] = {}


class SegmentsConfig(PluginConfig):
    """The ``[segments]`` section: a table of named segments."""

    segments: dict[str, SegmentConfig] = {}


def check_rules(config: Config, report: Report) -> None:
    """The ``cdp_validate_config`` check: every rule compiles (names, functions, cycles, purposes)."""
    raise NotImplementedError
