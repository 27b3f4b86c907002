"""Identity resolution: deterministic, rule-driven, explainable (README.md, "Identity resolution").

The resolver is pure: it takes the identifier sets of one connected component of
the identity graph and replays them in canonical order (earliest record first,
ties by stream and key). For each set:

- no owned identifier matches: a new profile;
- one profile matches: the set joins it;
- several match: they merge into the oldest, unless the union breaks a per-type
  limit; then the lowest-priority identifier is dropped from the match and
  matching is tried again.

Because the replay order is a function of the data, the result is the same for
any batch size and any arrival order. Blocked values never link anyone: they
are removed before a set is formed.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from cdp_core.base import ConnectorContext, PluginConfig, Stream
from cdp_core.config import Config, Connector
from cdp_core.keypaths import did_you_mean
from pydantic import Field, field_validator

Identifier = tuple[str, str]
"""(type, normalized value)"""

DEFAULT_PRIORITY = [
    "hubspot_contact_id",
    "shopify_customer_id",
    "mailchimp_member_id",
    "meta_lead_id",
    "email",
    "phone",
]
DEFAULT_BLOCKED = [
    "email:test@test.com",
    "email:test@example.com",
    "email:noreply@*",
    "email:no-reply@*",
    "email:donotreply@*",
    r"phone:re:^\+\d*?(\d)\1{6,}$",  # placeholder numbers: +49 171 0000000, +49 30 9999999
]


class TraitStrategy(StrEnum):
    most_recent = "most_recent"
    """The latest record's non-empty value (default)."""
    oldest = "oldest"
    """The earliest record's value, even when empty: the first-known value stands."""
    first_non_empty = "first_non_empty"
    """The earliest non-empty value."""
    source_priority = "source_priority"
    """The value from the highest-priority source that has one; ties by most recent."""
    accumulate = "accumulate"
    """Lists: the union of every value, sorted; numbers: the exact sum across records."""


class TraitRules(PluginConfig):
    default: TraitStrategy = TraitStrategy.most_recent
    strategies: dict[str, TraitStrategy] = Field(default_factory=dict, description="trait name -> strategy")
    source_priority: list[str] = Field(
        default_factory=list, description="streams (CONNECTOR.STREAM), most trusted first"
    )


class IdentityConfig(PluginConfig):
    """``[identity]`` in connectors.toml."""

    priority: list[str] = Field(default_factory=lambda: list(DEFAULT_PRIORITY))
    limits: dict[str, int] = Field(
        default_factory=lambda: {"shopify_customer_id": 1, "hubspot_contact_id": 1, "email": 5, "phone": 5}
    )
    blocked: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED),
        description="TYPE:GLOB, GLOB (any type) or TYPE:re:REGEX; matching values never link anyone",
    )
    default_region: str = Field(default="DE", min_length=2, max_length=2, description="for phones without +")
    traits: TraitRules = Field(default_factory=TraitRules)

    @field_validator("limits")
    @classmethod
    def _positive(cls, limits: dict[str, int]) -> dict[str, int]:
        bad = [t for t, n in limits.items() if n < 1]
        if bad:
            raise ValueError(f"limits must be at least 1: {', '.join(bad)}")
        return limits

    @field_validator("blocked")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            _compile(pattern)
        return patterns

    @cached_property
    def rules(self) -> IdentityRules:
        return IdentityRules(self)


def identity_section(config: Config) -> IdentityConfig:
    """The ``[identity]`` section of a loaded connectors.toml (its defaults when absent)."""
    section = config.sections.get("identity")
    return section if isinstance(section, IdentityConfig) else IdentityConfig()


BUILTIN_TYPES = ("email", "phone")
"""Identifier types every config knows: the store normalizes them, and any stream may carry them."""

Report = Callable[[tuple[str | int, ...], str], None]


def check_identity(config: Config, report: Report) -> None:
    """``[identity]`` against the rest of the config (the ``cdp_validate_config`` hook).

    Only what the file sets is checked (the defaults name the vendors' types, configured or not):

    - every identifier type in ``priority``, ``limits`` and ``blocked`` (``TYPE:...``) is one
      some configured stream declares (``Stream.identifier_types``: a file source's
      ``identifiers``, a vendor's own ids), one an ``identify`` node's ``identifiers`` names,
      or ``email``/``phone``;
    - every ``traits.source_priority`` entry is ``CONNECTOR.STREAM`` of a configured source.

    Names that belong to a connector with problems of its own are left alone.
    """
    section = config.sections.get("identity")
    if not isinstance(section, IdentityConfig):
        return
    types = known_identifier_types(config)
    if types is not None:
        listed = sorted(types)

        def check_type(where: tuple[str | int, ...], type_name: str) -> None:
            if type_name not in types:
                report(
                    where,
                    f"unknown identifier type {type_name!r}{did_you_mean(type_name, listed)}; "
                    f"the configured streams carry: {', '.join(listed)}",
                )

        if "priority" in section.model_fields_set:
            for index, type_name in enumerate(section.priority):
                check_type(("identity", "priority", index), type_name)
        if "limits" in section.model_fields_set:
            for type_name in section.limits:
                check_type(("identity", "limits", type_name), type_name)
        if "blocked" in section.model_fields_set:
            for index, pattern in enumerate(section.blocked):
                blocked_type, _ = _compile(pattern)
                if blocked_type is not None:
                    check_type(("identity", "blocked", index), blocked_type)
    if "source_priority" in section.traits.model_fields_set:
        for index, name in enumerate(section.traits.source_priority):
            problem = _stream_problem(config, name)
            if problem:
                report(("identity", "traits", "source_priority", index), problem)


