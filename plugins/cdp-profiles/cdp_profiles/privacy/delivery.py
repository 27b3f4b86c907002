"""Carrying forget requests to the destinations: each due ``privacy_targets`` row, asked of its vendor.

Called right after a forget (``deliver_due(config, engine, now, request_id=...)``) and by
the scheduler's ``privacy-forget`` job (:data:`PRIVACY_FORGET`); see docs/privacy.md,
"At the destinations".

A target is due when it is ``pending`` and its ``next_attempt_at`` has come. Each
destination connector is built as the runner builds it (its class, its connector
config, a context with the HTTP client factory), opened once per pass, asked to
forget each due person (:meth:`cdp_core.Destination.forget`) and closed. The outcome:

- ``done``: the sealed payload is cleared (nothing of the person is left);
- ``retry`` (or an exception, with its redacted text): ``attempts + 1`` and the next
  attempt after an exponential backoff (:func:`backoff`: 5 minutes doubling, at most
  12 hours, at least what the vendor's ``Retry-After`` asked); after
  :data:`MAX_ATTEMPTS` the target is ``failed``;
- ``failed``: the vendor refused for good. The sealed payload is **kept**: it is
  readable only with the privacy key, and ``cdp privacy retry`` needs it to ask
  again once the operator has fixed the cause (a missing scope, a wrong list id).

A connector no longer in connectors.toml (or no longer able to forget) is ``failed``
with that answer. When no target of a request is pending any more, the request's
outcome is set (``failed`` if any target failed, else ``done``) with ``finished_at``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cdp_core.base import Destination
from cdp_core.config import Config
from cdp_core.forget import ForgetResult, ForgetState, ForgetSubject, scrub
from cdp_core.http import HttpFactory
from cdp_core.http.factory import default_factory
from cdp_core.jobs import Job
from cdp_core.runner import connector_context, describe_error
from cdp_core.timeutil import as_utc
from sqlalchemy import Engine, and_, case, func, select, update

from cdp_profiles.privacy.config import privacy_of
from cdp_profiles.privacy.keys import PrivacyKey
from cdp_profiles.privacy.targets import DONE, FAILED, PENDING
from cdp_profiles.store import tables

log = logging.getLogger("cdp.privacy")
_targets, _requests = tables.privacy_targets, tables.privacy_requests

FIRST_WAIT = timedelta(minutes=5)
"""The wait after the first failed attempt; each further one doubles it."""
LONGEST_WAIT = timedelta(hours=12)
MAX_ATTEMPTS = 12
"""Attempts before a target is ``failed``: about three days of a vendor failing (5 min doubling, then 12 h)."""
SCHEDULE = "*/10 * * * *"
"""The ``privacy-forget`` job: every ten minutes."""


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (1-based): 5 min doubling, at most 12 h,
    never less than the vendor's ``Retry-After``."""
    wait = min(LONGEST_WAIT, FIRST_WAIT * 2 ** max(0, attempts - 1))
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    return wait


@dataclass
class Delivered:
    """What one delivery pass did."""

    states: dict[tuple[str, str], str] = field(default_factory=dict)
    """(request id, destination) -> the target's state after this pass (pending, done, failed)."""
    settled: dict[str, str] = field(default_factory=dict)
    """Request id -> the outcome set in this pass (done, failed)."""

    def summary(self) -> str:
        counts: dict[str, int] = defaultdict(int)
        for state in self.states.values():
            counts["retrying" if state == PENDING else state] += 1
        text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing due"
        return f"forget at destinations: {text}; requests settled: {len(self.settled)}"


def deliver_due(
    config: Config,
    engine: Engine,
    now: datetime,
    *,
    request_id: str | None = None,
    http: HttpFactory | None = None,
) -> Delivered:
    """Ask every destination whose target is due (``pending``, ``next_attempt_at <= now``) to forget its person.

    :param request_id: only this request's targets (right after a forget); None: every due one.
    :param http: the HTTP client factory (default: the process's, bound per connector as the runner does).
    Records each outcome in ``privacy_targets`` and settles each request once no target is pending.
    Never raises for a vendor's answer; without a privacy key while targets are due it raises
    :class:`~cdp_profiles.privacy.keys.KeyProblem`.
    """
    now = as_utc(now)
    where = and_(_targets.c.state == PENDING, _targets.c.next_attempt_at <= now)
    if request_id is not None:
        where = and_(where, _targets.c.request_id == request_id)
    with engine.connect() as conn:
        due = conn.execute(
            select(_targets.c.request_id, _targets.c.destination, _targets.c.attempts, _targets.c.payload)
            .where(where)
            .order_by(_targets.c.destination, _targets.c.next_attempt_at, _targets.c.request_id)
        ).all()
    done = Delivered()
    if due:
        key = PrivacyKey.of(privacy_of(config.sections).key)
        by_destination: dict[str, list[Any]] = defaultdict(list)
        for row in due:
            by_destination[row.destination].append(row)
        factory = http or default_factory()
        for name, rows in by_destination.items():
            outcomes = _deliver_to(config, factory, key, name, rows)
            _record(engine, name, rows, outcomes, now, done)
    done.settled = settle(engine, now)
    return done


