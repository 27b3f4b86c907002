"""cdp: a plugin-based customer-data connector framework.

The public surface for plugin authors is re-exported here.
"""

from typing import TYPE_CHECKING

import pluggy

from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_core.base import (
        ConnectorContext,
        Destination,
        NoOptions,
        Page,
        PluginConfig,
        Source,
        Stream,
        Transform,
        TransformContext,
        WriteMode,
    )
    from cdp_core.forget import AudienceRow, ForgetResult, ForgetState, ForgetSubject
    from cdp_core.incremental import CursorValueError, Incremental
    from cdp_core.plugins import Register
    from cdp_core.records import Record, RecordKind, Rejected

# Imported on first use (``from cdp_core import Source`` works as before): the classes are
# pydantic models, and `cdp --help` imports this package without needing any of them.
__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            ("ConnectorContext", "Destination", "NoOptions", "Page", "PluginConfig", "Source", "Stream")
            + ("Transform", "TransformContext", "WriteMode"),
            "cdp_core.base",
        ),
        **dict.fromkeys(("AudienceRow", "ForgetResult", "ForgetState", "ForgetSubject"), "cdp_core.forget"),
        **dict.fromkeys(("CursorValueError", "Incremental"), "cdp_core.incremental"),
        "Register": "cdp_core.plugins",
        **dict.fromkeys(("Record", "RecordKind", "Rejected"), "cdp_core.records"),
    },
)

hookimpl = pluggy.HookimplMarker("cdp")
"""Mark a plugin's hook implementations: ``@cdp_core.hookimpl``."""

__version__ = "0.1.0"

__all__ = [
    "AudienceRow",
    "ConnectorContext",
    "CursorValueError",
    "Destination",
    "ForgetResult",
    "ForgetState",
    "ForgetSubject",
    "Incremental",
    "NoOptions",
    "Page",
    "PluginConfig",
    "Record",
    "RecordKind",
    "Register",
    "Rejected",
    "Source",
    "Stream",
    "Transform",
    "TransformContext",
    "WriteMode",
    "hookimpl",
]
