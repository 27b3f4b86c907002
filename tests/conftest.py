"""The core suite's fixtures: the plugin test kit, and its store databases (SQLite and PostgreSQL)."""

pytest_plugins = ["cdp_core.testing", "cdp_core.testing.databases"]
