"""Alembic environment for the kernel's history (loaded by alembic, never imported).

Every history's ``env.py`` calls :func:`cdp_core.store.migrate_env.run`, which reads the
running :class:`~cdp_core.store.schema.History` from the alembic config.
"""

from cdp_core.store.migrate_env import run

run()
