"""The plugin manager factory and the type registry.

``load_plugins()`` builds a fresh pluggy manager every time (never a global built
at import): builtins first, then the ``cdp`` entry points. A plugin that fails to
import or to register is reported with its name and error; the others keep
working. ``CDP_DISABLE_PLUGINS`` (comma-separated plugin names) blocks plugins.
"""

from __future__ import annotations

import importlib
import logging
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

import pluggy

from cdp_core import hookspecs
from cdp_core.base import Destination, PluginConfig, Source, Transform

log = logging.getLogger("cdp.plugins")

ENTRY_POINT_GROUP = "cdp"
DISABLE_ENV = "CDP_DISABLE_PLUGINS"

Role = Literal["source", "transform", "destination"]
_ROLE_BASES: dict[str, type] = {"source": Source, "transform": Transform, "destination": Destination}

BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("cdp.files", "cdp_core.builtins.files"),
    ("cdp.transforms", "cdp_core.transforms"),
    ("cdp.observers", "cdp_core.builtins.observers"),
    ("cdp.profile_store", "cdp_core.builtins.profile_store"),
)
"""(plugin name, module) of the builtins, registered through the same hooks as any plugin."""


@dataclass(frozen=True)
class Registration:
    type_name: str
    role: Role
    cls: type
    plugin: str


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
    """Type name -> class, per role. Conflicting names are kept out and reported."""

    def __init__(self) -> None:
        self._by_role: dict[str, dict[str, Registration]] = {r: {} for r in _ROLE_BASES}
        self.conflicts: dict[tuple[str, str], list[str]] = {}

    def add(self, role: Role, type_name: str, cls: type, plugin: str) -> None:
        base = _ROLE_BASES[role]
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
        if (role, type_name) in self.conflicts:
            self.conflicts[(role, type_name)].append(plugin)
            return
        existing = self._by_role[role].get(type_name)
        if existing is not None:
            del self._by_role[role][type_name]
            self.conflicts[(role, type_name)] = [existing.plugin, plugin]
            return
        self._by_role[role][type_name] = Registration(type_name, role, cls, plugin)

    def remove_plugin(self, plugin: str) -> None:
        for regs in self._by_role.values():
            for type_name in [t for t, r in regs.items() if r.plugin == plugin]:
                del regs[type_name]

    def get(self, role: Role, type_name: str) -> Registration | None:
        return self._by_role[role].get(type_name)

    def names(self, role: Role) -> list[str]:
        return sorted(self._by_role[role])

    def roles_of(self, type_name: str) -> list[Registration]:
        return [regs[type_name] for regs in self._by_role.values() if type_name in regs]

    def conflict_message(self, role: str, type_name: str) -> str | None:
        plugins = self.conflicts.get((role, type_name))  # type: ignore[arg-type]
        if not plugins:
            return None
        return f"{role} type {type_name!r} is registered by more than one plugin: {', '.join(plugins)}"

    def config_model_for(self, type_name: str) -> type[PluginConfig] | None:
        regs = [r for r in self.roles_of(type_name) if r.role != "transform"]
        return regs[0].cls.config_model if regs else None


class Register:
    """The callable a ``cdp_register_*`` hook receives, bound to one plugin and role."""

    def __init__(self, registry: Registry, role: Role, plugin: str) -> None:
        self._registry = registry
        self.role = role
        self.plugin = plugin

    def __call__(self, type_name: str, cls: type) -> None:
        self._registry.add(self.role, type_name, cls, self.plugin)


@dataclass
class Plugins:
    """A plugin manager together with what its plugins registered."""

    manager: pluggy.PluginManager
    registry: Registry
    info: dict[str, PluginInfo]

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.info.values() if p.status == "broken"]

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every observer; one failing observer never stops the others or the run."""
        caller = getattr(self.manager.hook, hook)
        for impl in reversed(caller.get_hookimpls()):
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except Exception:  # noqa: BLE001 - an observer's bug must not fail the sync
                log.exception("observer %s failed in %s", impl.plugin_name, hook)


def new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    return manager


def disabled_from_env() -> set[str]:
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def _short_error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def load_plugins(
    *,
    entry_points: bool = True,
    disabled: Iterable[str] | None = None,
    extra: Iterable[tuple[str, object]] = (),
) -> Plugins:
    """Build a fresh plugin manager and registry.

    :param entry_points: load plugins from the ``cdp`` entry-point group.
    :param disabled: plugin names to block; defaults to ``$CDP_DISABLE_PLUGINS``.
    :param extra: (name, plugin object) pairs registered after the builtins,
        before entry points (the test kit uses this).
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
            entry.status, entry.error = "broken", _short_error(exc)
            log.warning("plugin %s failed to load: %s", name, entry.error)

    for name, module in BUILTIN_PLUGINS:
        add(name, lambda module=module: importlib.import_module(module), "cdp-core", core_version)
    for name, obj in extra:
        add(name, lambda obj=obj: obj, None, None)
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else None
            add(ep.name, ep.load, dist, ep.dist.version if ep.dist else None)

    registry = Registry()
    failed: set[str] = set()
    for role, hook in (
        ("source", manager.hook.cdp_register_sources),
        ("transform", manager.hook.cdp_register_transforms),
        ("destination", manager.hook.cdp_register_destinations),
    ):
        # One call per plugin (not one hook call for all) so a failure or a
        # conflict is pinned on the plugin that caused it.
        for impl in reversed(hook.get_hookimpls()):
            if impl.plugin_name in failed:
                continue
            register = Register(registry, role, impl.plugin_name)  # type: ignore[arg-type]
            try:
                impl.function(**({"register": register} if "register" in impl.argnames else {}))
            except Exception as exc:  # noqa: BLE001
                failed.add(impl.plugin_name)
                entry = info.get(impl.plugin_name)
                if entry is not None:
                    entry.status, entry.error = "broken", _short_error(exc)
                log.warning("plugin %s failed to register %ss: %s", impl.plugin_name, role, exc)
    # A plugin that failed half-way is out entirely: no types it registered
    # before the error, no lifecycle hooks.
    for name in failed:
        registry.remove_plugin(name)
        if manager.get_plugin(name) is not None:
            manager.unregister(name=name)
    for role in _ROLE_BASES:
        for type_name in registry.names(role):  # type: ignore[arg-type]
            reg = registry.get(role, type_name)  # type: ignore[arg-type]
            if reg is not None and reg.plugin in info:
                info[reg.plugin].registered.setdefault(role + "s", []).append(type_name)
    for (role, type_name), owners in registry.conflicts.items():
        for owner in owners:
            if owner in info:
                info[owner].registered.setdefault(role + "s", []).append(f"{type_name} (conflict)")
    _check_shared_config_models(registry)
    return Plugins(manager=manager, registry=registry, info=info)


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
            registry._by_role["destination"].pop(type_name, None)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
