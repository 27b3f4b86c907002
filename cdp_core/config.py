"""connectors.toml: read with tomllib, interpolate ``${ENV}`` secrets, validate into models.

Every problem is collected (not just the first) as a :class:`ConfigIssue` naming
the file, the key path (``syncs.nightly.nodes.clean.inputs[0]``) and, where it
can be found, the line. A secret's value never appears in an issue.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url

from cdp_core.base import PluginConfig
from cdp_core.graph import SyncGraph, build_graphs, parse_every
from cdp_core.keypaths import PathPart, did_you_mean, format_path, unsafe_name, validation_messages
from cdp_core.plugins import RESERVED_SECTIONS, Plugins, Registration
from cdp_core.secrets import Redactor

DEFAULT_STORE_URL = "sqlite:///cdp.sqlite"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

@dataclass
class ConfigIssue:
    path: str
    message: str
    line: int | None = None
    parts: tuple[PathPart, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message, "line": self.line}

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class ConfigError(Exception):
    """connectors.toml cannot be used; ``issues`` lists every problem found."""

    def __init__(self, file: str, issues: list[ConfigIssue]) -> None:
        self.file = file
        self.issues = issues
        super().__init__("\n".join(issue.render(file) for issue in issues))


# -- the models of connectors.toml ---------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Strict):
    url: str = DEFAULT_STORE_URL


class NodeConfig(_Strict):
    """One node of a sync graph: exactly one of ``source``, ``transform``, ``destination``."""

    source: str | None = Field(default=None, description="CONNECTOR.STREAM")
    transform: str | None = Field(default=None, description="a registered transform type")
    destination: str | None = Field(default=None, description="a connector name")
    inputs: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_role(self) -> NodeConfig:
        roles = [r for r in ("source", "transform", "destination") if getattr(self, r) is not None]
        if len(roles) != 1:
            raise ValueError("a node sets exactly one of 'source', 'transform' or 'destination'")
        return self

    @property
    def role(self) -> str:
        return next(r for r in ("source", "transform", "destination") if getattr(self, r) is not None)

    @property
    def ref(self) -> str:
        return getattr(self, self.role)


class GraphConfig(_Strict):
    description: str | None = None
    enabled: bool = Field(
        default=True, description="false: left out of `cdp sync --all` and the scheduler; `cdp sync NAME` still runs it"
    )
    schedule: str | None = Field(default=None, description="a 5-field cron expression")
    every: str | None = Field(default=None, description="an interval such as 30s, 10m, 1h30m, 1d")
    timezone: str = "UTC"
    depends_on: list[str] = Field(default_factory=list)
    retries: int = Field(default=0, ge=0, description="how often the scheduler retries a failed run")
    retry_backoff: str | float = Field(
        default="30s", description="wait before the first retry (30s, 1m or seconds); doubled for each next one"
    )
    nodes: dict[str, NodeConfig] = Field(default_factory=dict)

    @field_validator("retry_backoff")
    @classmethod
    def _backoff(cls, value: str | float) -> str | float:
        if isinstance(value, str):
            parse_every(value)
        elif value < 0:
            raise ValueError("must be 0 or more seconds")
        return value

    @property
    def backoff_seconds(self) -> float:
        """The first retry's delay in seconds (the scheduler doubles it for each next attempt)."""
        value = self.retry_backoff
        return parse_every(value).total_seconds() if isinstance(value, str) else float(value)


class AlertsConfig(_Strict):
    """``[alerts]``: where the scheduler reports a run that failed for good (after its retries)."""

    webhook_url: str | None = Field(default=None, description="POST a JSON payload here; a secret: use ${ENV}")
    timeout: float = Field(default=10.0, gt=0, le=300, description="seconds to wait for the webhook")


class RootConfig(_Strict):
    """The kernel's own sections; plugins add theirs (``cdp_register_config_sections``)."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    connectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    syncs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Validated graph by graph (see load_config), so one bad graph hides no other's problems."""


@dataclass
class Connector:
    """A configured instance of a plugin: ``[connectors.NAME]``."""

    name: str
    type: str
    config: PluginConfig
    roles: dict[str, Registration]


