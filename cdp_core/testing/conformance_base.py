"""What every conformance suite of the kit shares: the plugin under test and the checks of what it makes.

:class:`PluginConformance` is the base of the suites (source, transform, destination and
webhook): it holds the plugin, registers it with the builtins, finds the class it registers
under ``type_name`` for ``role``, and tests that registration and the class's config model.
The functions are the checks more than one suite applies: a config model that refuses
unknown keys (:func:`check_config_model`), a record's identifiers (:func:`identifiers_problem`),
and a source built from its options (:func:`new_source`). A plugin's tests subclass a suite,
not this base. See docs/testing.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from cdp_core.base import ConnectorContext, PluginConfig, Source
from cdp_core.plugins import Plugins, Role
from cdp_core.records import Record
from cdp_core.testing.helpers import plugin_name

__all__ = ["UNKNOWN_KEY", "PluginConformance", "check_config_model", "identifiers_problem", "new_source"]

UNKNOWN_KEY = "__cdp_conformance_unknown_key__"
"""A key no config model knows: each model must refuse it."""


def check_config_model(model: object, what: str) -> None:
    """Assert ``model`` subclasses PluginConfig and refuses unknown keys."""
    assert isinstance(model, type) and issubclass(model, PluginConfig), f"{what} must subclass cdp_core.PluginConfig"
    assert model.model_config.get("extra") == "forbid", f"{what} must forbid unknown keys (extra='forbid')"


class PluginConformance:
    """What every suite shares: the plugin, its registration and its config model."""

    plugin: object
    """The plugin object: a module or an instance with ``@cdp_core.hookimpl`` functions."""
    plugin_name: ClassVar[str | None] = None
    """The name to register it under; default the module name."""
    type_name: ClassVar[str]
    """The type name the plugin registers the class under."""
    role: ClassVar[Role]

    @pytest.fixture
    def conformance_plugins(self, register_plugin: Callable[..., Plugins]) -> Plugins:
        """A fresh manager with the builtins and ``plugin``."""
        return register_plugin(self.plugin, self.plugin_name)

    @pytest.fixture
    def plugin_class(self, conformance_plugins: Plugins) -> type:
        """The class registered under ``type_name``; fails the test if there is none."""
        reg = conformance_plugins.registry.get(self.role, self.type_name)
        if reg is None:
            pytest.fail(self._not_registered(conformance_plugins), pytrace=False)
        return reg.cls

    def _registered_name(self, plugins: Plugins) -> str:
        return plugins.manager.get_name(self.plugin) or self.plugin_name or plugin_name(self.plugin)

    def _not_registered(self, plugins: Plugins) -> str:
        name = self._registered_name(plugins)
        info = plugins.info.get(name)
        if info is not None and info.status != "ok":
            return f"plugin {name!r} is {info.status}: {info.error}"
        conflict = plugins.registry.conflict_message(self.role, self.type_name)
        if conflict:
            return conflict
        known = ", ".join(plugins.registry.names(self.role)) or "none"
        return f"no {self.role} type {self.type_name!r} is registered (known {self.role}s: {known})"

    def test_registered(self, conformance_plugins: Plugins) -> None:
        """The plugin loads cleanly and registers ``type_name`` itself."""
        name = self._registered_name(conformance_plugins)
        reg = conformance_plugins.registry.get(self.role, self.type_name)
        assert reg is not None, self._not_registered(conformance_plugins)
        info = conformance_plugins.info[name]
        assert info.status == "ok", f"plugin {name!r} is {info.status}: {info.error}"
        assert reg.plugin == name, f"{self.role} {self.type_name!r} is registered by {reg.plugin!r}, not by {name!r}"

    def test_config_model(self, plugin_class: type) -> None:
        """``config_model`` subclasses PluginConfig and refuses unknown keys."""
        model = plugin_class.config_model  # type: ignore[attr-defined]
        check_config_model(model, f"{plugin_class.__name__}.config_model")
        with pytest.raises(ValidationError):
            model.model_validate({**self._config_dict(), UNKNOWN_KEY: 1})

    def test_config_validates(self, plugin_class: type) -> None:
        """The configured options are valid for the config model."""
        plugin_class.config_model.model_validate(self._config_dict())  # type: ignore[attr-defined]

    def _config_dict(self) -> dict[str, Any]:
        return dict(getattr(self, "config", {}))


def identifiers_problem(record: Record) -> str | None:
    """What is wrong with a record's identifiers, or None: each value a non-empty text without surrounding
    blanks; several values of a type a list without repeats (emails compared case-insensitively)."""
    for type_name, value in record.identifiers.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list):
            return f"identifiers.{type_name}: {value!r} is neither a text nor a list of texts"
        for item in values:
            if not isinstance(item, str) or not item.strip():
                return f"identifiers.{type_name}: {item!r} is no value (an empty text, or not a text)"
            if item != item.strip():
                return f"identifiers.{type_name}: {item!r} has blanks around it"
        folded = [v.casefold() if type_name == "email" else v for v in values]
        if len(set(folded)) != len(folded):
            return f"identifiers.{type_name}: {values!r} repeats a value"
    return None


def new_source(plugin_class: type, config: dict[str, Any], context: ConnectorContext) -> Source:
    """A new instance of a source class, of ``config`` validated by its config model."""
    options = plugin_class.config_model.model_validate(config)  # type: ignore[attr-defined]
    source = plugin_class(options, context)
    assert isinstance(source, Source), f"{plugin_class.__name__} is not a cdp_core.Source"
    return source
