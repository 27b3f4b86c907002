"""Builtin transforms (registered through ``cdp_register_transforms`` like any plugin's).

docs/transforms.md is the reference of every type and its options.
"""

from __future__ import annotations

from cdp_core import Register, hookimpl
from cdp_core.base import Transform
from cdp_core.transforms.basic import Identify, Map, Rename, Select
from cdp_core.transforms.compute import Derive, Filter
from cdp_core.transforms.generalize import Discretize, Generalize
from cdp_core.transforms.hashing import Hash
from cdp_core.transforms.normalize import Normalize
from cdp_core.transforms.validate import Validate

TRANSFORMS: dict[str, type[Transform]] = {
    "rename": Rename,
    "select": Select,
    "map": Map,
    "identify": Identify,
    "normalize": Normalize,
    "filter": Filter,
    "hash": Hash,
    "generalize": Generalize,
    "discretize": Discretize,
    "derive": Derive,
    "validate": Validate,
}
"""Type name (``[syncs.G.nodes.N] transform = "..."``) -> class."""


@hookimpl
def cdp_register_transforms(register: Register) -> None:
    for type_name, cls in TRANSFORMS.items():
        register(type_name, cls)


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
