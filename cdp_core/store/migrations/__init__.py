"""The store's alembic migrations, shipped inside the package.

``env.py`` and ``versions/`` are read by alembic through
:func:`cdp_core.store.schema.alembic_config`; nobody needs an ``alembic.ini``.
``python -m cdp_core.store.migrations.revision "message"`` writes a new revision
(see docs/store.md).
"""
