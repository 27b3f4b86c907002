"""Test support for plugins that send people out of the profile store: consent checked on every export.

:class:`ConsentExport` builds a real store (SQLite or PostgreSQL: the ``store_url``
fixture of ``cdp_core.testing.databases``) holding three people and their consent
decisions, loaded through the real runner, and a graph that sends everyone from the
store to the destination under test::

    export = ConsentExport(tmp_path, store_url, plugins, DESTINATION_TOML, node='options = {...}')
    export.ingest()                 # people and consents into the store
    run = export.export()           # store.profiles_all -> the destination node "out"
    assert run.nodes["out"].held_back == {"ads consent revoked": 1}
    export.assert_absent(request_bodies, BEN)   # no trace of Ben in what was sent
    export.revoke(CLEO, "ads")      # a later revocation; the next export removes Cleo from a mirror

The people: Ana granted every purpose; Ben granted them, then revoked them all a day
later (the latest decision wins); Cleo granted them (and revokes one when a test
says so). Each has an email, a phone and a HubSpot contact id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from cdp_core.plugins import Plugins
from cdp_core.runinfo import RunInfo
from cdp_core.store.engine import make_engine
from cdp_core.testing import run_graph, to_toml

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store.queries import find_profile


@dataclass(frozen=True)
class Person:
    key: str
    email: str
    phone: str
    """As a vendor writes it; E.164 ``+49301000001`` once normalized."""
    first_name: str
    hubspot_contact_id: str

    @property
    def e164(self) -> str:
        return "+" + "".join(c for c in self.phone if c.isdigit())

    def row(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "email": self.email,
            "phone": self.phone,
            "first_name": self.first_name,
            "hubspot_contact_id": self.hubspot_contact_id,
        }

    def traces(self) -> list[str]:
        """What would give the person away in a request body or a file: raw and SHA-256 hashed email and phone."""
        digits = self.e164.lstrip("+")
        forms = [self.email, self.e164, digits]
        return forms + [hashlib.sha256(f.encode()).hexdigest() for f in forms]


ANA = Person("ana", "ana@example.org", "+49 30 1000001", "Ana", "101")
BEN = Person("ben", "ben@example.org", "+49 30 1000002", "Ben", "102")
CLEO = Person("cleo", "cleo@example.org", "+49 30 1000003", "Cleo", "103")
PEOPLE = (ANA, BEN, CLEO)
PURPOSES = ("ads", "email", "crm")
"""The purposes the people decide on: those of every destination type's default."""


def decision(person: Person, purpose: str, status: str, day: int) -> dict[str, Any]:
    """A consent row as a consent stream delivers it (a form, a newsletter tool)."""
    return {
        "id": f"{person.key}-{purpose}-{status}-{day}",
        "email": person.email,
        "purpose": purpose,
        "status": status,
        "source": "preference centre",
        "at": f"2024-05-{day:02d}T09:00:00+00:00",
    }


def first_decisions() -> list[dict[str, Any]]:
    """Everyone granted every purpose on 1 May; Ben revoked them all on 2 May."""
    rows = [decision(p, purpose, "granted", 1) for p in PEOPLE for purpose in PURPOSES]
    return rows + [decision(BEN, purpose, "revoked", 2) for purpose in PURPOSES]


