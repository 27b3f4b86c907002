"""Alembic environment for the profile product's history (loaded by alembic, never imported)."""

from cdp_core.store.migrate_env import run

run()
