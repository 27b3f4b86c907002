"""The ``cdp`` command line (typer + rich). Exit codes: 0 success, 1 run failed, 2 usage or config error."""

from __future__ import annotations

from cdp_core.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
