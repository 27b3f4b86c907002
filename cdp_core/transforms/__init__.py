"""Builtin transforms (registered through ``cdp_register_transforms`` like any plugin's).

docs/transforms.md is the reference of every type and its options.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from cdp_core import Register, hookimpl
from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_core.base import Transform
    from cdp_core.transforms.basic import Identify, Map, Rename, Select
    from cdp_core.transforms.compute import Derive, Filter
    from cdp_core.transforms.generalize import Discretize, Generalize
    from cdp_core.transforms.hashing import Hash
    from cdp_core.transforms.normalize import Normalize
    from cdp_core.transforms.validate import Validate

    TRANSFORMS: dict[str, type[Transform]]

_CLASSES = {
    **dict.fromkeys(("Identify", "Map", "Rename", "Select"), "cdp_core.transforms.basic"),
    **dict.fromkeys(("Derive", "Filter"), "cdp_core.transforms.compute"),
    **dict.fromkeys(("Discretize", "Generalize"), "cdp_core.transforms.generalize"),
    "Hash": "cdp_core.transforms.hashing",
    "Normalize": "cdp_core.transforms.normalize",
    "Validate": "cdp_core.transforms.validate",
}
_TYPES = {
    "rename": "Rename",
    "select": "Select",
    "map": "Map",
    "identify": "Identify",
    "normalize": "Normalize",
    "filter": "Filter",
    "hash": "Hash",
    "generalize": "Generalize",
    "discretize": "Discretize",
    "derive": "Derive",
    "validate": "Validate",
}
"""Type name (``[syncs.G.nodes.N] transform = "..."``) -> class name; ``TRANSFORMS`` maps it to the class."""


def _transforms() -> dict[str, Any]:
    return {type_name: getattr(import_module(_CLASSES[name]), name) for type_name, name in _TYPES.items()}


@hookimpl
def cdp_register_transforms(register: Register) -> None:
    for type_name, cls in _transforms().items():
        register(type_name, cls)


# The classes (and what they import: the expression parser, phone numbers) load on first use:
# importing a helper module of the package (``cdp_core.transforms.normalizers``) does not load them.
_lazy = lazy_exports(__name__, _CLASSES)


def __getattr__(name: str) -> Any:
    return _transforms() if name == "TRANSFORMS" else _lazy(name)


__all__ = [
    "TRANSFORMS",
    "Derive",
    "Discretize",
    "Filter",
    "Generalize",
    "Hash",
    "Identify",
    "Map",
    "Normalize",
    "Rename",
    "Select",
    "Validate",
]