def _deliver_to(
    config: Config, factory: HttpFactory, key: PrivacyKey, name: str, rows: list[Any]
) -> list[ForgetResult]:
    """One destination connector, opened once, asked for each due person; an outcome per row."""
    connector = config.connectors.get(name)
    if connector is None or "destination" not in connector.roles:
        if name in config.broken_connectors or name in config.unavailable:
            why = "; ".join(config.unavailable.get(name, [])) or "its config has problems: see cdp validate"
            answer = f"connector {name!r} cannot be built now ({why})"
            return [ForgetResult(state=ForgetState.retry, answer=answer)] * len(rows)
        answer = f"destination connector {name!r} is no longer in connectors.toml: act at the vendor by hand"
        return [ForgetResult(state=ForgetState.failed, answer=answer)] * len(rows)
    cls = connector.roles["destination"].cls
    if not getattr(cls, "supports_forget", False):
        answer = f"connector {name!r} ({connector.type}) can no longer forget a person: act at the vendor by hand"
        return [ForgetResult(state=ForgetState.failed, answer=answer)] * len(rows)
    context = connector_context(config, name, {"http": factory})
    empty = ForgetSubject()
    try:
        destination: Destination = cls(connector.config, context, None)
        destination.open()
    except Exception as exc:  # noqa: BLE001 - a plugin failing to start: asked again later
        answer = f"connector {name!r} could not be opened: {describe_error(exc, config.redact)}"
        return [ForgetResult(state=ForgetState.retry, answer=scrub(answer, empty))] * len(rows)
    results: list[ForgetResult] = []
    try:
        for row in rows:
            results.append(_forget_one(destination, key, row.payload, config))
    finally:
        try:
            destination.close()
        except Exception as exc:  # noqa: BLE001 - the answers are in; a failing close is only logged
            log.warning("connector %s: closing after forget failed: %s", name, describe_error(exc, config.redact))
    return results


def _forget_one(destination: Destination, key: PrivacyKey, payload: str | None, config: Config) -> ForgetResult:
    if not payload:
        return ForgetResult(state=ForgetState.failed, answer="nothing sealed to send (the payload was cleared)")
    try:
        subject = ForgetSubject.model_validate_json(key.unseal(payload))
    except Exception:  # noqa: BLE001 - another key, a damaged payload: nothing can be sent
        answer = "the sealed payload cannot be opened with the current privacy key (was the key changed?)"
        return ForgetResult(state=ForgetState.failed, answer=answer)
    try:
        result = destination.forget(subject)
        if not isinstance(result, ForgetResult):
            raise TypeError(f"forget() returned {type(result).__name__}, not a ForgetResult")
    except Exception as exc:  # noqa: BLE001 - counts as a passing failure, with its redacted text
        return ForgetResult(state=ForgetState.retry, answer=scrub(describe_error(exc, config.redact), subject))
    return result.model_copy(update={"answer": scrub(result.answer, subject)})


def _record(
    engine: Engine, name: str, rows: list[Any], outcomes: list[ForgetResult], now: datetime, done: Delivered
) -> None:
    """Write each target's outcome (one UPDATE per target: each is one vendor request, never one per record)."""
    with engine.begin() as conn:
        for row, result in zip(rows, outcomes, strict=True):
            attempts = row.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "answer": result.answer or None, "updated_at": now}
            if result.state is ForgetState.done:
                values.update(state=DONE, next_attempt_at=None, payload=None)
            elif result.state is ForgetState.retry and attempts < MAX_ATTEMPTS:
                values.update(state=PENDING, next_attempt_at=now + backoff(attempts, result.retry_after))
            else:  # refused, or retried MAX_ATTEMPTS times: the sealed payload stays for `cdp privacy retry`
                if result.state is ForgetState.retry:
                    values["answer"] = f"gave up after {attempts} attempts: {result.answer}"[:400]
                values.update(state=FAILED, next_attempt_at=None)
            conn.execute(
                update(_targets)
                .where(_targets.c.request_id == row.request_id, _targets.c.destination == name)
                .values(**values)
            )
            done.states[(row.request_id, name)] = values["state"]
            level = logging.INFO if values["state"] != FAILED else logging.WARNING
            log.log(level, "privacy request %s at %s: %s (%s)", row.request_id, name, values["state"], values["answer"])


def settle(engine: Engine, now: datetime) -> dict[str, str]:
    """Set the outcome of every unfinished forget request none of whose targets is pending; returns id -> outcome."""
    pending = func.sum(case((_targets.c.state == PENDING, 1), else_=0))
    failed = func.sum(case((_targets.c.state == FAILED, 1), else_=0))
    query = (
        select(_requests.c.id, failed.label("failed"))
        .join(_targets, _targets.c.request_id == _requests.c.id)
        .where(_requests.c.finished_at.is_(None), _requests.c.outcome == PENDING)
        .group_by(_requests.c.id)
        .having(pending == 0)
    )
    with engine.begin() as conn:
        outcomes = {row.id: FAILED if row.failed else DONE for row in conn.execute(query)}
        for outcome in (DONE, FAILED):
            ids = [i for i, o in outcomes.items() if o == outcome]
            if ids:
                conn.execute(
                    update(_requests)
                    .where(_requests.c.id.in_(ids), _requests.c.finished_at.is_(None))
                    .values(outcome=outcome, finished_at=now)
                )
    return outcomes


def forget_at_destinations(config: Any) -> str | None:
    """The ``privacy-forget`` job: deliver every due target (nothing to do without pending ones)."""
    from cdp_core.timeutil import utc_now

    from cdp_profiles.store.schema import job_store

    with job_store(config) as engine:
        return deliver_due(config, engine, utc_now()).summary()


PRIVACY_FORGET = Job(
    schedule=SCHEDULE,
    run=forget_at_destinations,
    description="ask destinations to forget the people forgotten in the store: pending requests, with backoff",
)
