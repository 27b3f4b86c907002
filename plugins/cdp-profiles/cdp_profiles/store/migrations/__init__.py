"""The profile product's alembic migrations, shipped inside the package (see docs/store.md)."""
