"""The segment engine as membership and refresh use it: the compiled rules of a config, and their names.

The only module of this package that knows how rules are built from connectors.toml: the
destination and the source have the plugins' sections (``context.sections``), the commands
a loaded ``Config``; both come here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from cdp_core.config import Config
from pydantic import BaseModel

from cdp_profiles.analytics.config import analytics_of, trait_kinds
from cdp_profiles.segments import Rules, rules_from


class _Sections:
    """What :func:`rules_from` reads of a config: its sections (a connector's context has nothing else)."""

    def __init__(self, sections: Mapping[str, BaseModel]) -> None:
        self.sections = sections


def rules_of(config: Config | Mapping[str, BaseModel]) -> Rules:
    """The compiled rules of a loaded config, or of the plugins' sections of one."""
    if isinstance(config, Config):
        return rules_from(config)
    return rules_from(cast(Config, _Sections(config)))


def segment_names(rules: Rules) -> list[str]:
    """The configured segments, in the order a refresh goes through them (a segment after those it uses)."""
    order = getattr(rules, "segment_order", None)
    names = list(order() if callable(order) else order) if order is not None else sorted(rules.segments)
    return [n for n in names if n in rules.segments]


def computed_names(rules: Rules) -> list[str]:
    return sorted(rules.computed)


def descriptions(config: Config | Mapping[str, BaseModel], section: str) -> dict[str, str]:
    """name -> description of ``[segments.NAME]`` (``section="segments"``) or ``[computed_traits.NAME]``."""
    sections = config.sections if isinstance(config, Config) else config
    model: Any = sections.get(section)
    entries = getattr(model, section, None) if model is not None else None
    if entries is None and model is not None:
        entries = getattr(model, "root", None) or getattr(model, "traits", None)
    if not isinstance(entries, Mapping):
        return {}
    return {name: str(getattr(entry, "description", "") or "") for name, entry in entries.items()}


def configured(config: Config | Mapping[str, BaseModel]) -> bool:
    """Does the config define any segment, computed trait or analytics trait (else there is nothing to refresh)?"""
    sections = config.sections if isinstance(config, Config) else config
    return bool(descriptions(config, "segments") or descriptions(config, "computed_traits")
                or trait_kinds(analytics_of(sections)))  # fmt: skip
