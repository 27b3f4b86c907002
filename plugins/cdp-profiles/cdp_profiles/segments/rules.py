"""Compiled rules: every computed trait and segment of the config, checked and ready for SQL or memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cdp_core.config import Config

from cdp_profiles.consent import ConsentConfig


class RulesError(ValueError):
    """Rules that do not compile: each problem with its config key path."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, where))}: {message}" for where, message in problems))


@dataclass
class Rules:
    """Every computed trait and segment, compiled; ``consent`` gives the purposes' policies."""

    computed: dict[str, object] = field(default_factory=dict)
    segments: dict[str, object] = field(default_factory=dict)
    consent: ConsentConfig = field(default_factory=ConsentConfig)


def compile_rules(
    computed: Mapping[str, str] | None = None,
    segments: Mapping[str, str] | None = None,
    consent: ConsentConfig | None = None,
) -> Rules:
    """Compile computed traits (name -> expression) and segments (name -> rule); raises :class:`RulesError`."""
    raise NotImplementedError


def rules_from(config: Config) -> Rules:
    """The rules of a loaded config (its ``[computed_traits]``, ``[segments]`` and ``[consent]`` sections)."""
    raise NotImplementedError
