"""connectors.toml: read with tomllib, interpolate ``${ENV}`` secrets, validate into models.

Every problem is collected (not just the first) as a :class:`ConfigIssue` naming
the file, the key path (``syncs.nightly.nodes.clean.inputs[0]``) and, where it
can be found, the line. A secret's value never appears in an issue.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from cdp_core.base import PluginConfig
from cdp_core.graph import SyncGraph, build_graphs, parse_every
from cdp_core.keypaths import PathPart, did_you_mean, format_path, unsafe_name, validation_messages
from cdp_core.plugins import RESERVED_SECTIONS, Plugins, Registration
from cdp_core.secrets import Redactor
from cdp_core.storeurl import check_store_url, resolve_store_url
from cdp_core.tomllines import Locator, line_from_message

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

    def __init__(self, file: str, issues: list[ConfigIssue], warnings: list[ConfigIssue] | None = None) -> None:
        self.file = file
        self.issues = issues
        self.warnings = warnings or []
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
    purpose: str | None = Field(
        default=None,
        description="a destination node: the purpose its exports serve (ads, email...); every batch is checked "
        "against it before it is written (docs/consent.md). Unset: the destination type's default",
    )

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
    continuous: bool = Field(
        default=False,
        description="run by `cdp serve` whenever its ingest-log sources have new messages (docs/ingest.md)",
    )
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
    broken_connectors: set[str] = field(default_factory=set)
    """Connectors declared but invalid (their problems are reported): not in ``connectors``."""
    warnings: list[ConfigIssue] = field(default_factory=list)
    """What is allowed but unwise (a secret-typed option written as a literal): ``cdp validate`` prints them."""

    def enabled_graphs(self) -> list[str]:
        return [name for name, graph in self.graphs.items() if graph.config.enabled]

    @property
    def store_url(self) -> str:
        """``[store] url``, a relative SQLite file resolved against the folder of connectors.toml."""
        return resolve_store_url(self.root.store.url, self.path.absolute().parent)


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
    text, raw = read_toml(file)

    locate = Locator(text)
    issues: list[ConfigIssue] = []
    redact = Redactor()
    secret_paths: set[tuple[PathPart, ...]] = set()
    warnings: list[ConfigIssue] = []
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

    def add_validation_errors(exc: ValidationError, prefix: tuple[PathPart, ...], model: type[BaseModel] | None = None) -> None:
        hide = lambda loc: _is_secret(loc, secret_paths)  # noqa: E731
        for loc, message in validation_messages(exc.errors(include_url=False), prefix, hide, model):
            if any(loc[: len(m)] == m or m[: len(loc)] == loc for m in missing_paths):
                continue  # the value is an unresolved ${VAR}, already reported as missing
            issues.append(ConfigIssue(format_path(loc), message, locate(loc)))

    # The kernel's sections one by one: a bad [store] or [alerts] must not hide the graphs' problems.
    root = RootConfig()
    for key, section_model in (("store", StoreConfig), ("alerts", AlertsConfig)):
        if key in raw:
            try:
                setattr(root, key, section_model.model_validate(raw[key]))
            except ValidationError as exc:
                add_validation_errors(exc, (key,), section_model)
    for key in ("connectors", "syncs"):
        value = raw.get(key, {})
        if not isinstance(value, dict):
            issues.append(ConfigIssue(key, f"must be a table ([{key}.NAME]), got {_kind(value)}", locate((key,))))
            continue
        for name, table in value.items():
            if not isinstance(table, dict):
                issues.append(
                    ConfigIssue(format_path((key, name)), f"must be a table, got {_kind(table)}", locate((key, name)))
                )
        setattr(root, key, {name: table for name, table in value.items() if isinstance(table, dict)})
    raw_store = raw.get("store", {})
    url = raw_store.get("url", DEFAULT_STORE_URL) if isinstance(raw_store, dict) else None
    if isinstance(url, str) and not any(issue.path == "store.url" for issue in issues):
        problem = check_store_url(url, file.absolute().parent)
        if problem:
            issues.append(ConfigIssue("store.url", problem, locate(("store", "url"))))
    if not root.connectors and not root.syncs:
        issues.append(
            ConfigIssue("", "nothing is configured: no [connectors.NAME] and no [syncs.NAME] (see README.md, connectors.toml)", 1)
        )
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
            add_validation_errors(exc, (name,), model)
            # Without what failed, for the checks against the rest of the file (cdp_validate_config):
            # an unknown key must not hide an unknown stream. The config is refused anyway.
            pruned = _without_errors(model, value, exc)
            if pruned is not None:
                sections[name] = pruned
    for name, model in registered.items():
        if name not in sections and name not in raw:
            sections[name] = model()
    connectors: dict[str, Connector] = {}
    raw_connectors = root.connectors
    broken: set[str] = set()
    for name, table in raw_connectors.items():
        if name in unavailable:
            continue
        broken.add(name)  # until it is validated
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
            add_validation_errors(exc, prefix, model)
            continue
        _register_secrets(config, prefix, redact, secret_paths, warnings, locate)
        connectors[name] = Connector(name, type_name, config, {r.role: r for r in regs})
        broken.discard(name)

    config = Config(
        path=file,
        root=root or RootConfig(),
        connectors=connectors,
        redact=redact,
        text=text,
        sections=sections,
        unavailable=unavailable,
        broken_connectors=broken,
        warnings=warnings,
    )
    for name, section in sections.items():
        _register_secrets(section, (name,), redact, secret_paths, warnings, locate)
    if root.alerts.webhook_url:
        redact.add(root.alerts.webhook_url)  # a webhook URL often carries its token: never print it, ${ENV} or not
    # The graphs, whatever else failed.
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
        graph_configs, set(root.syncs), invalid_nodes, raw_connectors, connectors, plugins, set(unavailable), sections
    )
    for graph_issue in graph_issues:
        if graph_issue.line is None:
            graph_issue.line = locate(graph_issue.parts)
        issues.append(ConfigIssue(graph_issue.path, graph_issue.message, graph_issue.line))
    config.graphs = graphs
    for graph in graphs.values():
        for node in graph.nodes.values():
            if node.options is not None:
                at: tuple[PathPart, ...] = ("syncs", graph.name, "nodes", node.name, "options")
                _register_secrets(node.options, at, redact, secret_paths, warnings, locate)

    def report(where: tuple[PathPart, ...], message: str) -> None:
        issues.append(ConfigIssue(format_path(where), message, locate(where)))

    # The plugins' own checks against the whole config ([identity] names streams and identifier types).
    plugins.validate_config(config, report)
    if issues:
        issues.sort(key=lambda i: i.line or 0)
        for issue in issues:  # last line of defence: no resolved secret leaves in a message
            issue.message = redact(issue.message)
        raise ConfigError(str(file), issues, warnings)
    warnings.sort(key=lambda i: i.line or 0)
    return config



def _without_errors(model: type[PluginConfig], value: Any, exc: ValidationError) -> PluginConfig | None:
    """``model`` validated from ``value`` without the keys pydantic refused (a few rounds), or None."""
    for _ in range(3):
        if not isinstance(value, dict):
            return None
        value = _drop(value, [tuple(err["loc"]) for err in exc.errors(include_url=False)])
        try:
            return model.model_validate(value)
        except ValidationError as again:
            exc = again
    return None


def _drop(value: Any, locs: list[tuple[PathPart, ...]]) -> Any:
    """A copy of ``value`` without the leaves at ``locs`` (a list item: the whole list's key)."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for loc in locs:
        if not loc:
            continue
        head = loc[0]
        if head not in out:
            continue
        inner = [l[1:] for l in locs if l and l[0] == head]
        if len(loc) == 1 or not isinstance(out[head], dict) or any(isinstance(l[0], int) for l in inner if l):
            out.pop(head, None)
        else:
            out[head] = _drop(out[head], inner)
    return out


def read_toml(file: Path) -> tuple[str, dict[str, Any]]:
    """The text of connectors.toml and its tables; a file that cannot be read or parsed is a :class:`ConfigError`."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(str(file), [ConfigIssue("", f"cannot read the file: {exc.strerror or exc}")]) from None
    text = _decode(str(file), data)
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or line_from_message(str(exc))
        raise ConfigError(str(file), [ConfigIssue("", f"not valid TOML: {exc}", line)]) from None


def _decode(file: str, data: bytes) -> str:
    """The text of connectors.toml: UTF-8, no NUL byte; anything else is a clear error, not a traceback."""
    nul = data.find(b"\x00")
    if nul != -1:
        line = data.count(b"\n", 0, nul) + 1
        raise ConfigError(file, [ConfigIssue("", f"a binary file, not TOML text (a NUL byte at byte {nul})", line)])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column} (byte {exc.start}); save it as UTF-8"
        raise ConfigError(file, [ConfigIssue("", message, line)]) from None


def _kind(value: Any) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "an array"}.get(
        type(value), type(value).__name__
    )


def _register_secrets(
    model: BaseModel,
    prefix: tuple[PathPart, ...],
    redact: Redactor,
    secret_paths: set[tuple[PathPart, ...]],
    warnings: list[ConfigIssue],
    locate: Callable[[tuple[PathPart, ...]], int | None],
) -> None:
    """Register every secret-typed option's value (``SecretStr``) with the redactor; warn about literal ones."""
    for where, value in _secret_values(model, prefix):
        redact.add(value)
        if not _is_secret(where, secret_paths):
            warnings.append(
                ConfigIssue(
                    format_path(where),
                    "a secret written into the file: set it from the environment instead, e.g. \"${TOKEN}\"",
                    locate(where),
                )
            )


def _secret_values(value: Any, path: tuple[PathPart, ...]) -> Iterator[tuple[tuple[PathPart, ...], str]]:
    if isinstance(value, SecretStr):
        yield path, value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name, None), path + (name,))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secret_values(item, path + (key,))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _secret_values(item, path + (index,))


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
    secret_paths.add(path)  # from the environment, set or not: never "a secret written into the file"
    if missing:
        for name in missing:
            issues.append(ConfigIssue(format_path(path), f"environment variable {name} is not set", parts=path))
        return value
    resolved = _ENV_REF.sub(lambda m: env[m.group(1)], value)
    for name in _ENV_REF.findall(value):
        redact.add(env[name])
    return resolved


def _is_secret(loc: tuple[PathPart, ...], secret_paths: set[tuple[PathPart, ...]]) -> bool:
    return any(loc[: len(p)] == p for p in secret_paths)
