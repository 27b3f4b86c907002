"""`cdp profiles show` on a store at head: no migration machinery, numerics, other commands or server.

Not a benchmark (bench/README.md, "CLI start-up"): what the command imports is what makes it slow.
"""

from __future__ import annotations

from pathlib import Path

from cdp_core.plugins import load_plugins
from cdp_core.store.access import open_store
from cdp_core.testing.imports import cdp_imports


def run_cdp(tmp_path: Path, *args: str) -> tuple[int, set[str], str]:
    """``cdp *args`` in a fresh interpreter (cdp_core.testing.imports): exit code, modules, output."""
    found = cdp_imports(tmp_path, *args, unset=("UNSET_TOKEN",))
    return found.code, found.modules, found.stderr + found.stdout


def current_store(tmp_path: Path, rest: str = "") -> None:
    url = f"sqlite:///{tmp_path / 'cdp.sqlite'}"
    open_store(url, load_plugins().migrations, create=True).dispose()  # at the head of every history
    (tmp_path / "connectors.toml").write_text(
        f'[store]\nurl = "{url}"\n[connectors.store]\ntype = "profile_store"\n{rest}'
    )


UNRELATED = """
[connectors.crm]
type = "hubspot"
access_token = "${UNSET_TOKEN}"
[syncs.nightly.nodes.up]
source = "nowhere.people"
"""
"""A connector whose secret is not set and a graph that names a connector nobody declared."""

NOT_LOADED = (
    "httpx", "lark", "phonenumbers", "cryptography", "apscheduler", "cdp_core.transforms.compute",
    "cdp_core.builtins.files", "cdp_core.builtins.rest", "cdp_profiles.analytics.rfm", "cdp_profiles.analytics.orders",
    "cdp_profiles.analytics.traits", "cdp_profiles.privacy.keys", "cdp_profiles.membership.daily",
) + (
    "sqlmodel", "sqlalchemy.orm", "sqlalchemy.dialects.postgresql", "cdp_profiles.store.profile_models",
    "cdp_profiles.store.segment_models",
)  # fmt: skip
"""What a read command has no use for: the HTTP client, the transforms, the scheduler, the privacy jobs, analytics;
SQLModel and SQLAlchemy's ORM (the code queries the Core tables of cdp_profiles/store/tables.py), and on SQLite
the PostgreSQL dialect."""


def vendor_modules(modules: set[str]) -> list[str]:
    """The vendor plugins' modules beyond their packages (``cdp_hubspot.source``...): their sources and destinations."""
    return sorted(
        m for m in modules if m.startswith("cdp_") and not m.startswith(("cdp_core", "cdp_profiles")) and "." in m
    )


def test_profiles_show_loads_the_store_and_its_sections_only(tmp_path: Path) -> None:
    current_store(tmp_path)
    code, modules, err = run_cdp(tmp_path, "profiles", "show", "email:nobody@example.org", "-c", "connectors.toml")
    assert code == 1 and "nobody@example.org" in err, err
    assert sorted(m for m in NOT_LOADED if m in modules) == []
    assert vendor_modules(modules) == []


def test_the_other_read_commands_load_no_orm_either(tmp_path: Path) -> None:
    current_store(tmp_path, '[segments.vip]\nwhere = "count(orders) >= 1"\n')
    for args in (["segments", "list"], ["segments", "show", "vip"], ["nps"]):
        code, modules, err = run_cdp(tmp_path, *args, "-c", "connectors.toml")
        assert code in (0, 1), (args, err)
        assert sorted(m for m in NOT_LOADED if m.startswith(("sqlmodel", "sqlalchemy.")) and m in modules) == [], args


def test_a_read_command_reads_past_a_problem_in_a_part_it_does_not_read(tmp_path: Path) -> None:
    current_store(tmp_path, UNRELATED)
    for args in (["profiles", "show", "email:nobody@example.org"], ["segments", "list"], ["nps"]):
        code, _, err = run_cdp(tmp_path, *args, "-c", "connectors.toml")
        assert code in (0, 1) and "problem" not in err, (args, err)
    code, _, err = run_cdp(tmp_path, "validate", "-c", "connectors.toml")  # the whole file is still checked there
    assert code == 2 and "UNSET_TOKEN" in err and "nowhere" in err, err


def test_a_read_command_checks_the_sections_it_reads(tmp_path: Path) -> None:
    current_store(
        tmp_path, '[identity]\npriority = ["email"]\nno_such_key = 1\n[segments.vip]\nwhere = "count(orders) >="\n'
    )
    code, _, err = run_cdp(tmp_path, "profiles", "show", "email:nobody@example.org", "-c", "connectors.toml")
    assert code == 2 and "connectors.toml:7: identity.no_such_key" in err, err
    code, _, err = run_cdp(tmp_path, "segments", "list", "-c", "connectors.toml")
    assert code == 2 and "segments.vip" in err, err


def test_profiles_show_on_a_current_store_imports_no_migrations_numerics_other_commands_or_server(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'cdp.sqlite'}"
    open_store(url, load_plugins().migrations, create=True).dispose()  # at the head of every history
    (tmp_path / "connectors.toml").write_text(f'[store]\nurl = "{url}"\n[connectors.store]\ntype = "profile_store"\n')
    code, modules, err = run_cdp(tmp_path, "profiles", "show", "email:nobody@example.org", "-c", "connectors.toml")
    # the store was read (the lookup ran and found nobody), not migrated
    assert code == 1 and "nobody@example.org" in err, err
    assert "cdp_profiles.cli.profiles" in modules
    assert sorted(m for m in ("alembic", "numpy", "scipy", "starlette", "uvicorn") if m in modules) == []
    # nor the other commands' modules, nor the server (the config sections' models are loaded: the config is read)
    heavy_own = ("cdp_profiles.cli.analytics", "cdp_profiles.cli.privacy", "cdp_profiles.cli.nps", "cdp_core.serve")
    assert sorted(m for m in modules if m.startswith(heavy_own)) == []
