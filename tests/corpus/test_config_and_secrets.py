"""Bad-input corpus: broken configs, store URLs, stores a command cannot use, secrets in every form.

Every case runs the real ``cdp`` in a subprocess and asserts the exit code, a message that
says what and where, no traceback, and (for secrets) no trace of the value in stdout,
stderr, the runs table or the quarantine. Store cases run on SQLite and PostgreSQL
(``store_url``) where the database matters.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import create_engine, text

from cdp_core.store.engine import normalize_url

pytest_plugins = ["cdp_core.testing"]

CONNECTOR = """
[connectors.people]
type = "jsonl"
[connectors.people.streams.contacts]
path = "people.jsonl"
identifiers = { email = "email", crm_id = "id" }

[connectors.out]
type = "jsonl_file"
path = "out.jsonl"
"""
GRAPH = """
[syncs.g.nodes.src]
source = "people.contacts"
[syncs.g.nodes.dst]
destination = "out"
inputs = ["src"]
"""


def cdp(tmp_path: Path, *args: str, env: dict[str, str] | None = None, script: str | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    full.pop("CDP_CONFIG", None)
    command = [sys.executable, "-c", script] if script else [sys.executable, "-m", "cdp_core.cli"]
    return subprocess.run(
        [*command, *args, "-c", str(tmp_path / "connectors.toml")],
        capture_output=True, text=True, env=full, cwd=tmp_path, timeout=300,
    )  # fmt: skip


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


# -- broken configs: exit 2, file:line: key: message ----------------------------------------------

CONFIGS: dict[str, tuple[bytes | str, list[str]]] = {
    "store-scheme": ('[store]\nurl = "mysql://u@h/db"\n' + CONNECTOR + GRAPH, ["connectors.toml:2: store.url: unsupported database 'mysql'"]),
    "store-driver": (
        '[store]\nurl = "postgresql+asyncpg://u@h/db"\n' + CONNECTOR + GRAPH,
        ["connectors.toml:2: store.url: unsupported driver 'asyncpg' for postgresql"],
    ),
    "store-not-a-url": ('[store]\nurl = "not a url"\n' + CONNECTOR + GRAPH, ["connectors.toml:2: store.url: not a database URL"]),
    "store-folder-under-a-file": (
        '[store]\nurl = "sqlite:///afile/sub/cdp.sqlite"\n' + CONNECTOR + GRAPH,
        ["connectors.toml:2: store.url: cannot create the folder", "afile is a file"],
    ),
    "store-postgres-without-database": ('[store]\nurl = "postgresql://u@h"\n' + CONNECTOR + GRAPH, ["connectors.toml:2: store.url: names no database"]),
    "empty-file": ("", ["connectors.toml:1: (top level): nothing is configured"]),
    "only-a-store": ('[store]\nurl = "sqlite:///x.sqlite"\n', ["connectors.toml:1: (top level): nothing is configured"]),
    "binary-nul": (b'[store]\nurl = "sqlite:///x"\n\x00\x01\x02', ["connectors.toml:3: (top level): a binary file, not TOML text"]),
    "latin-1": ('# K\xe4se\n[store]\n'.encode("latin-1") + CONNECTOR.encode(), ["connectors.toml:1: (top level): not UTF-8 text: byte 0xe4 at line 1, column 4"]),
    "store-problem-hides-no-graph-problem": (
        '[store]\nurl = "sqlite:///x.sqlite"\ncolour = "red"\n' + CONNECTOR + GRAPH.replace('inputs = ["src"]', 'inputs = ["srx"]'),
        ["connectors.toml:3: store.colour: unknown key", "syncs.g.nodes.dst.inputs[0]: unknown node 'srx'"],
    ),
    "alerts-problem-hides-no-connector-problem": (
        '[alerts]\ntimeout = -1\n' + CONNECTOR.replace('type = "jsonl_file"', 'type = "jsonl_fil"') + GRAPH,
        ["connectors.toml:2: alerts.timeout:", "connectors.out.type: unknown plugin type 'jsonl_fil' (did you mean 'jsonl_file'?)"],
    ),
    "identity-unknown-type": (
        CONNECTOR + GRAPH + '\n[identity]\npriority = ["crm_id", "emial"]\n',
        ["identity.priority[1]: unknown identifier type 'emial' (did you mean 'email'?)"],
    ),
    "identity-limit-of-a-type-no-stream-carries": (
        CONNECTOR + GRAPH + '\n[identity]\nlimits = { shopify_customer_id = 1 }\n',
        ["identity.limits.shopify_customer_id: unknown identifier type 'shopify_customer_id'"],
    ),
    "identity-blocked-type": (
        CONNECTOR + GRAPH + '\n[identity]\nblocked = ["phnoe:+49*"]\n',
        ["identity.blocked[0]: unknown identifier type 'phnoe' (did you mean 'phone'?)"],
    ),
    "identity-unknown-stream": (
        CONNECTOR + GRAPH + '\n[identity.traits]\nsource_priority = ["people.contact"]\n',
        ["identity.traits.source_priority[0]: connector 'people' has no stream 'contact' (did you mean 'contacts'?)"],
    ),
    "identity-unknown-connector": (
        CONNECTOR + GRAPH + '\n[identity.traits]\nsource_priority = ["peeple.contacts"]\n',
        ["identity.traits.source_priority[0]: unknown connector 'peeple' (did you mean 'people'?)"],
    ),
    "identity-unknown-key-and-a-graph-problem": (
        CONNECTOR + GRAPH.replace('source = "people.contacts"', 'source = "people.contactz"') + '\n[identity]\npriorty = ["email"]\n',
        ["identity.priorty: unknown key (did you mean 'priority'?)", "syncs.g.nodes.src.source: connector 'people' has no stream 'contactz'"],
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_a_broken_config_is_refused_with_every_problem_located(tmp_path: Path, case: str) -> None:
    content, expected = CONFIGS[case]
    (tmp_path / "afile").write_text("not a folder")
    path = tmp_path / "connectors.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = cdp(tmp_path, "validate")
    no_traceback(result)
    assert result.returncode == 2, result.stdout + result.stderr
    for fragment in expected:
        assert fragment in result.stdout, f"{fragment!r} not in:\n{result.stdout}"
    assert not (tmp_path / "x.sqlite").exists()


# -- stores a command cannot use: one line, exit 1, nothing created --------------------------------

READ_COMMANDS = {
    "runs": ["runs"],
    "quarantine-list": ["quarantine", "list"],
    "profiles-show": ["profiles", "show", "anna@example.com"],
    "nps": ["nps"],
}


def _config(tmp_path: Path, url: str) -> None:
    (tmp_path / "connectors.toml").write_text(f'[store]\nurl = "{url}"\n' + CONNECTOR + GRAPH)
    (tmp_path / "people.jsonl").write_text('{"id": "1", "email": "anna@example.com"}\n')


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    no_traceback(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    return lines[0]


def _tables(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            if url.startswith("sqlite"):
                rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
            else:
                rows = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            return {row[0] for row in rows}
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", sorted(READ_COMMANDS))
def test_a_read_command_never_creates_a_missing_store(tmp_path: Path, store_url: str, command: str) -> None:
    _config(tmp_path, store_url)
    result = cdp(tmp_path, *READ_COMMANDS[command])
    assert result.returncode == 1, result.stdout + result.stderr
    line = _error_line(result)
    assert "no store at" in line or "no cdp store in" in line
    assert "run `cdp sync` first" in line
    if store_url.startswith("sqlite"):
        assert not Path(store_url.removeprefix("sqlite:///")).exists()
    else:
        assert _tables(store_url) == set()


def test_scheduler_status_shows_schedules_without_creating_a_store(tmp_path: Path) -> None:
    _config(tmp_path, "sqlite:///data/store.sqlite")
    result = cdp(tmp_path, "scheduler", "status", "--json")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert [entry["graph"] for entry in json.loads(result.stdout)] == ["g"]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("command", [["runs"], ["quarantine", "list"], ["sync", "g"], ["nps"]], ids=" ".join)
def test_a_file_that_is_not_a_database(tmp_path: Path, command: list[str]) -> None:
    _config(tmp_path, "sqlite:///store.sqlite")
    (tmp_path / "store.sqlite").write_bytes(b"this is a spreadsheet, not a database" * 200)
    result = cdp(tmp_path, *command)
    assert result.returncode == 1
    line = _error_line(result)
    assert f"the store {tmp_path / 'store.sqlite'} is not a SQLite database" in line


@pytest.mark.parametrize("command", [["runs"], ["sync", "g"]], ids=" ".join)
def test_a_folder_where_the_store_file_should_be(tmp_path: Path, command: list[str]) -> None:
    _config(tmp_path, "sqlite:///store.sqlite")
    (tmp_path / "store.sqlite").mkdir()
    result = cdp(tmp_path, *command)
    assert result.returncode == 1
    assert f"the store {tmp_path / 'store.sqlite'} is a folder" in _error_line(result)


@pytest.mark.parametrize("command", [["runs"], ["quarantine", "list"], ["sync", "g"], ["profiles", "show", "anna@example.com"]], ids=" ".join)
def test_a_store_of_a_newer_release(tmp_path: Path, store_url: str, command: list[str]) -> None:
    _config(tmp_path, store_url)
    assert cdp(tmp_path, "sync", "g").returncode == 0
    engine = create_engine(normalize_url(store_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE cdp_core_version SET version_num = 'k9999'"))
    engine.dispose()
    result = cdp(tmp_path, *command)
    assert result.returncode == 1
    line = _error_line(result)
    assert "schema revision 'k9999'" in line and "upgraded by a newer release" in line


def test_a_locked_store(tmp_path: Path) -> None:
    _config(tmp_path, "sqlite:///store.sqlite")
    assert cdp(tmp_path, "sync", "g").returncode == 0
    holder = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("DELETE FROM sync_state WHERE 0")
        result = cdp(tmp_path, "runs", env={"CDP_STORE_BUSY_TIMEOUT": "0.2"})
    finally:
        holder.close()
    assert result.returncode == 1
    assert f"the store {tmp_path / 'store.sqlite'} is locked by another process" in _error_line(result)


@pytest.mark.parametrize("command", [["runs"], ["sync", "g"], ["scheduler", "status"]], ids=" ".join)
def test_an_unreachable_database(tmp_path: Path, command: list[str]) -> None:
    # Port 9 on the loopback: nothing listens (discard), the connection is refused at once.
    _config(tmp_path, "postgresql://cdp:pw-Zq8vK3mW@127.0.0.1:9/cdp")
    result = cdp(tmp_path, *command)
    assert result.returncode == 1
    line = _error_line(result)
    assert "cannot use the store database postgresql+psycopg://cdp:***@127.0.0.1:9/cdp" in line
    assert "pw-Zq8vK3mW" not in result.stdout + result.stderr


# -- secrets in escaped, quoted, URL-encoded, JSON-encoded and cut forms ---------------------------

SECRET = 'Zq8v"K3m\\Wp9Lx2 Rt7/Yb4N&=ü'
"""A quote, a backslash, a space, URL-special characters and a non-ASCII letter: every encoding changes it."""

LEAKY = textwrap.dedent(
    '''
    import json, sys
    from urllib.parse import quote, quote_plus
    from pydantic import SecretStr
    from cdp_core import PluginConfig, Transform, hookimpl
    from cdp_core.cli import common, main
    from cdp_core.plugins import load_plugins

    FORMS = {
        "plain": lambda s: s,
        "repr": repr,
        "json": json.dumps,
        "url": lambda s: quote(s, safe=""),
        "url-plus": quote_plus,
        "repr-of-json": lambda s: repr(json.dumps(s)),
    }

    class LeakOptions(PluginConfig):
        token: SecretStr
        form: str = "plain"
        pad: int = 0

    class Leak(Transform):
        config_model = LeakOptions

        def process(self, records, ctx):
            value = FORMS[self.config.form](self.config.token.get_secret_value())
            raise RuntimeError("x" * self.config.pad + f"the vendor refused token={value} for this call" + "y" * 600)

    class Plugin:
        @hookimpl
        def cdp_register_transforms(self, register):
            register("leak", Leak)

    common.plugins = lambda: load_plugins(extra=[("leaky", Plugin())])
    sys.argv = ["cdp", *sys.argv[1:]]
    main()
    '''
)

CASES = {
    "plain": ("plain", 0),
    "repr-escaped": ("repr", 0),
    "json-encoded": ("json", 0),
    "url-encoded": ("url", 0),
    "url-plus-encoded": ("url-plus", 0),
    "repr-of-json": ("repr-of-json", 0),
    # The run's error text is cut at 500 characters ("RuntimeError: " + pad + "the vendor refused token=" is
    # 39 + pad characters before the secret): a cut 13, 4 and 10 characters into it, had it not been redacted first.
    "cut-in-the-middle": ("plain", 445),
    "cut-after-four-characters": ("plain", 454),
    "cut-escaped": ("repr", 447),
}


def _leak_config(tmp_path: Path, form: str, pad: int, store_url: str) -> None:
    (tmp_path / "connectors.toml").write_text(
        f'[store]\nurl = "{store_url}"\n' + CONNECTOR + GRAPH.replace('inputs = ["src"]', 'inputs = ["leak"]')
        + '[syncs.g.nodes.leak]\ntransform = "leak"\ninputs = ["src"]\n'
        + f'options = {{ token = "${{LEAK_TOKEN}}", form = "{form}", pad = {pad} }}\n'
    )  # fmt: skip
    (tmp_path / "people.jsonl").write_text('{"id": "1", "email": "anna@example.com"}\n')


def _traces(secret: str) -> list[str]:
    """What must never appear: the value, its encodings, and any piece of 6 characters or more of them."""
    forms = {secret, repr(secret), json.dumps(secret), quote(secret, safe=""), quote_plus(secret), repr(json.dumps(secret))}
    pieces = set()
    for form in forms:
        inner = form.strip("'\"")
        pieces |= {inner[i : i + 6] for i in range(0, len(inner) - 5)}
    # Pieces made only of characters an ordinary message holds (the quote alone) are not secret.
    return sorted(p for p in pieces if sum(c.isalnum() for c in p) >= 4)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_secret_never_reaches_any_output(tmp_path: Path, store_url: str, case: str) -> None:
    form, pad = CASES[case]
    _leak_config(tmp_path, form, pad, store_url)
    env = {"LEAK_TOKEN": SECRET, "CDP_LOG_LEVEL": "DEBUG"}
    synced = cdp(tmp_path, "sync", "g", env=env, script=LEAKY)
    runs = cdp(tmp_path, "runs", "--json", env=env, script=LEAKY)
    quarantine = cdp(tmp_path, "quarantine", "list", "--json", env=env, script=LEAKY)
    for result in (synced, runs, quarantine):
        no_traceback(result)
    assert synced.returncode == 1, synced.stdout + synced.stderr
    assert "the vendor refused token=" in synced.stdout and "***" in synced.stdout  # what and where: the error, redacted
    engine = create_engine(normalize_url(store_url))
    with engine.connect() as conn:
        tables = "\n".join(
            json.dumps([list(map(str, row)) for row in conn.execute(text(f"SELECT * FROM {table}"))], ensure_ascii=False)
            for table in ("sync_runs", "quarantine")
        )
    engine.dispose()
    outputs = {"sync stdout": synced.stdout, "sync stderr": synced.stderr, "runs": runs.stdout, "quarantine": quarantine.stdout, "tables": tables}
    for where, output in outputs.items():
        for trace in _traces(SECRET):
            assert trace not in output, f"{trace!r} of the secret in {where}:\n{output[:2000]}"
    assert json.loads(runs.stdout)[0]["status"] == "failed"


def test_validate_warns_about_a_secret_written_into_the_file(tmp_path: Path) -> None:
    _leak_config(tmp_path, "plain", 0, "sqlite:///store.sqlite")
    config = tmp_path / "connectors.toml"
    config.write_text(config.read_text().replace('"${LEAK_TOKEN}"', '"literal-Zq8vK3mWp9"'))
    result = cdp(tmp_path, "validate", script=LEAKY)
    no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: " in result.stderr and "syncs.g.nodes.leak.options.token: a secret written into the file" in result.stderr
    assert "Zq8vK3mWp9" not in result.stdout + result.stderr
    ok = cdp(tmp_path, "validate", env={"LEAK_TOKEN": "from-env-Zq8vK3"}, script=LEAKY)
    config.write_text(config.read_text().replace('"literal-Zq8vK3mWp9"', '"${LEAK_TOKEN}"'))
    ok = cdp(tmp_path, "validate", env={"LEAK_TOKEN": "from-env-Zq8vK3"}, script=LEAKY)
    assert ok.returncode == 0 and "warning" not in ok.stderr
