"""The end-to-end child of bench/ingest.py: the real ``Runner`` on a fresh store, and what the runs left in it.

``child_e2e(args, graphs)`` writes the graph's ``connectors.toml`` (``CONFIG``: file sources -> rename/normalize ->
``profile_store``, the demo's ``[identity]`` rules) to the work folder, runs the graphs one after the other (only
the first with ``--persons-only``), optionally under cProfile, and returns the figures and the store's integrity
facts (``_store_facts``, read after the clock stopped) as a dict. bench/ingest.py calls it with its ``GRAPHS``.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from typing import Any

from rss import current_rss_mb, peak_rss_mb

PERSON_NODES = ("crm", "shop", "newsletter")
STORE_STEPS = {
    "profiles.py": ("write", "prepare", "_write", "_old_records", "_store_records", "_reopen", "_store_sets"),
    "extend.py": ("run", "_identifiers", "_stored_sets", "_owners", "_components", "_classify", "_apply", "_docs"),
    "replay.py": ("run", "_component", "recompute_traits", "_identities"),
    "activity.py": ("split", "apply", "promote"),
    "traits.py": ("merge_traits",),
    "identity.py": ("resolve",),
    "checkpoint.py": ("write",),
}  # of cdp_profiles/store/ and cdp_profiles/identity.py (checkpoint.py: cdp_core/store/), for the profile's breakdown
ACTIVITY_NODES = ("events", "orders", "nps")

CONFIG = """\
[store]
url = "{url}"

# The demo's rules (connectors.toml), with the bench's stream names.
[identity]
priority = ["hubspot_contact_id", "shopify_customer_id", "mailchimp_member_id", "email", "phone"]
limits = {{ hubspot_contact_id = 1, shopify_customer_id = 1, email = 5, phone = 3 }}
default_region = "DE"

[identity.traits]
default = "most_recent"
strategies = {{ first_name = "source_priority", last_name = "source_priority", tags = "accumulate" }}
source_priority = ["crm.contacts", "shop.customers", "newsletter.members"]

[connectors.crm]
type = "csv"
[connectors.crm.streams.contacts]
path = "{data}/crm_contacts.csv"
primary_key = "id"
cursor_field = "lastmodifieddate"
timestamp_field = "lastmodifieddate"
identifiers = {{ hubspot_contact_id = "id", email = "email", phone = "phone" }}
{batch_size}

[connectors.shop]
type = "jsonl"
[connectors.shop.streams.customers]
path = "{data}/shop_customers.jsonl"
primary_key = "id"
cursor_field = "updated_at"
timestamp_field = "updated_at"
identifiers = {{ shopify_customer_id = "id", email = "email", phone = "phone" }}
{batch_size}
[connectors.shop.streams.orders]
path = "{data}/shop_orders.jsonl"
kind = "order"
primary_key = "id"
cursor_field = "updated_at"
timestamp_field = "created_at"
identifiers = {{ shopify_customer_id = "customer.id", email = "email", phone = "customer.phone" }}
{batch_size}

[connectors.newsletter]
type = "csv"
[connectors.newsletter.streams.members]
path = "{data}/newsletter_members.csv"
primary_key = "id"
cursor_field = "last_changed"
timestamp_field = "last_changed"
identifiers = {{ mailchimp_member_id = "id", email = "email_address", phone = "phone" }}
{batch_size}

[connectors.web]
type = "jsonl"
[connectors.web.streams.events]
path = "{data}/events.jsonl"
kind = "event"
primary_key = "id"
cursor_field = "occurred_at"
timestamp_field = "occurred_at"
identifiers = {{ email = "email", shopify_customer_id = "shopify_customer_id", mailchimp_member_id = "mailchimp_member_id" }}
{batch_size}

[connectors.survey]
type = "csv"
[connectors.survey.streams.answers]
path = "{data}/nps_answers.csv"
kind = "nps_response"
primary_key = "token"
cursor_field = "submitted_at"
timestamp_field = "submitted_at"
identifiers = {{ email = "email" }}
{batch_size}

[connectors.store]
type = "profile_store"

[syncs.persons.nodes.crm]
source = "crm.contacts"

[syncs.persons.nodes.crm_clean]
transform = "rename"
inputs = ["crm"]
options = {{ fields = {{ firstname = "first_name", lastname = "last_name", lifecyclestage = "lifecycle_stage" }} }}

[syncs.persons.nodes.shop]
source = "shop.customers"

[syncs.persons.nodes.newsletter]
source = "newsletter.members"

