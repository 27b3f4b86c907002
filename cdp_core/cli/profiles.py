"""`cdp profiles` commands (registered on the shared app)."""

from __future__ import annotations

from cdp_core.cli.app import app  # noqa: F401
