"""cdp: a plugin-based customer-data connector framework.

The public surface for plugin authors is re-exported here.
"""

import pluggy

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