[syncs.persons.nodes.normalize]
transform = "normalize"
inputs = ["crm_clean", "shop", "newsletter"]
options = {{ fields = {{ first_name = "name", last_name = "name" }}, default_region = "DE", on_invalid = "null" }}

[syncs.persons.nodes.store]
destination = "store"
inputs = ["normalize"]

[syncs.activity.nodes.events]
source = "web.events"

[syncs.activity.nodes.orders]
source = "shop.orders"

[syncs.activity.nodes.nps]
source = "survey.answers"

[syncs.activity.nodes.normalize]
transform = "normalize"
inputs = ["events", "orders", "nps"]
options = {{ default_region = "DE", on_invalid = "null" }}

[syncs.activity.nodes.store]
destination = "store"
inputs = ["normalize"]
"""


def _store_facts(url: str, dump: Path | None = None) -> dict[str, Any]:
    """What the runs left in the store: profiles, merges, identities (checked after the clock stopped)."""
    from sqlalchemy import text

    from cdp_core.store.engine import make_engine

    engine = make_engine(url)
    facts: dict[str, Any] = {}
    with engine.connect() as conn:
        one = lambda sql: int(conn.execute(text(sql)).scalar_one())
        facts["profiles"] = one("SELECT count(*) FROM profiles WHERE merged_into IS NULL")
        facts["merged_profiles"] = one("SELECT count(*) FROM profiles WHERE merged_into IS NOT NULL")
        facts["merge_log"] = one("SELECT count(*) FROM merge_log")
        facts["id_sets"] = one("SELECT count(*) FROM id_sets")
        facts["record_index"] = one("SELECT count(*) FROM record_index")
        facts["anonymous_records"] = one(
            "SELECT count(*) FROM record_index WHERE set_id IS NULL AND profile_id IS NULL"
        )
        facts["fast_path_records"] = one("SELECT count(*) FROM record_index WHERE profile_id IS NOT NULL")
        facts["profile_records"] = one("SELECT count(*) FROM profile_records")
        facts["events"] = one("SELECT count(*) FROM events")
        facts["orders"] = one("SELECT count(*) FROM orders")
        facts["nps_responses"] = one("SELECT count(*) FROM nps_responses")
        facts["settled"] = one("SELECT count(*) FROM profiles WHERE merged_into IS NULL AND settled")
        facts["identities"] = {
            t: int(n)
            for t, n in conn.execute(text("SELECT type, count(*) FROM identities GROUP BY type ORDER BY type"))
        }
        facts["blocked_in_identities"] = one(
            "SELECT count(*) FROM identities WHERE value IN ('test@test.com', 'noreply@shop.example', "
            "'no-reply@example.com', '+491710000000')"
        )
        facts["profiles_without_identity"] = one(
            "SELECT count(*) FROM profiles p WHERE p.merged_into IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM identities i WHERE i.profile_id = p.id)"
        )
        facts["identities_of_dead_profiles"] = one(
            "SELECT count(*) FROM identities i LEFT JOIN profiles p ON p.id = i.profile_id "
            "WHERE p.id IS NULL OR p.merged_into IS NOT NULL"
        )
        # Limits of [identity]: how many live profiles hold more identifiers of a type than allowed
        over = {}
        for type_name, limit in (("hubspot_contact_id", 1), ("shopify_customer_id", 1), ("email", 5), ("phone", 3)):
            over[type_name] = one(
                f"SELECT count(*) FROM (SELECT profile_id FROM identities WHERE type = '{type_name}' "
                f"GROUP BY profile_id HAVING count(*) > {limit}) x"
            )
        facts["profiles_over_limit"] = over
        # Equal on SQLite and PostgreSQL for the same data: who owns which identifier, and the merges
        # (sorted here, not by the database: collations differ)
        rows = sorted(tuple(r) for r in conn.execute(text("SELECT type, value, profile_id FROM identities")))
        digest = hashlib.sha256()
        for row in rows:
            digest.update("\x1f".join(row).encode() + b"\x1e")
        facts["identities_digest"] = digest.hexdigest()[:16]
        if dump is not None:
            with dump.open("w", encoding="utf-8") as handle:
                handle.writelines("\t".join(row) + "\n" for row in rows)
        del rows
        facts["largest_profile_emails"] = one(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM identities WHERE type = 'email' "
            "GROUP BY profile_id) x"
        )
    engine.dispose()
    return facts


def child_e2e(args: argparse.Namespace, graphs: tuple[str, ...]) -> dict[str, Any]:
    """Runs ``graphs`` (only the first with ``args.persons_only``) on a fresh store at ``args.url``."""
    from cdp_core.config import ConfigError, load_config
    from cdp_core.plugins import load_plugins
    from cdp_core.runner import Runner
    from cdp_core.store import SystemStore

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    url = args.url
    if url.startswith("sqlite:///"):
        store = Path(url.removeprefix("sqlite:///"))
        for stale in (store, Path(f"{store}-wal"), Path(f"{store}-shm"), Path(f"{store}-journal")):
            stale.unlink(missing_ok=True)
    # The kernel's builtins and the profile product only: profile_store is a plugin now, and
    # other installed plugins (or CDP_DISABLE_PLUGINS) must not change what is measured.
    import cdp_profiles.plugin

    plugins = load_plugins(entry_points=False, disabled=set(), extra=[("profiles", cdp_profiles.plugin)])
    registry = plugins.registry
    missing = [f"transform {t}" for t in ("rename", "normalize") if registry.get("transform", t) is None]
    missing += [
        f"{role} {n}"
        for role, n in (("source", "csv"), ("source", "jsonl"), ("destination", "profile_store"))
        if registry.get(role, n) is None
    ]
    if missing:
        return {"error": f"not registered: {', '.join(missing)}"}
    config_path = work / "connectors.toml"
    config_path.write_text(
        CONFIG.format(
            url=url, data=args.data.resolve(), batch_size=f"batch_size = {args.batch_size}" if args.batch_size else ""
        ),
        encoding="utf-8",
    )
    try:
        config = load_config(config_path, plugins)
    except ConfigError as exc:
        return {"error": f"the benchmark graph does not validate:\n{exc}"}
    system = SystemStore(config.store_url).create()
    rss_before = current_rss_mb()
    trace: list[tuple[str, int, float]] = []

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()

    results: dict[str, Any] = {"graphs": {}}
    for graph in graphs if not args.persons_only else graphs[:1]:
        sources = PERSON_NODES if graph == "persons" else ACTIVITY_NODES

        def on_progress(run: Any, graph: str = graph, sources: tuple[str, ...] = sources) -> None:
            read = sum(run.nodes[n].records_out + run.nodes[n].rejected for n in sources)
            trace.append((graph, read, current_rss_mb()))

        runner = Runner(config, plugins, system, on_progress=on_progress)
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        run = runner.run(graph)
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
        if run.error:
            return {"error": f"run of graph {graph} failed: {run.error}"}
        results["graphs"][graph] = {
            "seconds": seconds,
            "read": sum(run.nodes[n].records_out + run.nodes[n].rejected for n in sources),
            "stored": run.nodes["store"].records_out,
            "quarantined": system.quarantine_count(graph),
            "nodes": {
                name: {"in": s.records_in, "out": s.records_out, "rejected": s.rejected, "seconds": s.seconds}
                for name, s in run.nodes.items()
            },
        }
    results["peak_rss_mb"] = peak_rss_mb()
    results["rss_before_mb"] = rss_before
    results["rss_trace"] = trace
    if profiler is not None:
        import pstats

        args.profile.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(args.profile))
        stats = pstats.Stats(str(args.profile))
        rows = []
        for (file, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            rows.append({"function": f"{_short(file)}:{line}({func})", "ncalls": nc, "tottime": tt, "cumtime": ct})
        rows.sort(key=lambda r: r["tottime"], reverse=True)
        results["profile_top"] = rows[:15]
        steps = []
        for (file, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if func in STORE_STEPS.get(Path(file).name, ()) and ("cdp_core" in file or "cdp_profiles" in file):
                steps.append({"function": f"{_short(file)}:{line}({func})", "ncalls": nc, "tottime": tt, "cumtime": ct})
        steps.sort(key=lambda r: r["cumtime"], reverse=True)
        results["profile_store_steps"] = steps
        results["profile_total"] = sum(r["tottime"] for r in rows)
    results["store"] = _store_facts(url, args.work / "identities.tsv" if args.dump_identities else None)
    return results


def _short(file: str) -> str:
    """``cdp_profiles/store/profiles.py``, ``sqlalchemy/engine/base.py``, ``json/__init__.py`` (not the full path)."""
    import re

    for pattern in (r".*/site-packages/", r".*/(?=cdp_(?:core|profiles)/)", r".*/lib/python3\.\d+/"):
        short, n = re.subn(pattern, "", file, count=1)
        if n:
            return short
    return file
