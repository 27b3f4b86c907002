"""Hook specifications of cdp, grouped by phase.

Every hook carries the ``cdp_`` prefix. A plugin implements any subset of them
with ``@cdp_core.hookimpl``; docs/hooks.md documents each one (a test checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from cdp_core.base import ConnectorContext
    from cdp_core.config import Config
    from cdp_core.gates import ExportGate
    from cdp_core.plugins import Register
    from cdp_core.records import Rejected
    from cdp_core.runinfo import RunInfo
    from cdp_core.screens import RecordScreen

hookspec = pluggy.HookspecMarker("cdp")

# -- registration: called once per plugin manager, builtins first, one plugin at a time ---


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


@hookspec
def cdp_register_config_sections(register: Register) -> None:
    """Register top-level sections of connectors.toml that this plugin reads.

    :param register: call ``register(name, Model)`` for each section: ``[name]`` in
        connectors.toml is validated by ``Model`` (a :class:`~cdp_core.PluginConfig`
        subclass, unknown keys refused) with the same ``file:line: key.path: message``
        errors as the kernel's sections; an absent section gets ``Model()``. Sources and
        destinations read it as ``context.sections[name]``.
    """


@hookspec
def cdp_register_commands(register: Register) -> None:
    """Register ``cdp`` sub-commands.

    :param register: call ``register(name, typer_app)`` for a command group
        (``cdp NAME ...``) or ``register(name, function)`` for a single command; the
        function's parameters are typer options and arguments; or, better,
        ``register(name, "module:attribute", help="one line")``: listed by ``cdp --help``
        with that help and imported only when it runs (``cdp_core.plugins.LazyCommand``).
        Called on every start of ``cdp`` (only this registration hook is, to list the
        commands), so keep the plugin's module light: heavy imports inside hook bodies.
    """


@hookspec
def cdp_register_jobs(register: Register) -> None:
    """Register maintenance jobs that ``cdp scheduler run`` runs on a cron schedule.

    :param register: call ``register(name, job)`` with a lowercase name and a
        :class:`cdp_core.jobs.Job` (``schedule``, a cron expression in its ``timezone``;
        ``run(config)``, returning a one-line summary). A job runs under a lease of its own
        (``job:NAME``), once per slot across every scheduler on the store; a failure is logged
        and the job runs again at its next slot.
    """


@hookspec
def cdp_register_migrations(register: Register) -> None:
    """Register the migration history of tables this plugin keeps in the store database.

    :param register: call ``register(history)`` with a
        :class:`cdp_core.store.schema.History` (its folder of alembic revisions, its
        own version table, the module prefix of its table models). Every registered
        history is brought to its head when the runner, the scheduler or a command
        opens the store, after the kernel's own.
    """


@hookspec
def cdp_register_webhooks(register: Register) -> None:
    """Register webhook handlers of connector types: vendors that push changes to ``cdp serve``.

    :param register: call ``register(type_name, WebhookClass)`` with a
        :class:`cdp_core.webhooks.Webhook` subclass; ``type_name`` is a source type (the
        connector's ``type``). Every configured connector of that type gets
        ``/webhooks/CONNECTOR``: ``handshake`` answers GET checks, ``verify`` checks a POST's
        signature (401 when it fails, nothing stored), ``entries`` says what to append to the
        ingest log, which the source streams named in ``WebhookClass.streams`` read.
    """


# -- validation: called by load_config after every section, connector and graph was checked ---


@hookspec
def cdp_validate_config(config: Config, report: Callable[[tuple[str | int, ...], str], None]) -> None:
    """Check what depends on more than one section (names a section uses that others define).

    Called on every load of connectors.toml, also when other problems were found, so
    that every problem is listed at once. What failed its own validation is left out of
    ``config``: a connector in ``config.broken_connectors`` or ``config.unavailable`` is
    not in ``config.connectors``, and a broken graph not in ``config.graphs``; don't
    report a name as unknown when it belongs to one of those.

    :param config: the loaded :class:`~cdp_core.config.Config` (``sections``,
        ``connectors``, ``graphs``); read it, never change it.
    :param report: call ``report(key_path, message)`` for each problem, e.g.
        ``report(("identity", "priority", 2), "unknown identifier type 'emial'")``:
        it becomes a ``file:line: identity.priority[2]: ...`` problem and
        ``cdp validate`` exits 2.
    """


# -- export gates: called when a run is built, for each destination node that serves a purpose ---


@hookspec
def cdp_export_gate(context: ConnectorContext, graph: str, node: str, purpose: str) -> ExportGate | None:
    """Provide a gate that checks every batch sent to a destination node serving ``purpose``.

    Every gate returned is applied, in turn, to each batch right before the destination's
    ``write``; what a gate holds back is not written and is counted in the node's
    ``held_back`` by reason. A node whose own ``purpose`` is set fails its run when no
    plugin returns a gate. An exception fails the run before anything is written.

    :param context: the destination connector's context (``store_url``, ``sections``, ``name``).
    :param graph: the sync graph's name.
    :param node: the destination node's name in the graph.
    :param purpose: the purpose the node serves: its ``purpose`` key, else the destination
        type's default (:attr:`cdp_core.Destination.purpose`).
    :returns: a :class:`cdp_core.gates.ExportGate`, or None when this plugin does not check it.
    """


# -- record screens: called once when a run is built, before any node runs ---


@hookspec
def cdp_record_screen(config: Config, graph: str) -> RecordScreen | None:
    """Provide a screen that drops records and quarantine entries no node may keep (a suppressed person's).

    Every screen returned is applied to each page a source yields (before the transforms),
    to each destination's batch right before its ``write``, and to every quarantine entry
    of the run, whichever node rejected it; in ``cdp quarantine retry`` too. What a screen
    drops is counted in the node's ``suppressed``. Return None when there is nothing to
    screen (then the run does no screening at all). An exception fails the run before
    anything is read or written.

    :param config: the loaded :class:`~cdp_core.config.Config` (``store_url``, ``sections``).
    :param graph: the name of the sync graph about to run.
    :returns: a :class:`cdp_core.screens.RecordScreen`, or None.
    """


# -- run lifecycle: observers (metrics, alerts, audit); errors here never fail a run ---
# Called through pluggy's hook calling, so ``wrapper=True`` implementations run around
# the others; an observer that raises is logged and skipped, the other observers still run.


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
