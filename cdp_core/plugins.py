"""The plugin manager factory and the type registry.

``load_plugins()`` builds a fresh pluggy manager every time (never a global built
at import): builtins first, then the ``cdp`` entry points. A plugin that fails to
import or to register is reported with its name and error; the others keep
working. ``CDP_DISABLE_PLUGINS`` (comma-separated plugin names) blocks plugins.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from cdp_core import hookspecs
from cdp_core.jobs import check_job

if TYPE_CHECKING:  # the base classes are pydantic models: imported when a source or section is checked
    from cdp_core.base import PluginConfig

log = logging.getLogger("cdp.plugins")

ENTRY_POINT_GROUP = "cdp"
DISABLE_ENV = "CDP_DISABLE_PLUGINS"

Role = Literal["source", "transform", "destination", "config_section", "command", "migrations", "job", "webhook"]
_ROLE_BASES: dict[str, str] = {"source": "Source", "transform": "Transform", "destination": "Destination"}
"""The roles whose classes subclass a base of cdp_core.base, role -> the base's name."""
_ROLES: tuple[Role, ...] = (
    "source", "transform", "destination", "config_section", "command", "migrations", "job", "webhook"
)  # fmt: skip
_REGISTERED_AS: dict[str, str] = {
    "source": "sources",
    "transform": "transforms",
    "destination": "destinations",
    "config_section": "config sections",
    "command": "commands",
    "migrations": "migrations",
    "job": "jobs",
    "webhook": "webhooks",
}
"""How ``cdp plugins`` names what a plugin registered, by role."""
RESERVED_SECTIONS = frozenset({"store", "alerts", "connectors", "syncs"})
"""The kernel's own top-level sections of connectors.toml."""
_SECTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("cdp.files", "cdp_core.builtins.files"),
    ("cdp.rest", "cdp_core.builtins.rest"),
    ("cdp.transforms", "cdp_core.transforms"),
    ("cdp.observers", "cdp_core.builtins.observers"),
    ("cdp.ingest", "cdp_core.ingest.tracking_source"),
)
"""(plugin name, module) of the builtins, registered through the same hooks as any plugin."""


@dataclass(frozen=True)
class Registration:
    """One thing a plugin registered: a class under a type name, a config section, a command, a history."""

    type_name: str
    role: Role
    cls: Any
    plugin: str


@dataclass(frozen=True)
class LazyCommand:
    """A command registered by name: ``register("privacy", "cdp_profiles.cli.privacy:privacy_app", help="...")``.

    ``cdp --help`` lists it with ``help`` without importing ``target`` (``module:attribute``, a
    ``typer.Typer`` or a function); the module is imported only when the command runs.
    """

    target: str
    help: str

    def load(self) -> Any:
        return _import_target(self.target)


@dataclass(frozen=True)
class LazySection:
    """A config section registered by name: ``register("analytics", "cdp_profiles.analytics.config:AnalyticsConfig")``.

    Its model is imported when the section is first asked for (``Plugins.section_models``): a read
    command that reads ``[identity]`` does not import the models, and what they import, of the others.
    """

    target: str


def _import_target(target: str) -> Any:
    module, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


