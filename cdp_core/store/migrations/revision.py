"""Write a new store migration: ``python -m cdp_core.store.migrations.revision "add consents.channel"``.

Change the models first (cdp_core/store/models.py or profile_models.py), then run
this. It brings a scratch SQLite database (or the one given with ``--url``) to
the current head, lets alembic's autogenerate compare it with the models, and
writes ``versions/NNNN_<slug>.py`` with the next number. Read the result before
committing it: autogenerate does not see renames (it writes drop + add, which
loses data) and knows nothing of data migrations. ``--empty`` writes a revision
with empty ``upgrade``/``downgrade`` for hand-written ones.
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

from cdp_core.store.engine import make_engine
from cdp_core.store.schema import alembic_config, create_schema, migration_transaction


def next_revision_id() -> str:
    script = ScriptDirectory.from_config(alembic_config())
    numbers = [int(rev.revision) for rev in script.walk_revisions() if re.fullmatch(r"\d+", rev.revision)]
    return f"{max(numbers, default=0) + 1:04d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cdp_core.store.migrations.revision", description=__doc__.split("\n")[0]
    )
    parser.add_argument("message", help="what the revision does, e.g. 'add consents.channel'")
    parser.add_argument("--url", help="database to compare against (default: a scratch SQLite database at head)")
    parser.add_argument("--empty", action="store_true", help="write an empty revision instead of autogenerating")
    args = parser.parse_args(argv)

    rev_id = next_revision_id()
    if args.empty:
        script = command.revision(alembic_config(), args.message, rev_id=rev_id)
        print(f"wrote {_path(script)}")
        return 0

    with tempfile.TemporaryDirectory(prefix="cdp-migration-") as scratch:
        engine = make_engine(args.url or f"sqlite:///{Path(scratch) / 'head.sqlite'}")
        try:
            create_schema(engine)  # the comparison must start from head
            found: list[Any] = []

            def keep_nonempty(context: Any, revision: Any, directives: list[Any]) -> None:
                if directives[0].upgrade_ops.is_empty():
                    directives[:] = []
                else:
                    found.append(True)

            with migration_transaction(engine) as conn:
                config = alembic_config(conn)
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
