"""A plugin package's public names, imported on first use: ``__getattr__ = lazy_exports(__name__, {...})``.

``cdp`` imports every plugin's package when it starts, to ask for its commands (``cdp --help``
among them); a package that imports its source and destination modules at the top brings
the HTTP client and more into every command. With ``lazy_exports`` the package keeps its
public names (``from cdp_acme import AcmeSource`` works as before) and imports their modules
when a name is first used (docs/writing-plugins.md, "Keep the plugin module light").
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps a public name to the module defining it.

    A name not in ``exports`` that is a submodule of ``package`` is imported as such.
    """

    def __getattr__(name: str) -> Any:
        where = exports.get(name)
        if where is not None:
            return getattr(importlib.import_module(where), name)
        if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