_LAZY_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass
class PluginInfo:
    """What ``cdp plugins`` shows about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    status: Literal["ok", "broken", "disabled"] = "ok"
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "registered": self.registered,
        }


class RegistrationError(Exception):
    """A plugin registered something the core cannot use."""


class Registry:
    """What the plugins registered, per role. Conflicting names are kept out and reported."""

    def __init__(self) -> None:
        self._by_role: dict[str, dict[str, Registration]] = {r: {} for r in _ROLES}
        self.conflicts: dict[tuple[str, str], list[str]] = {}

    def add(self, role: Role, type_name: str, cls: Any, plugin: str) -> None:
        if role in _ROLE_BASES:
            _check_plugin_class(role, type_name, cls)
        elif role == "config_section":
            _check_section(type_name, cls)
        elif role == "command":
            _check_command(type_name, cls)
        elif role == "job":
            try:
                check_job(type_name, cls)
            except ValueError as exc:
                raise RegistrationError(str(exc)) from None
        elif role == "webhook":
            _check_webhook(type_name, cls)
        else:
            type_name = _check_history(cls, self._by_role["migrations"].values())
        if (role, type_name) in self.conflicts:
            self.conflicts[(role, type_name)].append(plugin)
            return
        existing = self._by_role[role].get(type_name)
        if existing is not None:
            del self._by_role[role][type_name]
            self.conflicts[(role, type_name)] = [existing.plugin, plugin]
            return
        self._by_role[role][type_name] = Registration(type_name, role, cls, plugin)

    def resolve(self, reg: Registration, cls: Any) -> None:
        """Put the imported class in place of what was registered by name."""
        self._by_role[reg.role][reg.type_name] = Registration(reg.type_name, reg.role, cls, reg.plugin)

    def remove_plugin(self, plugin: str) -> None:
        for regs in self._by_role.values():
            for type_name in [t for t, r in regs.items() if r.plugin == plugin]:
                del regs[type_name]

    def get(self, role: Role, type_name: str) -> Registration | None:
        return self._by_role[role].get(type_name)

    def remove(self, role: Role, type_name: str) -> None:
        self._by_role[role].pop(type_name, None)

    def names(self, role: Role) -> list[str]:
        return sorted(self._by_role[role])

    def all(self, role: Role) -> list[Registration]:
        """Every registration of ``role``, in name order."""
        return [self._by_role[role][name] for name in sorted(self._by_role[role])]

    def roles_of(self, type_name: str) -> list[Registration]:
        return [self._by_role[role][type_name] for role in _ROLE_BASES if type_name in self._by_role[role]]

    def conflict_message(self, role: str, type_name: str) -> str | None:
        plugins = self.conflicts.get((role, type_name))
        if not plugins:
            return None
        what = {
            "config_section": "config section",
            "command": "command",
            "migrations": "migration history",
            "job": "job",
            "webhook": "webhook",
        }
        label = what.get(role, f"{role} type")
        return f"{label} {type_name!r} is registered by more than one plugin: {', '.join(plugins)}"

    def config_model_for(self, type_name: str) -> type[PluginConfig] | None:
        regs = [r for r in self.roles_of(type_name) if r.role != "transform"]
        return regs[0].cls.config_model if regs else None


def _check_plugin_class(role: str, type_name: str, cls: Any) -> None:
    from cdp_core import base as bases
    from cdp_core.base import PluginConfig

    base = getattr(bases, _ROLE_BASES[role])
    if not isinstance(cls, type) or not issubclass(cls, base):
        raise RegistrationError(f"{role} {type_name!r} must be a subclass of {base.__name__}, got {cls!r}")
    model = getattr(cls, "config_model", None)
    if not (isinstance(model, type) and issubclass(model, PluginConfig)):
        raise RegistrationError(f"{role} {type_name!r}: config_model must subclass cdp_core.PluginConfig")
    if model.model_config.get("extra") != "forbid":
        raise RegistrationError(f"{role} {type_name!r}: config_model must forbid unknown keys (extra='forbid')")
    if role == "destination":
        opts = getattr(cls, "options_model", None)
        if not (isinstance(opts, type) and issubclass(opts, PluginConfig)):
            raise RegistrationError(f"destination {type_name!r}: options_model must subclass PluginConfig")


def _check_webhook(type_name: Any, cls: Any) -> None:
    from cdp_core.webhooks import Webhook

    if not isinstance(type_name, str) or not type_name:
        raise RegistrationError(f"webhook {type_name!r}: the name must be a connector type name")
    if not isinstance(cls, type) or not issubclass(cls, Webhook):
        raise RegistrationError(f"webhook {type_name!r} must be a subclass of cdp_core.webhooks.Webhook, got {cls!r}")
    streams = cls.streams
    if not streams or not isinstance(streams, tuple) or not all(isinstance(s, str) and s for s in streams):
        raise RegistrationError(
            f"webhook {type_name!r}: streams must name the source streams that read its entries, got {streams!r}"
        )


def _check_section(name: str, model: Any) -> None:
    if not isinstance(name, str) or not _SECTION_NAME.match(name):
        raise RegistrationError(f"config section {name!r}: the name must be lower case letters, digits and _")
    if name in RESERVED_SECTIONS:
        raise RegistrationError(f"config section {name!r} is the kernel's own; choose another name")
    if isinstance(model, LazySection):
        if not _LAZY_TARGET.match(model.target):
            raise RegistrationError(f"config section {name!r}: {model.target!r} must be 'module:attribute'")
        return
    from cdp_core.base import PluginConfig

    if not (isinstance(model, type) and issubclass(model, PluginConfig)):
        raise RegistrationError(f"config section {name!r}: the model must subclass cdp_core.PluginConfig")
    if model.model_config.get("extra") != "forbid":
        raise RegistrationError(f"config section {name!r}: the model must forbid unknown keys (extra='forbid')")


def _check_command(name: str, command: Any) -> None:
    import typer  # here, not at import: plugins.py is loaded by every process, typer only by the CLI

    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise RegistrationError(f"command {name!r}: the name must be lower case letters, digits and -")
    if isinstance(command, LazyCommand):
        if not _LAZY_TARGET.match(command.target):
            raise RegistrationError(f"command {name!r}: {command.target!r} must be 'module:attribute'")
        if not isinstance(command.help, str) or not command.help.strip():
            raise RegistrationError(f"command {name!r}: a command registered by name needs help='one line for cdp --help'")
        return
    if not (isinstance(command, typer.Typer) or callable(command)):
        raise RegistrationError(f"command {name!r} must be a typer.Typer or a function, got {command!r}")


def _check_history(history: Any, taken: Iterable[Registration]) -> str:
    from cdp_core.store.schema import KERNEL, History

    if not isinstance(history, History):
        raise RegistrationError(f"migrations must be a cdp_core.store.schema.History, got {history!r}")
    tables = {KERNEL.version_table} | {r.cls.version_table for r in taken if r.cls.name != history.name}
    if history.version_table in tables:
        raise RegistrationError(f"migration history {history.name!r}: version table {history.version_table!r} is taken")
    return history.name


class Register:
    """The callable a ``cdp_register_*`` hook receives, bound to one plugin and role.

    ``register(name, thing)`` for sources, transforms, destinations, config sections,
    commands and jobs; ``register(history)`` for migrations. A command may be named by
    ``"module:attribute"`` with ``help=``: it is imported only when it runs (``LazyCommand``).
    """

    def __init__(self, registry: Registry, role: Role, plugin: str) -> None:
        self._registry = registry
        self.role = role
        self.plugin = plugin

    def __call__(self, name: Any, thing: Any = None, *, help: str | None = None) -> None:  # noqa: A002 - typer's word
        if self.role == "migrations":
            self._registry.add(self.role, getattr(name, "name", str(name)), name, self.plugin)
        elif self.role == "command" and isinstance(thing, str):
            self._registry.add(self.role, name, LazyCommand(thing, help or ""), self.plugin)
        elif self.role == "config_section" and isinstance(thing, str) and help is None:
            self._registry.add(self.role, name, LazySection(thing), self.plugin)
        elif help is not None:
            raise RegistrationError(f"{name!r}: help= is only for a command registered as 'module:attribute'")
        else:
            self._registry.add(self.role, name, thing, self.plugin)


@dataclass
class Plugins:
    """A plugin manager together with what its plugins registered."""

    manager: pluggy.PluginManager
    registry: Registry
    info: dict[str, PluginInfo]

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.info.values() if p.status == "broken"]

    @property
    def sections(self) -> dict[str, type[PluginConfig]]:
        """Top-level connectors.toml sections the plugins registered, name -> model (every model imported)."""
        return self.section_models(None)

    def section_models(self, names: Iterable[str] | None) -> dict[str, type[PluginConfig]]:
        """The models of the sections ``names`` (None: all) that are registered, name -> model.

        A section registered by name is imported here; one whose model fails to import or is not
        a ``PluginConfig`` puts its plugin out as broken (``cdp plugins`` says why), as a failed
        registration would, and the section reads as unknown.
        """
        wanted = None if names is None else set(names)
        models: dict[str, type[PluginConfig]] = {}
        for reg in self.registry.all("config_section"):
            if wanted is not None and reg.type_name not in wanted:
                continue
            model = reg.cls
            if isinstance(model, LazySection):
                try:
                    model = _import_target(model.target)
                    _check_section(reg.type_name, model)
                except Exception as exc:  # noqa: BLE001 - report the plugin, keep the others working
                    self._broken_section(reg, exc)
                    continue
                self.registry.resolve(reg, model)
            models[reg.type_name] = model
        return models

    def _broken_section(self, reg: Registration, exc: Exception) -> None:
        error = f"config section {reg.type_name!r} failed to load: {short_error(exc)}"
        log.warning("plugin %s: %s", reg.plugin, error)
        self.registry.remove("config_section", reg.type_name)
        entry = self.info.get(reg.plugin)
        if entry is not None:
            entry.status, entry.error = "broken", error

    @property
    def commands(self) -> list[Registration]:
        """``cdp`` sub-commands the plugins registered, in name order."""
        return self.registry.all("command")

    @property
    def jobs(self) -> list[Registration]:
        """Maintenance jobs (``cdp_core.jobs.Job``) the scheduler runs, in name order."""
        return self.registry.all("job")

    @property
    def webhooks(self) -> dict[str, type[Any]]:
        """Webhook handlers (``cdp_core.webhooks.Webhook`` subclasses) the plugins registered, connector type -> class."""
        return {r.type_name: r.cls for r in self.registry.all("webhook")}

    @property
    def migrations(self) -> list[Any]:
        """The migration histories (``cdp_core.store.schema.History``) the plugins registered."""
        return [r.cls for r in self.registry.all("migrations")]

    def validate_config(self, config: Any, report: Callable[[tuple[str | int, ...], str], None]) -> None:
        """Call ``cdp_validate_config``; a plugin whose check raises is reported as a problem, not a traceback."""
        for impl in self.manager.hook.cdp_validate_config.get_hookimpls():
            try:
                impl.function(config=config, report=report)
            except Exception as exc:  # noqa: BLE001 - a plugin's bug is a problem to show, not a crash
                report((), f"plugin {impl.plugin_name!r} failed to check the config: {type(exc).__name__}: {exc}")

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook through pluggy (wrappers included); a failure never fails the run.

        Each plain observer is guarded when it is registered (see ``_guard_observers``), so
        one that raises is logged and the others still run; this guard catches what is left:
        a wrapper that raises.
        """
        try:
            getattr(self.manager.hook, hook)(**kwargs)
        except Exception:  # noqa: BLE001 - an observer's bug must not fail the sync
            log.exception("observers of %s failed", hook)


