"""`cdp privacy suppress|unsuppress IDENTIFIER`: the suppression list, one identifier at a time (docs/privacy.md).

Both need ``[privacy] key``: the list holds keyed hashes. Each writes one ``privacy_requests``
row (the audit log: the keyed hash of the identifier, the reason with the identifier scrubbed
out). Neither prints the identifier back, nor needs the store to have held the person.
"""

from __future__ import annotations

from pathlib import Path

import typer
from cdp_core.cli import common
from cdp_core.cli.common import EXIT_FAILED, ConfigOption, JsonOption, emit_json, stdout
from cdp_core.config import Config
from cdp_core.keypaths import did_you_mean
from cdp_core.store.transaction import write_transaction
from cdp_core.timeutil import utc_now
from sqlalchemy import Engine

from cdp_profiles.cli.privacy import privacy_app
from cdp_profiles.identifiers import IdentifierNormalizer
from cdp_profiles.identity import identity_section, known_identifier_types
from cdp_profiles.privacy.audit import new_request_id, write_request
from cdp_profiles.privacy.config import privacy_of
from cdp_profiles.privacy.keys import KeyProblem, PrivacyKey
from cdp_profiles.privacy.suppression import (
    Named,
    NotAnIdentifier,
    add_suppressions,
    parse_identifier,
    remove_suppression,
    scrub,
)

IDENTIFIER_HELP = (
    "TYPE:VALUE (email:ADDRESS, phone:NUMBER, hubspot_id:42...), or a bare email or phone; "
    "normalized as the store normalizes it."
)
ReasonOption = typer.Option(None, "--reason", help="Why (kept in the audit log, the identifier scrubbed out).")


def _key(config: Config) -> PrivacyKey:
    try:
        return PrivacyKey.of(privacy_of(config.sections).key)
    except KeyProblem as exc:
        common.fail(str(exc))


def _named(identifier: str, engine: Engine, config: Config) -> Named:
    try:
        return parse_identifier(identifier, IdentifierNormalizer(identity_section(config)))
    except NotAnIdentifier as exc:
        common.fail(f"cannot read the identifier given: {exc}")


@privacy_app.command("suppress")
def suppress(
    identifier: str = typer.Argument(..., help=IDENTIFIER_HELP),
    reason: str | None = ReasonOption,
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Drop every record carrying this identifier from every sync from now on: never stored, never quarantined.

    Works for someone the store never held. The list keeps a keyed hash, not the identifier.
    """
    cfg, loaded = common.load(config)
    key = _key(cfg)
    engine = common.open_store(cfg, loaded, create=True).engine
    try:
        with common.store_errors(cfg):
            named = _named(identifier, engine, cfg)
            known = known_identifier_types(cfg)
            if known is not None and named.type not in known:
                listed = sorted(known)
                common.fail(
                    f"unknown identifier type {named.type!r}{did_you_mean(named.type, listed)}; "
                    f"the configured streams carry: {', '.join(listed)}"
                )
            now = utc_now()
            subject = key.hash_identifier(named.type, named.value)
            request = new_request_id()
            try:
                with write_transaction(engine) as conn:
                    added = add_suppressions(conn, key, [(named.type, named.value)], request, now)
                    details = {"suppressions_added": added}
                    write_request(conn, "suppress", "done", created_at=now, finished_at=now, subject=subject,
                                  reason=scrub(reason, identifier, named.value), details=details, request_id=request)
            except KeyProblem as exc:  # the list was written under another key: nothing was written
                common.fail(str(exc))
    finally:
        engine.dispose()
    if as_json:
        emit_json({"request": request, "kind": "suppress", "type": named.type, "added": bool(added)})
        return
    what = "suppressed" if added else "already suppressed"
    stdout.print(
        f"{what}: the {named.type} given (request {request[:8]}); records carrying it are dropped from every sync",
        highlight=False, markup=False,
    )  # fmt: skip


@privacy_app.command("unsuppress")
def unsuppress(
    identifier: str = typer.Argument(..., help=IDENTIFIER_HELP + " The identifier itself: the list holds only hashes."),
    reason: str | None = ReasonOption,
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Lift the suppression of one identifier: its records are stored again from the next sync."""
    cfg, loaded = common.load(config)
    key = _key(cfg)
    engine = common.open_store(cfg, loaded, create=False).engine
    try:
        with common.store_errors(cfg):
            named = _named(identifier, engine, cfg)
            now = utc_now()
            subject = key.hash_identifier(named.type, named.value)
            with write_transaction(engine) as conn:
                removed = remove_suppression(conn, key, named)
                outcome = "done" if removed else "not_found"
                details = {"suppressions_removed": removed}
                request = write_request(conn, "unsuppress", outcome, created_at=now, finished_at=now, subject=subject,
                                        reason=scrub(reason, identifier, named.value), details=details)
    finally:
        engine.dispose()
    if not removed:
        common.fail(f"the {named.type} given is not suppressed (nothing removed)", EXIT_FAILED)
    if as_json:
        emit_json({"request": request, "kind": "unsuppress", "type": named.type, "removed": True})
        return
    stdout.print(
        f"unsuppressed: the {named.type} given (request {request[:8]}); its records are stored again from the next sync",
        highlight=False, markup=False,
    )  # fmt: skip
