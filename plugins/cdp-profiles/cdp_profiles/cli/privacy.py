"""`cdp privacy`: forget, suppress and export a person; the state of forget requests; retention (docs/privacy.md).

Each command lives in its own module (cli/privacy_*.py) and adds itself to :data:`privacy_app`;
importing this module imports them all.
"""

from __future__ import annotations

import typer

privacy_app = typer.Typer(
    help="Privacy: forget, suppress and export a person; forget requests at each destination; retention.",
    no_args_is_help=True,
)

from cdp_profiles.cli import (  # noqa: F401 - each adds its commands
    privacy_export,
    privacy_forget,
    privacy_log,
    privacy_purge,
    privacy_status,
    privacy_suppress,
)