def new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    return manager


def disabled_from_env() -> set[str]:
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def short_error(exc: BaseException) -> str:
    """``Type: message (file:line)`` of an exception, on one line: how a broken plugin is reported."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def load_plugins(
    *,
    entry_points: bool = True,
    disabled: Iterable[str] | None = None,
    extra: Iterable[tuple[str, object]] = (),
    roles: Iterable[Role] | None = None,
) -> Plugins:
    """Build a fresh plugin manager and registry.

    :param entry_points: load plugins from the ``cdp`` entry-point group.
    :param disabled: plugin names to block; defaults to ``$CDP_DISABLE_PLUGINS``.
    :param extra: (name, plugin object) pairs registered after the builtins,
        before entry points (the test kit uses this).
    :param roles: call only these registration hooks (default: all). ``cdp`` itself asks for
        ``("command",)`` to build its command list: the plugins' modules are imported, their
        sources, histories and jobs are not (a plugin is judged on its import and its commands;
        the command that runs loads everything).
    """
    manager = new_manager()
    blocked = disabled_from_env() if disabled is None else set(disabled)
    info: dict[str, PluginInfo] = {}
    core_version = _version("cdp-core")

    def add(name: str, loader: Any, dist: str | None, version: str | None) -> None:
        if name in info:
            taken_by = info[name].distribution or "an earlier plugin"
            key = f"{name} ({dist or 'unknown distribution'})"
            info[key] = PluginInfo(
                name=key, distribution=dist, version=version, status="broken",
                error=f"plugin name {name!r} is already taken by {taken_by}; rename the entry point",
            )
            return
        entry = PluginInfo(name=name, distribution=dist, version=version)
        info[name] = entry
        if name in blocked:
            entry.status = "disabled"
            manager.set_blocked(name)
            return
        try:
            manager.register(loader(), name=name)
        except Exception as exc:  # noqa: BLE001 - report the plugin, keep the others working
            entry.status, entry.error = "broken", short_error(exc)
            log.warning("plugin %s failed to load: %s", name, entry.error)

    # The builtins register sources, transforms and destinations only (a test checks): a load for
    # commands (`cdp --help`) or for reading (sections and histories) leaves them unimported.
    builtins = BUILTIN_PLUGINS if roles is None or set(roles) & set(_ROLE_BASES) else ()
    for name, module in builtins:
        add(name, lambda module=module: importlib.import_module(module), "cdp-core", core_version)
    for name, obj in extra:
        add(name, lambda obj=obj: obj, None, None)
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else None
            add(ep.name, ep.load, dist, ep.dist.version if ep.dist else None)

    registry = Registry()
    failed: set[str] = set()
    hooks: tuple[tuple[Role, Any], ...] = (
        ("source", manager.hook.cdp_register_sources),
        ("transform", manager.hook.cdp_register_transforms),
        ("destination", manager.hook.cdp_register_destinations),
        ("config_section", manager.hook.cdp_register_config_sections),
        ("command", manager.hook.cdp_register_commands),
        ("migrations", manager.hook.cdp_register_migrations),
        ("job", manager.hook.cdp_register_jobs),
        ("webhook", manager.hook.cdp_register_webhooks),
    )
    wanted = set(_ROLES if roles is None else roles)
    for role, hook in hooks:
        if role not in wanted:
            continue
        # One call per plugin (not one hook call for all) so a failure or a
        # conflict is pinned on the plugin that caused it.
        for impl in reversed(hook.get_hookimpls()):
            if impl.plugin_name in failed:
                continue
            register = Register(registry, role, impl.plugin_name)
            try:
                impl.function(**({"register": register} if "register" in impl.argnames else {}))
            except Exception as exc:  # noqa: BLE001
                failed.add(impl.plugin_name)
                entry = info.get(impl.plugin_name)
                if entry is not None:
                    entry.status, entry.error = "broken", short_error(exc)
                log.warning("plugin %s failed to register %ss: %s", impl.plugin_name, role, exc)
    # A plugin that failed half-way is out entirely: no types it registered
    # before the error, no lifecycle hooks.
    for name in failed:
        registry.remove_plugin(name)
        if manager.get_plugin(name) is not None:
            manager.unregister(name=name)
    for reg in _orphan_webhooks(registry):
        if reg.plugin in info:
            info[reg.plugin].registered.setdefault("webhooks", []).append(f"{reg.type_name} (no such source type)")
    for role in _ROLES:
        for reg in registry.all(role):
            if reg.plugin in info:
                info[reg.plugin].registered.setdefault(_REGISTERED_AS[role], []).append(reg.type_name)
    for (conflict_role, type_name), owners in registry.conflicts.items():
        for owner in owners:
            if owner in info:
                info[owner].registered.setdefault(_REGISTERED_AS[conflict_role], []).append(f"{type_name} (conflict)")
    _check_shared_config_models(registry)
    _guard_observers(manager)
    plugins = Plugins(manager=manager, registry=registry, info=info)
    if roles is None:
        plugins.section_models(None)  # a full load imports every section: one that fails shows in `cdp plugins`
    return plugins


_LIFECYCLE_HOOKS = ("cdp_run_started", "cdp_run_finished", "cdp_run_failed", "cdp_batch_written", "cdp_record_rejected")


def _guard_observers(manager: pluggy.PluginManager) -> None:
    """Wrap each plain lifecycle implementation so that one raising never stops the others.

    pluggy stops a hook call at the first exception; an observer's bug (a metrics
    exporter that is down) must neither fail the sync nor silence the alerting plugin
    after it. Wrappers (``wrapper=True``) are left as they are: they see the call whole.
    """
    for hook in _LIFECYCLE_HOOKS:
        for impl in getattr(manager.hook, hook).get_hookimpls():
            if impl.wrapper or impl.hookwrapper or getattr(impl.function, "_cdp_guarded", False):
                continue
            impl.function = _guarded(impl.function, impl.plugin_name, hook)


def _guarded(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except Exception:  # noqa: BLE001 - an observer's bug must not fail the sync
            log.exception("observer %s failed in %s", plugin, hook)
            return None

    call._cdp_guarded = True  # type: ignore[attr-defined]
    return call


def _check_shared_config_models(registry: Registry) -> None:
    # A type that is both a source and a destination (a CRM read and written
    # back) has one [connectors.X] table, so both roles must read it alike.
    for type_name in registry.names("source"):
        src = registry.get("source", type_name)
        dst = registry.get("destination", type_name)
        if src and dst and src.cls.config_model is not dst.cls.config_model:
            registry.conflicts[("destination", type_name)] = [
                f"{dst.plugin} (destination config_model differs from source {src.plugin}'s; share one)"
            ]
            registry.remove("destination", type_name)


def _orphan_webhooks(registry: Registry) -> list[Registration]:
    """Take out the webhooks of a type no plugin registers as a source, and return them.

    A webhook is built with its connector's config and read by its source's streams:
    without a source of its type it has neither.
    """
    orphans = [reg for reg in registry.all("webhook") if registry.get("source", reg.type_name) is None]
    for reg in orphans:
        log.warning("plugin %s registers a webhook for %r, which is no source type; ignored", reg.plugin, reg.type_name)
        registry.remove("webhook", reg.type_name)
    return orphans


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
