"""The kernel's alembic migrations (the system tables), shipped inside the package.

``env.py`` and ``versions/`` are read by alembic through
:meth:`cdp_core.store.schema.History.alembic_config`; nobody needs an ``alembic.ini``.
``python -m cdp_core.store.migrations.revision "message"`` writes a new revision
(see docs/store.md).
"""
