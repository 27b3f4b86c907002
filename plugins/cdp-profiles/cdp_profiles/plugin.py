"""The profiles product's hook implementations: what it adds to cdp, through the same hooks as any plugin.

Loaded by the ``cdp`` entry point ``profiles``. Everything the product offers is
registered here: the profile store as a destination and a source, the ``[identity]``,
``[consent]``, ``[computed_traits]``, ``[segments]``, ``[privacy]`` and ``[analytics]`` sections of connectors.toml (and
their checks against the rest of the file), the consent gate on every export that serves
a purpose, the suppression list's screen on every run, the ``profiles``, ``nps``, ``segments``,
``privacy`` and ``analytics`` commands, the scheduler's daily ``segments-refresh`` job, its ``privacy-forget`` job (every ten
minutes) and ``privacy-retention`` job (daily), and the migration history of its tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp_core import Register, hookimpl

if TYPE_CHECKING:
    from cdp_core.base import ConnectorContext
    from cdp_core.config import Config
    from cdp_core.gates import ExportGate
    from cdp_core.screens import RecordScreen

    from cdp_profiles.identity import Report

# Every import is inside the hook that needs it: `cdp --help` imports this module and calls only
# cdp_register_commands, whose commands are registered by name (imported when they run).


@hookimpl
def cdp_register_sources(register: Register) -> None:
    from cdp_profiles.profile_store import ProfileStoreSource

    register("profile_store", ProfileStoreSource)


@hookimpl
def cdp_register_destinations(register: Register) -> None:
    from cdp_profiles.profile_store import ProfileStoreDestination

    register("profile_store", ProfileStoreDestination)


@hookimpl
def cdp_register_config_sections(register: Register) -> None:
    # By name: a model is imported when its section is read (a read command reads two or three).
    register("identity", "cdp_profiles.identity:IdentityConfig")
    register("consent", "cdp_profiles.consent:ConsentConfig")
    register("computed_traits", "cdp_profiles.segments.config:ComputedTraitsConfig")
    register("segments", "cdp_profiles.segments.config:SegmentsConfig")
    register("privacy", "cdp_profiles.privacy.config:PrivacyConfig")
    register("analytics", "cdp_profiles.analytics.config:AnalyticsConfig")


@hookimpl
def cdp_validate_config(config: Config, report: Report) -> None:
    from cdp_profiles.consent_checks import check_consent
    from cdp_profiles.identity import check_identity
    from cdp_profiles.segments.clock import AS_OF_ENV, AsOfError, evaluation_time
    from cdp_profiles.segments.config import check_rules

    check_identity(config, report)
    check_consent(config, report)
    check_rules(config, report)
    try:
        evaluation_time()
    except AsOfError as exc:
        report((AS_OF_ENV,), str(exc))


@hookimpl
def cdp_export_gate(context: ConnectorContext, graph: str, node: str, purpose: str) -> ExportGate | None:
    """Every export that serves a purpose: each person checked against their latest consent for it."""
    from cdp_profiles.consent_gate import ConsentGate

    return ConsentGate(context, purpose)


@hookimpl
def cdp_record_screen(config: Config, graph: str) -> RecordScreen | None:
    """Every run: the suppression list, loaded once; no screen when it is empty (docs/privacy.md)."""
    from cdp_profiles.privacy.suppression import suppression_screen

    return suppression_screen(config)


@hookimpl
def cdp_register_commands(register: Register) -> None:
    # By name: listed by `cdp --help` with this help, imported only when the command runs.
    register(
        "profiles",
        "cdp_profiles.cli.profiles:profiles_app",
        help="Unified profiles: one person's 360° view, or a filtered list.",
    )
    register(
        "nps",
        "cdp_profiles.cli.nps_analysis:nps_app",  # the group of cli/nps.py with drivers and verbatims added
        help="Net Promoter Score: the score with counts and intervals (no subcommand), its drivers, the verbatims.",
    )
    register(
        "segments",
        "cdp_profiles.cli.segments:segments_app",
        help="Segments: who is in them now, who entered and left, and refreshing them.",
    )
    register(
        "privacy",
        "cdp_profiles.cli.privacy:privacy_app",
        help="Privacy: forget, suppress and export a person; forget requests at each destination; retention.",
    )
    register(
        "analytics",
        "cdp_profiles.cli.analytics:analytics_app",
        help="Customer analytics: RFM and lifetime value (docs/analytics.md).",
    )


@hookimpl
def cdp_register_jobs(register: Register) -> None:
    from cdp_profiles.membership.daily import SEGMENTS_REFRESH
    from cdp_profiles.privacy.delivery import PRIVACY_FORGET
    from cdp_profiles.privacy.retention import RETENTION_JOB

    register("segments-refresh", SEGMENTS_REFRESH)
    register("privacy-forget", PRIVACY_FORGET)
    register("privacy-retention", RETENTION_JOB)


@hookimpl
def cdp_register_migrations(register: Register) -> None:
    from cdp_profiles.store.schema import PROFILES

    register(PROFILES)
