"""`cdp privacy export IDENTIFIER [--out FILE]`: everything held about one person, as one JSON document."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import typer
from cdp_core.cli import common
from cdp_core.cli.common import EXIT_FAILED, ConfigOption
from cdp_core.config import Config
from cdp_core.store.transaction import write_transaction
from cdp_core.timeutil import utc_now
from sqlalchemy import Engine

from cdp_profiles.cli.privacy import privacy_app
from cdp_profiles.cli.profiles import IDENTIFIER_HELP
from cdp_profiles.cli.reading import open_for_reading
from cdp_profiles.identifiers import IdentifierNormalizer
from cdp_profiles.identity import IdentityConfig, identity_section
from cdp_profiles.privacy.audit import new_request_id, write_request
from cdp_profiles.privacy.config import privacy_of
from cdp_profiles.privacy.export import counts, export_document
from cdp_profiles.privacy.identifiers import asked_for
from cdp_profiles.privacy.keys import KeyProblem, PrivacyKey
from cdp_profiles.privacy.person import person_of
from cdp_profiles.store.queries import lookup_profile


def privacy_key(cfg: Config) -> PrivacyKey | None:
    """The configured privacy key, None when none is set; a key too short is an error (exit 2)."""
    secret = privacy_of(cfg.sections).key
    if secret is None:
        return None
    try:
        return PrivacyKey.of(secret)
    except KeyProblem as exc:
        common.fail(str(exc))


def subject_hash(engine: Engine, key: PrivacyKey | None, asked: str, identity: IdentityConfig) -> str | None:
    """The keyed hash of the identifier asked for (``TYPE:VALUE``, a bare email or phone, ``profile:ID``),
    normalized as the store does; None without a key or when it does not normalize."""
    if key is None:
        return None
    type_name, value = asked_for(asked, IdentifierNormalizer(identity))
    return key.hash_identifier(type_name, value) if value else None


@privacy_app.command("export")
def export_command(
    identifier: str = typer.Argument(..., help=IDENTIFIER_HELP),
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write the document to FILE (mode 0600, replaced atomically), not stdout."
    ),
    config: Path = ConfigOption,
) -> None:
    """Everything held about one person, as one JSON document (docs/privacy.md, "Export"); audited."""
    cfg, loaded = common.load(config)
    key = privacy_key(cfg)
    identity = identity_section(cfg)
    target = out.expanduser().resolve() if out is not None else None
    if target is not None and not target.parent.is_dir():
        common.fail(f"--out {out}: folder {target.parent} does not exist")
    engine = open_for_reading(cfg, loaded)
    tmp: str | None = None
    try:
        with common.store_errors(cfg):
            found = lookup_profile(engine, identifier, identity)
            subject = subject_hash(engine, key, found.matched or identifier, identity)
            now = utc_now()
            if found.profile_id is None:
                with write_transaction(engine) as conn:
                    write_request(conn, "export", "not_found", created_at=now, finished_at=now, subject=subject)
                common.fail(f"no profile for {identifier}" + (f" ({found.problem})" if found.problem else ""), EXIT_FAILED)
            with write_transaction(engine) as conn:
                if conn.dialect.name == "postgresql":  # every section from one snapshot
                    conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                person = person_of(conn, found.profile_id)
                request_id = new_request_id()
                normalize = IdentifierNormalizer(identity)
                document = {"request_id": request_id, **export_document(conn, person, now, normalize)}
                text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
                if target is not None:
                    tmp = _staged(target, text)
                details = {**counts(document), "to": "file" if target else "stdout"}
                write_request(conn, "export", "done", created_at=now, finished_at=utc_now(), subject=subject,
                              details=details, request_id=request_id)  # fmt: skip
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
    if target is not None and tmp is not None:
        os.replace(tmp, target)
        common.stderr.print(f"exported profile {person.profile_id} to {target}", highlight=False, markup=False)
    else:
        sys.stdout.write(text)
    if key is None:
        common.stderr.print("note: no privacy key ([privacy] key): the audit row records this export without its subject",
                            highlight=False, markup=False)  # fmt: skip


def _staged(target: Path, text: str) -> str:
    """``text`` in a temporary file next to ``target`` (mode 0600, flushed to disk); its path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        os.chmod(tmp, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp
