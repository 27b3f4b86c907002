"""``cdp privacy status`` and ``cdp privacy retry``: forget requests and their state at each destination."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from cdp_core.cli import common
from cdp_core.cli.common import ConfigOption, JsonOption, emit_json, stdout
from cdp_core.timeutil import as_utc, utc_now
from rich.table import Table
from rich.text import Text
from sqlalchemy import select, update

from cdp_profiles.cli.privacy import privacy_app
from cdp_profiles.privacy.targets import FAILED, PENDING, UNSUPPORTED
from cdp_profiles.store import tables

_requests, _targets = tables.privacy_requests, tables.privacy_targets
BY_HAND = "not supported: erase the person at this vendor by hand"
LimitOption = typer.Option(50, "--limit", min=1, help="The newest N requests.")


def _when(value: datetime | None) -> str | None:
    return as_utc(value).isoformat(timespec="seconds") if value is not None else None


def status_rows(engine: Any, limit: int = 50) -> list[dict[str, Any]]:
    """The newest requests, each with its targets: no identifier, only states and the vendors' answers."""
    with engine.connect() as conn:
        requests = conn.execute(
            select(_requests.c.id, _requests.c.kind, _requests.c.created_at, _requests.c.finished_at,
                   _requests.c.outcome)
            .order_by(_requests.c.created_at.desc(), _requests.c.id)
            .limit(limit)
        ).all()  # fmt: skip
        ids = [r.id for r in requests]
        targets: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if ids:
            rows = conn.execute(
                select(_targets.c.request_id, _targets.c.destination, _targets.c.state, _targets.c.attempts,
                       _targets.c.next_attempt_at, _targets.c.answer)
                .where(_targets.c.request_id.in_(ids))
                .order_by(_targets.c.request_id, _targets.c.destination)
            )  # fmt: skip
            for t in rows:
                targets[t.request_id].append(
                    {"destination": t.destination, "state": t.state, "attempts": t.attempts,
                     "next_attempt_at": _when(t.next_attempt_at),
                     "answer": BY_HAND if t.state == UNSUPPORTED else t.answer}
                )  # fmt: skip
    return [
        {"id": r.id, "kind": r.kind, "created_at": _when(r.created_at), "finished_at": _when(r.finished_at),
         "outcome": r.outcome, "destinations": targets.get(r.id, [])}
        for r in requests
    ]  # fmt: skip


@privacy_app.command("status")
def status(config: Path = ConfigOption, as_json: bool = JsonOption, limit: int = LimitOption) -> None:
    """Privacy requests (newest first) and, for a forget, its state at each destination."""
    from cdp_profiles.cli.reading import open_for_reading

    cfg, loaded = common.load(config)
    engine = open_for_reading(cfg, loaded)
    try:
        with common.store_errors(cfg):
            rows = status_rows(engine, limit)
    finally:
        engine.dispose()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        common.stderr.print("no privacy requests yet")
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("request", "kind", "created", "outcome", "destination", "state", "attempts", "next attempt",
                   "answer"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for row in rows:
        head = [row["id"], row["kind"], row["created_at"], row["outcome"]]
        if not row["destinations"]:
            table.add_row(*(Text(str(v or "")) for v in head), "", "", "", "", "")
        for number, t in enumerate(row["destinations"]):
            cells = head if number == 0 else ["", "", "", ""]
            values = [*cells, t["destination"], t["state"], t["attempts"], t["next_attempt_at"], t["answer"]]
            table.add_row(*(Text("" if v is None else str(v)) for v in values))
    stdout.print(table)


@privacy_app.command("retry")
def retry(
    request_id: str = typer.Argument(..., help="The request's id (cdp privacy status)."),
    destination: str | None = typer.Option(None, "--destination", help="Only this destination connector."),
    config: Path = ConfigOption,
) -> None:
    """Arm a forget request's failed targets again: they are asked at the next delivery (at once, here)."""
    from cdp_profiles.privacy.delivery import deliver_due
    from cdp_profiles.privacy.keys import KeyProblem
    from cdp_profiles.store.schema import PROFILES

    cfg, loaded = common.load(config)
    histories = [*loaded.migrations, *([] if PROFILES in loaded.migrations else [PROFILES])]
    engine = common.open_store(cfg, loaded, create=False, histories=histories).engine
    try:
        with common.store_errors(cfg):
            now = utc_now()
            where = [_targets.c.request_id == request_id, _targets.c.state == FAILED, _targets.c.payload.is_not(None)]
            if destination is not None:
                where.append(_targets.c.destination == destination)
            with engine.begin() as conn:
                known = conn.execute(select(_requests.c.id).where(_requests.c.id == request_id)).first()
                if known is None:
                    common.fail(f"no privacy request {request_id!r} (see cdp privacy status)")
                armed = conn.execute(
                    update(_targets)
                    .where(*where)
                    .values(state=PENDING, attempts=0, next_attempt_at=now, updated_at=now)
                ).rowcount
                if armed:
                    conn.execute(
                        update(_requests).where(_requests.c.id == request_id).values(outcome=PENDING, finished_at=None)
                    )
            if not armed:
                what = f" at {destination!r}" if destination else ""
                common.fail(f"request {request_id!r} has no failed target{what} that can be asked again")
            try:
                result = deliver_due(cfg, engine, now, request_id=request_id)
            except KeyProblem as exc:
                common.fail(str(exc))
    finally:
        engine.dispose()
    stdout.print(result.summary())
