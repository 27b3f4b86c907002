"""Hook specifications of cdp, grouped by phase.

Every hook carries the ``cdp_`` prefix. A plugin implements any subset of them
with ``@cdp_core.hookimpl``; docs/hooks.md documents each one (a test checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from cdp_core.plugins import Register
    from cdp_core.records import Rejected
    from cdp_core.runinfo import RunInfo

hookspec = pluggy.HookspecMarker("cdp")

# -- registration: called once per plugin manager, builtins first -----------------


@hookspec
def cdp_register_sources(register: Register) -> None:
    """Register source classes under type names.

    :param register: call ``register(type_name, SourceClass)`` for each source;
        ``type_name`` is what ``[connectors.X] type = "..."`` names.
    """


@hookspec
def cdp_register_transforms(register: Register) -> None:
    """Register transform classes under type names.

    :param register: call ``register(type_name, TransformClass)`` for each
        transform; ``type_name`` is what a graph node's ``transform = "..."`` names.
    """


@hookspec
def cdp_register_destinations(register: Register) -> None:
    """Register destination classes under type names.

    :param register: call ``register(type_name, DestinationClass)`` for each
        destination; ``type_name`` is what ``[connectors.X] type = "..."`` names.
    """


# -- run lifecycle: observers (metrics, alerts, audit); errors here never fail a run ---


@hookspec
def cdp_run_started(run: RunInfo) -> None:
    """A sync graph run has started.

    :param run: the run; ``run.id`` and ``run.graph`` identify it.
    """


@hookspec
def cdp_run_finished(run: RunInfo) -> None:
    """A run ended without error; every cursor it advanced is committed.

    :param run: the run with its final per-node counts.
    """


@hookspec
def cdp_run_failed(run: RunInfo, error: BaseException) -> None:
    """A run ended with an error; state stays at the last committed batch.

    Under the scheduler, a graph with ``retries`` fires this once, for its final failure.

    :param run: the run with the counts reached before the failure.
    :param error: the exception that ended it (secrets are redacted from its text
        in ``run.error``, not in the exception object).
    """


@hookspec
def cdp_batch_written(run: RunInfo, node: str, count: int) -> None:
    """A destination node made a batch durable.

    :param run: the run.
    :param node: the destination node's name in the graph.
    :param count: how many records the batch held.
    """


@hookspec
def cdp_record_rejected(run: RunInfo, node: str, rejected: Rejected) -> None:
    """A record was sent to quarantine.

    :param run: the run.
    :param node: the node that rejected it.
    :param rejected: the reason and the raw payload.
    """