def known_identifier_types(config: Config) -> set[str] | None:
    """The identifier types the configured streams and ``identify`` nodes declare, plus email and phone.

    None when that cannot be known: a connector is left out for its own problems.
    """
    if config.broken_connectors or config.unavailable:
        return None
    types = set(BUILTIN_TYPES)
    for connector in config.connectors.values():
        streams = _streams(connector)
        if streams is None:
            return None
        for stream in streams:
            types.update(stream.identifier_types)
    for graph in config.root.syncs.values():
        nodes = graph.get("nodes") if isinstance(graph, dict) else None
        for node in (nodes or {}).values() if isinstance(nodes, dict) else ():
            options = node.get("options") if isinstance(node, dict) else None
            identifiers = options.get("identifiers") if isinstance(options, dict) else None
            if node.get("transform") is not None and isinstance(identifiers, dict):
                types.update(str(t) for t in identifiers)
    return types


def _streams(connector: Connector) -> list[Stream] | None:
    registration = connector.roles.get("source")
    if registration is None:
        return []
    try:
        return list(registration.cls(connector.config, ConnectorContext(name=connector.name)).streams())
    except Exception:  # noqa: BLE001 - a source that cannot list its streams is reported by the graph check
        return None


def _stream_problem(config: Config, name: str) -> str | None:
    connector_name, dot, stream_name = name.partition(".")
    if not dot or not stream_name:
        return f"expected CONNECTOR.STREAM, got {name!r}"
    if connector_name in config.broken_connectors or connector_name in config.unavailable:
        return None
    sources = sorted(n for n, c in config.connectors.items() if "source" in c.roles)
    connector = config.connectors.get(connector_name)
    if connector is None or "source" not in connector.roles:
        what = "not a source" if connector is not None else "unknown connector"
        return f"{what} {connector_name!r}{did_you_mean(connector_name, sources)}; sources: {', '.join(sources) or 'none'}"
    streams = _streams(connector)
    if streams is None:
        return None
    names = [s.name for s in streams]
    if stream_name not in names:
        return (
            f"connector {connector_name!r} has no stream {stream_name!r}{did_you_mean(stream_name, names)}; "
            f"streams: {', '.join(names) or 'none'}"
        )
    return None


def _compile(pattern: str) -> tuple[str | None, re.Pattern[str]]:
    type_name: str | None = None
    body = pattern
    head, sep, rest = pattern.partition(":")
    if sep and re.fullmatch(r"[a-z][a-z0-9_]*", head) and head != "re":
        type_name, body = head, rest
    if body.startswith("re:"):
        try:
            return type_name, re.compile(body[3:])
        except re.error as exc:
            raise ValueError(f"blocked pattern {pattern!r}: bad regular expression: {exc}") from None
    # Globs ignore case (EMAIL:NoReply@* blocks noreply@...); a re: pattern says what it means itself.
    return type_name, re.compile(fnmatch.translate(body), re.IGNORECASE)


class IdentityRules:
    """The compiled form of :class:`IdentityConfig`, used by the resolver."""

    def __init__(self, config: IdentityConfig) -> None:
        self.config = config
        self._rank = {t: i for i, t in enumerate(config.priority)}
        compiled = [_compile(p) for p in config.blocked]
        self._any_type = [pattern for t, pattern in compiled if t is None]
        self._by_type: dict[str, list[re.Pattern[str]]] = {}
        for t, pattern in compiled:
            if t is not None:
                self._by_type.setdefault(t, []).append(pattern)
        self._limits = dict(config.limits)
        # One alternation per type (its own patterns and the any-type ones): a single match call
        # per identifier, which is called for every identifier of every record.
        self._matchers: dict[str, list[re.Pattern[str]]] = {}

    def rank(self, type_name: str) -> tuple[int, str]:
        """Lower is more trusted; unlisted types come after listed ones, alphabetically."""
        return (self._rank.get(type_name, len(self._rank)), type_name)

    def limit(self, type_name: str) -> int | None:
        return self._limits.get(type_name)

    def is_blocked(self, type_name: str, value: str) -> bool:
        try:
            matchers = self._matchers[type_name]
        except KeyError:
            matchers = self._matchers[type_name] = _alternation([*self._by_type.get(type_name, ()), *self._any_type])
        for matcher in matchers:  # a loop, not any() over a generator: once per identifier value written
            if matcher.match(value):
                return True
        return False


