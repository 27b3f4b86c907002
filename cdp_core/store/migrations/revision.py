"""Write a new store migration: ``python -m cdp_core.store.migrations.revision "add consents.channel" [--history NAME]``.

Change the models first, then run this. It brings a scratch SQLite database (or the
one given with ``--url``) to the current head of every history, lets alembic's
autogenerate compare the chosen history's tables with its models, and writes
``versions/<prefix>NNNN_<slug>.py`` with the next number into that history's folder.
``--history`` names the owner: ``cdp-core`` (the system tables, the default) or a
plugin that registered migrations (``cdp plugins`` lists them). Read the result before
committing it: autogenerate does not see renames (it writes drop + add, which loses
data) and knows nothing of data migrations. ``--empty`` writes a revision with empty
``upgrade``/``downgrade`` for hand-written ones.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory

from cdp_core.plugins import load_plugins
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import KERNEL, History, create_schema, migration_transaction


def next_revision_id(history: History) -> str:
    """The next number of the history's revisions, with the prefix its ids carry (``k0002``, ``0008``)."""
    script = ScriptDirectory.from_config(history.alembic_config())
    numbered = [re.fullmatch(r"([a-z]*)(\d+)", rev.revision) for rev in script.walk_revisions()]
    found = [m for m in numbered if m]
    prefix = found[0].group(1) if found else ""
    return f"{prefix}{max((int(m.group(2)) for m in found), default=0) + 1:04d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cdp_core.store.migrations.revision", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("message", help="what the revision does, e.g. 'add consents.channel'")
    parser.add_argument("--history", default=KERNEL.name, help="whose migrations: cdp-core or a plugin's name")
    parser.add_argument("--url", help="database to compare against (default: a scratch SQLite database at head)")
    parser.add_argument("--empty", action="store_true", help="write an empty revision instead of autogenerating")
    args = parser.parse_args(argv)

    histories = {KERNEL.name: KERNEL, **{h.name: h for h in load_plugins().migrations}}
    history = histories.get(args.history)
    if history is None:
        parser.error(f"no migration history {args.history!r}; histories: {', '.join(sorted(histories))}")
    rev_id = next_revision_id(history)
    if args.empty:
        script = command.revision(history.alembic_config(), args.message, rev_id=rev_id)
        print(f"wrote {_path(script)}")
        return 0

    with tempfile.TemporaryDirectory(prefix="cdp-migration-") as scratch:
        engine = make_engine(args.url or f"sqlite:///{Path(scratch) / 'head.sqlite'}")
        try:
            create_schema(engine, *histories.values())  # the comparison must start from head
            found: list[Any] = []

            def keep_nonempty(context: Any, revision: Any, directives: list[Any]) -> None:
                if directives[0].upgrade_ops.is_empty():
                    directives[:] = []
                else:
                    found.append(True)

            with migration_transaction(engine) as conn:
                config = history.alembic_config(conn)
                config.attributes["process_revision_directives"] = keep_nonempty
                script = command.revision(config, args.message, autogenerate=True, rev_id=rev_id)
        finally:
            engine.dispose()
    if not found:
        print("the models and the migrations agree: nothing to generate (--empty writes a blank revision)")
        return 1
    print(f"wrote {_path(script)}: review it (renames come out as drop + add) before committing")
    return 0


def _path(script: Any) -> str:
    scripts = script if isinstance(script, list) else [script]
    return ", ".join(str(s.path) for s in scripts if s is not None)


if __name__ == "__main__":
    sys.exit(main())
