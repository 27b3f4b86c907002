"""Compiled rules: every computed trait and segment of the config, checked and ready for SQL or memory."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from cdp_core.config import Config
from cdp_core.transforms.expressions import ExpressionError

from cdp_profiles.analytics.config import AnalyticsConfig, trait_kinds
from cdp_profiles.consent import ConsentConfig
from cdp_profiles.segments.language import Kind, Names, Node, kinds_of, parse_rule, references

Where = tuple[str | int, ...]


class RulesError(ValueError):
    """Rules that do not compile: each problem with its config key path."""

    def __init__(self, problems: list[tuple[Where, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, where))}: {message}" if where else message
                                   for where, message in problems))  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One computed trait or segment: its name, its rule as written, and the rule resolved."""

    name: str
    source: str
    node: Node
    description: str = ""


@dataclass
class Rules:
    """Every computed trait and segment, compiled; ``consent`` gives the purposes' policies."""

    computed: dict[str, Rule] = field(default_factory=dict)
    segments: dict[str, Rule] = field(default_factory=dict)
    consent: ConsentConfig = field(default_factory=ConsentConfig)
    traits: Collection[str] | None = None
    stored: Mapping[str, Kind] = field(default_factory=dict)
    """The traits the analytics store (``[analytics.rfm]``, ``[analytics.clv]``): name -> kind."""
    analytics: AnalyticsConfig | None = None

    @cached_property
    def names(self) -> Names:
        purposes = {name: p.policy for name, p in self.consent.all_purposes().items()}
        return Names(set(self.computed), set(self.segments), purposes, self.traits, self.stored)

    def compile(self, expression: str) -> Node:
        """An ad-hoc rule (``cdp profiles list --where``) against these names; raises :class:`RulesError`."""
        try:
            return parse_rule(expression, self.names)
        except ExpressionError as exc:
            raise RulesError([((), str(exc))]) from None

    def kinds(self, name: str) -> frozenset[Kind]:
        """The kinds of value computed trait ``name`` can have."""
        return kinds_of(self.computed[name].node, self.kinds)

    def rule(self, name: str) -> Rule:
        """The segment ``name``; raises :class:`RulesError` naming the configured ones."""
        try:
            return self.segments[name]
        except KeyError:
            known = ", ".join(sorted(self.segments)) or "none is configured"
            raise RulesError([((), f"unknown segment {name!r}; segments: {known}")]) from None


def compile_rules(
    computed: Mapping[str, str] | None = None,
    segments: Mapping[str, str] | None = None,
    consent: ConsentConfig | None = None,
    *,
    descriptions: Mapping[tuple[str, str], str] | None = None,
    traits: Collection[str] | None = None,
    analytics: AnalyticsConfig | None = None,
) -> Rules:
    """Compile computed traits (name -> expression) and segments (name -> rule); raises :class:`RulesError`.

    Every problem is collected, keyed like connectors.toml (``segments.NAME.where``).
    ``traits``, when given, is the vocabulary of profile traits: other bare names are errors.
    ``analytics`` (``[analytics]``) adds the names of the traits it stores (``rfm_group``...).
    """
    computed, segments, descriptions = computed or {}, segments or {}, descriptions or {}
    stored = dict(trait_kinds(analytics))
    rules = Rules(consent=consent or ConsentConfig(), traits=traits, stored=stored, analytics=analytics)
    purposes = {n: p.policy for n, p in rules.consent.all_purposes().items()}
    names = Names(set(computed), set(segments), purposes, traits, stored)
    problems: list[tuple[Where, str]] = [
        (("computed_traits", name), f"{name!r} is a trait [analytics] writes: name this computed trait otherwise")
        for name in sorted(set(computed) & set(stored))
    ]
    for section, key, table, target in (
        ("computed_traits", "expression", computed, rules.computed),
        ("segments", "where", segments, rules.segments),
    ):
        for name, source in table.items():
            try:
                node = parse_rule(source, names)
            except ExpressionError as exc:
                problems.append(((section, name, key), str(exc)))
                continue
            target[name] = Rule(name, source, node, descriptions.get((section, name), ""))
    problems += _cycles(rules)
    if problems:
        raise RulesError(problems)
    return rules


def _cycles(rules: Rules) -> list[tuple[Where, str]]:
    """A computed trait or segment that reaches itself through the others (inlining would never end)."""
    edges: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for section, table in (("computed_traits", rules.computed), ("segments", rules.segments)):
        for name, rule in table.items():
            computed, segments = references(rule.node)
            edges[(section, name)] = [("computed_traits", c) for c in sorted(computed)] + [
                ("segments", s) for s in sorted(segments)
            ]
    problems: list[tuple[Where, str]] = []
    reported: set[tuple[str, str]] = set()
    state: dict[tuple[str, str], int] = {}  # 1: on the path, 2: done

    def visit(node: tuple[str, str], path: list[tuple[str, str]]) -> None:
        state[node] = 1
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                if nxt not in reported:
                    reported.update(cycle)
                    key = "expression" if nxt[0] == "computed_traits" else "where"
                    shown = " -> ".join(f"{s}.{n}" for s, n in cycle)
                    problems.append(((nxt[0], nxt[1], key), f"a cycle: {shown} (a rule cannot depend on itself)"))
            elif state.get(nxt) is None and nxt in edges:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in edges:
        if state.get(node) is None:
            visit(node, [node])
    return problems


def rules_from(config: Config) -> Rules:
    """The rules of a loaded config (its ``[computed_traits]``, ``[segments]`` and ``[consent]`` sections)."""
    from cdp_profiles.segments.config import ComputedTraitsConfig, SegmentsConfig

    consent = config.sections.get("consent")
    analytics = config.sections.get("analytics")
    computed = config.sections.get("computed_traits")
    segments = config.sections.get("segments")
    traits_table = computed.traits if isinstance(computed, ComputedTraitsConfig) else {}
    segments_table = segments.segments if isinstance(segments, SegmentsConfig) else {}
    descriptions = {("computed_traits", n): t.description for n, t in traits_table.items()}
    descriptions.update({("segments", n): s.description for n, s in segments_table.items()})
    return compile_rules(
        {n: t.expression for n, t in traits_table.items()},
        {n: s.where for n, s in segments_table.items()},
        consent if isinstance(consent, ConsentConfig) else ConsentConfig(),
        descriptions=descriptions,
        analytics=analytics if isinstance(analytics, AnalyticsConfig) else None,
    )