def _alternation(patterns: list[re.Pattern[str]]) -> list[re.Pattern[str]]:
    """The patterns as one regular expression where that means the same (no groups to renumber)."""
    if len(patterns) < 2 or any(p.groups for p in patterns):
        return patterns
    parts = [f"(?i:{p.pattern})" if p.flags & re.IGNORECASE else f"(?:{p.pattern})" for p in patterns]
    return [re.compile("|".join(parts))]


@dataclass(frozen=True)
class SetNode:
    """A distinct identifier set, as stored in ``id_sets``."""

    id: str
    identifiers: tuple[Identifier, ...]
    sort_key: str


@dataclass
class Merge:
    """Two groups became one while replaying ``set_id``, linked through ``via``."""

    winner: int
    loser: int
    via: Identifier
    set_id: str


@dataclass
class Group:
    """One resolved person within a component."""

    index: int
    founder: str
    sort_key: str
    sets: list[str] = field(default_factory=list)
    owned: dict[Identifier, str] = field(default_factory=dict)
    """identifier -> the set that brought it"""


@dataclass
class Resolution:
    groups: list[Group]
    merges: list[Merge]
    unlinked: list[tuple[str, Identifier, str]]
    """(set, identifier, why) for identifiers a set carried but no profile could own."""

    def group_of(self) -> dict[str, int]:
        return {s: g.index for g in self.groups for s in g.sets}


def resolve(sets: Iterable[SetNode], rules: IdentityRules) -> Resolution:
    """Replay ``sets`` in canonical order and return the people they form."""
    groups: list[Group] = []
    alive: dict[int, Group] = {}
    owner: dict[Identifier, int] = {}
    merges: list[Merge] = []
    unlinked: list[tuple[str, Identifier, str]] = []

    for node in sorted(sets, key=lambda s: (s.sort_key, s.id)):
        candidates = sorted(node.identifiers, key=lambda i: rules.rank(i[0]))
        target: Group | None = None
        while candidates:
            matched = sorted({owner[i] for i in candidates if i in owner}, key=lambda g: (alive[g].sort_key, g))
            if not matched:
                break
            if (len(matched) == 1 and all(i in owner for i in node.identifiers)) or _fits(
                rules, [alive[g] for g in matched], node.identifiers, owner
            ):  # a set whose identifiers one profile already owns always fits
                target = alive[matched[0]]
                for loser_index in matched[1:]:
                    loser = alive.pop(loser_index)
                    via = next(i for i in candidates if owner.get(i) == loser_index)
                    merges.append(Merge(target.index, loser.index, via, node.id))
                    target.sets.extend(loser.sets)
                    target.owned.update(loser.owned)
                    for identifier in loser.owned:
                        owner[identifier] = target.index
                break
            candidates.pop()  # drop the lowest-priority identifier from the match
        if target is None:
            target = Group(index=len(groups), founder=node.id, sort_key=node.sort_key)
            groups.append(target)
            alive[target.index] = target
        target.sets.append(node.id)
        counts = Counter(t for t, _ in target.owned)
        for identifier in sorted(node.identifiers, key=lambda i: rules.rank(i[0])):
            holder = owner.get(identifier)
            if holder == target.index:
                continue
            if holder is not None:
                unlinked.append((node.id, identifier, "owned by another profile (a limit kept them apart)"))
                continue
            limit = rules.limit(identifier[0])
            if limit is not None and counts[identifier[0]] >= limit:
                unlinked.append((node.id, identifier, f"profile already has {limit} {identifier[0]} (limit)"))
                continue
            owner[identifier] = target.index
            target.owned[identifier] = node.id
            counts[identifier[0]] += 1
    result = sorted(alive.values(), key=lambda g: (g.sort_key, g.founder))
    return Resolution(groups=result, merges=merges, unlinked=unlinked)


def _fits(
    rules: IdentityRules, matched: Sequence[Group], incoming: Iterable[Identifier], owner: dict[Identifier, int]
) -> bool:
    """Would joining these groups (plus the incoming set's free identifiers) respect every limit?"""
    combined: set[Identifier] = set()
    for group in matched:
        combined.update(group.owned)
    combined.update(i for i in incoming if i not in owner)
    counts = Counter(t for t, _ in combined)
    return all(rules.limit(t) is None or n <= rules.limit(t) for t, n in counts.items())  # type: ignore[operator]
