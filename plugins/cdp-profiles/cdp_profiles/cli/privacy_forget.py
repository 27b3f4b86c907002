"""`cdp privacy forget IDENTIFIER`: delete everything held about a person, suppress them, tell the destinations."""

from __future__ import annotations

from pathlib import Path

import typer
from cdp_core.cli import common
from cdp_core.cli.common import EXIT_FAILED, ConfigOption, JsonOption, emit_json, stdout
from rich.table import Table

from cdp_profiles.cli.privacy import privacy_app
from cdp_profiles.cli.profiles import IDENTIFIER_HELP

_NOTES = {
    "pending": "asked, will be asked again: cdp privacy status",
    "done": "erased there",
    "failed": "refused: see cdp privacy status",
    "unsupported": "not supported: remove the person there by hand",
}


@privacy_app.command("forget")
def forget_command(
    identifier: str = typer.Argument(..., help=IDENTIFIER_HELP),
    reason: str | None = typer.Option(
        None, "--reason", help="Why (kept in the audit log without the person's identifiers), e.g. a ticket number."
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Forget a person: delete everything held about them, suppress their identifiers, tell every destination.

    One transaction deletes their profiles, identities, records of every kind, segment rows, merge-log, audience mirror and quarantine rows, and removes them from run texts; their identifiers go to the suppression list (keyed hashes) so no sync brings them back. Needs the privacy key (docs/privacy.md).
    """
    from cdp_core.timeutil import utc_now

    from cdp_profiles.cli.reading import open_for_reading
    from cdp_profiles.privacy.config import privacy_of
    from cdp_profiles.privacy.delivery import deliver_due
    from cdp_profiles.privacy.forget import NotFound, forget
    from cdp_profiles.privacy.keys import KeyProblem, PrivacyKey

    # Every connector checked (graphs=None): a destination whose settings cannot be loaded would
    # get no forget request at all, so a missing secret stops the forget before anything is deleted.
    cfg, loaded = common.load(config, graphs=None)
    try:
        key = PrivacyKey.of(privacy_of(cfg.sections).key)
    except KeyProblem as exc:
        common.fail(str(exc))
    engine = open_for_reading(cfg, loaded)
    try:
        with common.store_errors(cfg):
            report = forget(engine, cfg, identifier, key, reason=reason)
            if "pending" in report.destinations.values():  # ask them now; the scheduler's job retries
                delivered = deliver_due(cfg, engine, utc_now(), request_id=report.request_id)
                for (_, name), state in delivered.states.items():
                    report.destinations[name] = state
                report.outcome = delivered.settled.get(report.request_id, report.outcome)
    except NotFound as exc:
        common.fail(str(exc), EXIT_FAILED)
    except KeyProblem as exc:  # the suppression list was written under another key: nothing was deleted
        common.fail(str(exc))
    finally:
        engine.dispose()
    if as_json:
        emit_json(report.as_dict())
        return
    stdout.print(f"forgotten: request {report.request_id} ({report.outcome})")
    table = Table("table", "rows", box=None, pad_edge=False)
    for name, count in sorted(report.deleted.items()):
        table.add_row(name, f"{count} deleted")
    for name, count in sorted(report.scrubbed.items()):
        table.add_row(name, f"{count} rewritten")
    table.add_row("suppressions", f"{report.suppressed} added")
    stdout.print(table)
    if report.destinations:
        stdout.print("destinations:")
        for name, state in report.destinations.items():
            note = _NOTES.get(state, "")
            stdout.print(f"  {name}: {state} ({note})")
    problem = report.erasure.get("problem")
    if problem:
        common.stderr.print(f"[yellow]warning:[/] {problem}", highlight=False, soft_wrap=True)