@dataclass
class Config:
    """A validated connectors.toml."""

    path: Path
    root: RootConfig
    connectors: dict[str, Connector]
    redact: Redactor
    text: str = ""
    graphs: dict[str, SyncGraph] = field(default_factory=dict)
    sections: dict[str, PluginConfig] = field(default_factory=dict)
    """The plugins' sections (``[identity]``...), validated by their models; a registered absent one at its defaults."""
    unavailable: dict[str, list[str]] = field(default_factory=dict)
    """Connectors left out because a graph that was not asked for needs them (see load_config)."""

    def enabled_graphs(self) -> list[str]:
        return [name for name, graph in self.graphs.items() if graph.config.enabled]

    @property
    def store_url(self) -> str:
        """``[store] url``, a relative SQLite file resolved against the folder of connectors.toml."""
        return resolve_store_url(self.root.store.url, self.path.absolute().parent)


def resolve_store_url(url: str, base_dir: Path) -> str:
    """``url`` with a relative SQLite file made absolute under ``base_dir``.

    Resolved against the working directory instead, one config run from two folders
    would write two stores, and a config in another folder run from here would write
    here. ``sqlite:////abs/path``, in-memory SQLite and every other database are unchanged.
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).is_absolute():
        return url  # a SQLite URI filename (uri=true) or an absolute path: taken as written
    return parsed.set(database=str(base_dir / database)).render_as_string(hide_password=False)


# -- loading -------------------------------------------------------------------------


def load_config(
    path: str | os.PathLike[str],
    plugins: Plugins,
    env: dict[str, str] | None = None,
    *,
    graphs: Collection[str] | None = None,
) -> Config:
    """Read, interpolate and validate a connectors.toml; raise :class:`ConfigError` listing every issue.

    :param graphs: the graphs about to run (None: check everything, as ``cdp validate`` does).
        A connector none of them uses may lack its ``${ENV}`` variables: it is left out
        (``Config.unavailable`` says why) instead of failing the run, so a missing
        Shopify token never stops an unrelated graph. Every other problem still fails.
    """
    file = Path(path)
    env = dict(os.environ) if env is None else env
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(file), [ConfigIssue("", f"cannot read the file: {exc.strerror or exc}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise ConfigError(str(file), [ConfigIssue("", f"not valid TOML: {exc}", line)]) from None

    locate = _Locator(text)
    issues: list[ConfigIssue] = []
    redact = Redactor()
    secret_paths: set[tuple[PathPart, ...]] = set()
    raw = _interpolate(raw, (), env, redact, secret_paths, issues)
    missing_paths = {issue.parts for issue in issues}
    for issue in issues:
        issue.line = locate(issue.parts)
    unavailable: dict[str, list[str]] = {}
    if graphs is not None:
        used = _connectors_used(raw.get("syncs"), graphs)
        for issue in list(issues):
            parts = issue.parts
            if len(parts) >= 2 and parts[0] == "connectors" and parts[1] not in used:
                unavailable.setdefault(str(parts[1]), []).append(f"{issue.path}: {issue.message}")
                issues.remove(issue)

    def add_validation_errors(exc: ValidationError, prefix: tuple[PathPart, ...]) -> None:
        hide = lambda loc: _is_secret(loc, secret_paths)  # noqa: E731
        for loc, message in validation_messages(exc.errors(include_url=False), prefix, hide):
            if any(loc[: len(m)] == m or m[: len(loc)] == loc for m in missing_paths):
                continue  # the value is an unresolved ${VAR}, already reported as missing
            issues.append(ConfigIssue(format_path(loc), message, locate(loc)))

    root: RootConfig | None = None
    try:
        root = RootConfig.model_validate({k: v for k, v in raw.items() if k in RESERVED_SECTIONS})
    except ValidationError as exc:
        add_validation_errors(exc, ())
        # Keep checking what can be checked: connectors are validated from the raw tables.
    sections: dict[str, PluginConfig] = {}
    registered = plugins.sections
    for name, value in raw.items():
        if name in RESERVED_SECTIONS:
            continue
        model = registered.get(name)
        if model is None:
            issues.append(ConfigIssue(format_path((name,)), _unknown_section(plugins, name), locate((name,))))
            continue
        try:
            sections[name] = model.model_validate(value)
        except ValidationError as exc:
            add_validation_errors(exc, (name,))
    for name, model in registered.items():
        if name not in sections and name not in raw:
            sections[name] = model()
    connectors: dict[str, Connector] = {}
    raw_connectors = raw.get("connectors", {}) if isinstance(raw.get("connectors", {}), dict) else {}
    for name, table in raw_connectors.items():
        if not isinstance(table, dict) or name in unavailable:
            continue
        prefix: tuple[PathPart, ...] = ("connectors", name)
        bad_name = unsafe_name("connector", name)
        if bad_name:
            # Left out like an invalid table: graphs using it stay quiet about it.
            issues.append(ConfigIssue(format_path(prefix), bad_name, locate(prefix)))
            continue
        type_name = table.get("type")
        if not isinstance(type_name, str):
            issues.append(ConfigIssue(format_path(prefix + ("type",)), "missing 'type' (the plugin type)", locate(prefix)))
            continue
        regs = [r for r in plugins.registry.roles_of(type_name) if r.role != "transform"]
        if not regs:
            issues.append(
                ConfigIssue(format_path(prefix + ("type",)), _unknown_type(plugins, type_name), locate(prefix + ("type",)))
            )
            continue
        model = regs[0].cls.config_model
        options = {k: v for k, v in table.items() if k != "type"}
        try:
            config = model.model_validate(options)
        except ValidationError as exc:
            add_validation_errors(exc, prefix)
            continue
        connectors[name] = Connector(name, type_name, config, {r.role: r for r in regs})

    config = Config(
        path=file,
        root=root or RootConfig(),
        connectors=connectors,
        redact=redact,
        text=text,
        sections=sections,
        unavailable=unavailable,
    )
    if root is not None and root.alerts.webhook_url:
        redact.add(root.alerts.webhook_url)  # a webhook URL often carries its token: never print it, ${ENV} or not
    if root is not None:
        graph_configs: dict[str, GraphConfig] = {}
        invalid_nodes: dict[str, set[str]] = {}
        for name, table in root.syncs.items():
            bad_name = unsafe_name("graph", name)
            if bad_name:
                issues.append(ConfigIssue(format_path(("syncs", name)), bad_name, locate(("syncs", name))))
                continue
            # Nodes one by one: a bad node must not hide the problems of its neighbours.
            raw_nodes = table.get("nodes", {})
            try:
                graph_config = GraphConfig.model_validate({k: v for k, v in table.items() if k != "nodes"})
            except ValidationError as exc:
                add_validation_errors(exc, ("syncs", name))
                continue
            if not isinstance(raw_nodes, dict):
                issues.append(ConfigIssue(f"syncs.{name}.nodes", "must be a table of nodes", locate(("syncs", name, "nodes"))))
                continue
            for node_name, node_table in raw_nodes.items():
                bad_name = unsafe_name("node", node_name)
                if bad_name:
                    where: tuple[PathPart, ...] = ("syncs", name, "nodes", node_name)
                    issues.append(ConfigIssue(format_path(where), bad_name, locate(where)))
                    invalid_nodes.setdefault(name, set()).add(node_name)
                    continue
                try:
                    graph_config.nodes[node_name] = NodeConfig.model_validate(node_table)
                except ValidationError as exc:
                    add_validation_errors(exc, ("syncs", name, "nodes", node_name))
                    invalid_nodes.setdefault(name, set()).add(node_name)
            graph_configs[name] = graph_config
        graphs, graph_issues = build_graphs(
            graph_configs, set(root.syncs), invalid_nodes, raw_connectors, connectors, plugins, set(unavailable)
        )
        for graph_issue in graph_issues:
            if graph_issue.line is None:
                graph_issue.line = locate(graph_issue.parts)
            issues.append(ConfigIssue(graph_issue.path, graph_issue.message, graph_issue.line))
        config.graphs = graphs
    if issues:
        issues.sort(key=lambda i: i.line or 0)
        for issue in issues:  # last line of defence: no resolved secret leaves in a message
            issue.message = redact(issue.message)
        raise ConfigError(str(file), issues)
    return config


def _connectors_used(syncs: Any, graphs: Collection[str]) -> set[str]:
    """Connector names the nodes of ``graphs`` refer to; ``"*enabled"`` in graphs means every enabled graph."""
    used: set[str] = set()
    if not isinstance(syncs, dict):
        return used
    for name, table in syncs.items():
        if not isinstance(table, dict):
            continue
        wanted = name in graphs or ("*enabled" in graphs and table.get("enabled", True) is not False)
        nodes = table.get("nodes")
        if not wanted or not isinstance(nodes, dict):
            continue
        for node in nodes.values():
            if isinstance(node, dict):
                if isinstance(node.get("source"), str):
                    used.add(node["source"].split(".", 1)[0])
                if isinstance(node.get("destination"), str):
                    used.add(node["destination"])
    return used


def _unknown_section(plugins: Plugins, name: str) -> str:
    known = sorted(RESERVED_SECTIONS | set(plugins.sections))
    message = f"unknown section [{name}]{did_you_mean(name, known)}; sections: {', '.join(known)}"
    return message + _plugins_not_loaded(plugins)


def _plugins_not_loaded(plugins: Plugins) -> str:
    """Which plugins could have provided something that is missing: broken or disabled ones."""
    message = ""
    if plugins.broken:
        message += f" (broken plugins, see `cdp plugins`: {', '.join(p.name for p in plugins.broken)})"
    disabled = [p.name for p in plugins.info.values() if p.status == "disabled"]
    if disabled:
        message += f" (disabled by CDP_DISABLE_PLUGINS: {', '.join(disabled)})"
    return message


def _unknown_type(plugins: Plugins, type_name: str) -> str:
    for role in ("source", "destination"):
        conflict = plugins.registry.conflict_message(role, type_name)
        if conflict:
            return conflict
    known = sorted(set(plugins.registry.names("source")) | set(plugins.registry.names("destination")))
    message = f"unknown plugin type {type_name!r}{did_you_mean(type_name, known)}; known types: {', '.join(known) or 'none'}"
    return message + _plugins_not_loaded(plugins)


def _interpolate(
    value: Any,
    path: tuple[PathPart, ...],
    env: dict[str, str],
    redact: Redactor,
    secret_paths: set[tuple[PathPart, ...]],
    issues: list[ConfigIssue],
) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, path + (k,), env, redact, secret_paths, issues) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path + (i,), env, redact, secret_paths, issues) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    missing = [name for name in _ENV_REF.findall(value) if name not in env]
    if missing:
        for name in missing:
            issues.append(ConfigIssue(format_path(path), f"environment variable {name} is not set", parts=path))
        return value
    secret_paths.add(path)
    resolved = _ENV_REF.sub(lambda m: env[m.group(1)], value)
    for name in _ENV_REF.findall(value):
        redact.add(env[name])
    return resolved


def _is_secret(loc: tuple[PathPart, ...], secret_paths: set[tuple[PathPart, ...]]) -> bool:
    return any(loc[: len(p)] == p for p in secret_paths)


def _line_from_message(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


class _Locator:
    """Finds the line that defines a key path, for error messages.

    tomllib keeps no positions, so this scans table headers and ``key =`` lines;
    it answers the line of the deepest prefix of the path it finds (a key inside
    an inline table points at the line of that table).
    """

    _header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _assign = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")

    def __init__(self, text: str) -> None:
        self.entries: list[tuple[tuple[str, ...], int]] = []
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._header.match(line)
            if header:
                table = _split_key(header.group(1))
                self.entries.append((table, number))
                continue
            assign = self._assign.match(line)
            if assign:
                self.entries.append((table + _split_key(assign.group(1)), number))

    def __call__(self, loc: tuple[PathPart, ...] | list[PathPart]) -> int | None:
        keys = tuple(str(p) for p in loc if isinstance(p, str))
        best, best_len = None, 0
        for entry, number in self.entries:
            if len(entry) > best_len and keys[: len(entry)] == entry:
                best, best_len = number, len(entry)
        if best_len < len(keys):
            # A table defined only through its sub-tables ([syncs.g.nodes.a] defines
            # syncs.g): the first line inside it is closer than its parent's line.
            inside = next((number for entry, number in self.entries if entry[: len(keys)] == keys), None)
            best = inside if inside is not None else best
        return best


def _split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)", key)
    return tuple(a or b or c for a, b, c in parts)