@dataclass
class ConsentExport:
    """A store with people and their consent, and a graph sending them all from the store to one destination.

    :param destination: the TOML of ``[connectors.out]``, the destination under test
        (its type, options and ``${ENV}`` secrets).
    :param node: extra lines of the graph's destination node ``out`` (``options = {...}``,
        ``purpose = "..."``).
    :param env: the environment the config is loaded with (the destination's secrets).
    :param services: the runner's services (``{"http": cdp_http}``).
    """

    tmp_path: Path
    store_url: str
    plugins: Plugins
    destination: str
    node: str = ""
    env: dict[str, str] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=first_decisions)

    def toml(self) -> str:
        people = {"records": [p.row() for p in PEOPLE], "identifiers": {
            "email": "email", "phone": "phone", "hubspot_contact_id": "hubspot_contact_id"}}  # fmt: skip
        consents = {"records": self.decisions, "kind": "consent", "identifiers": {"email": "email"},
                    "timestamp_field": "at"}  # fmt: skip
        return f"""
[store]
url = "{self.store_url}"

[identity]
default_region = "DE"

[connectors.src]
type = "list_source"
streams = {to_toml({"people": people, "consents": consents})}

[connectors.store]
type = "profile_store"

{self.destination}

[syncs.ingest.nodes.people]
source = "src.people"

[syncs.ingest.nodes.consents]
source = "src.consents"

[syncs.ingest.nodes.store]
destination = "store"
inputs = ["people", "consents"]

[syncs.export.nodes.profiles]
source = "store.profiles_all"

[syncs.export.nodes.out]
destination = "out"
inputs = ["profiles"]
{self.node}
"""

    def _run(self, graph: str) -> RunInfo:
        run = run_graph(self.tmp_path, self.toml(), self.plugins, graph, services=self.services, env=self.env)
        assert run.status == "succeeded", f"{graph}: {run.status}: {run.error}"
        return run

    def ingest(self) -> RunInfo:
        """Load the people and every consent decision not loaded yet into the store."""
        return self._run("ingest")

    def export(self) -> RunInfo:
        """One run of the export graph: everyone in the store toward the destination node ``out``."""
        return self._run("export")

    def revoke(self, person: Person, purpose: str, day: int = 3) -> RunInfo:
        """A revocation arriving later (``day`` of May), loaded into the store."""
        self.decisions.append(decision(person, purpose, "revoked", day))
        return self.ingest()

    def export_after_revocation(self, router: Any, person: Person, purpose: str) -> tuple[RunInfo, list[str]]:
        """``person`` revokes ``purpose`` later; the next export holds them back too (Ben and them).

        Returns that run and the bodies of the requests it made (``router``: the test's respx router).
        """
        self.revoke(person, purpose)
        seen = len(router.calls)
        run = self.export()
        held = {f"{purpose} consent revoked": 2}
        assert run.nodes["out"].held_back == held
        self.assert_held_back_in_cdp_runs(run, "out", held)
        return run, request_bodies(router)[seen:]

    def profile_id(self, person: Person) -> str:
        engine = make_engine(self.store_url)
        try:
            found = find_profile(engine, f"email:{person.email}", IdentityConfig())
        finally:
            engine.dispose()
        assert found is not None, person
        return found

    def assert_absent(self, texts: Iterable[str], person: Person) -> None:
        """No trace of ``person`` (email, phone, raw or hashed, profile id) in any of ``texts``."""
        traces = [*person.traces(), self.profile_id(person)]
        for text in texts:
            found = [t for t in traces if t in text]
            assert not found, f"{person.key} was sent ({found[0]!r} in {text[:200]!r})"

    def assert_present(self, texts: Iterable[str], person: Person) -> None:
        """Some trace of ``person`` in ``texts``: the check above is not vacuous."""
        traces = [*person.traces(), self.profile_id(person)]
        assert any(t in text for text in texts for t in traces), f"{person.key} was not sent"

    def assert_first_export(self, run: RunInfo, texts: list[str], purpose: str) -> None:
        """The first export: Ben (who revoked ``purpose``) in none of ``texts`` (request bodies, file lines),
        Ana in some; Ben counted as held back in the run's node ``out`` and shown so by ``cdp runs``."""
        self.assert_absent(texts, BEN)
        self.assert_present(texts, ANA)
        held = {f"{purpose} consent revoked": 1}
        assert run.nodes["out"].held_back == held
        assert (run.nodes["out"].records_in, run.nodes["out"].held_back_total) == (len(PEOPLE), 1)
        self.assert_held_back_in_cdp_runs(run, "out", held)

    def cdp_runs(self) -> tuple[str, list[dict[str, Any]]]:
        """``cdp runs`` of the config, as the table's text and as ``--json``."""
        from cdp_core.cli import build_app
        from typer.testing import CliRunner

        config = str(self.tmp_path / "connectors.toml")
        with _plugins(self.plugins):
            app = build_app(self.plugins)
            table = CliRunner().invoke(app, ["runs", "-c", config], terminal_width=200)
            as_json = CliRunner().invoke(app, ["runs", "-c", config, "--json"])
        assert table.exit_code == 0 and as_json.exit_code == 0, table.output + as_json.output
        return table.stdout, json.loads(as_json.stdout)

    def assert_held_back_in_cdp_runs(self, run: RunInfo, node: str, held: dict[str, int]) -> None:
        """``cdp runs`` lists the run's held-back count per node and reason, and ``--json`` holds it."""
        table, runs = self.cdp_runs()
        [shown] = [r for r in runs if r["id"] == run.id]
        assert shown["nodes"][node]["held_back"] == held
        reasons = ", ".join(f"{reason}: {count:,}" for reason, count in sorted(held.items()))
        assert f"{run.id[:8]} {node}: held back: {reasons}" in table, table


@contextmanager
def _plugins(plugins: Plugins) -> Iterator[None]:
    """The CLI's commands load their plugins through ``common.plugins()``: these ones, for the block."""
    from cdp_core.cli import common

    with mock.patch.object(common, "plugins", lambda: plugins):
        yield


def request_bodies(router: Any) -> list[str]:
    """The body of every request a respx router answered, as text (JSON as it went on the wire)."""
    return [call.request.content.decode("utf-8", "replace") for call in router.calls]


def file_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []
