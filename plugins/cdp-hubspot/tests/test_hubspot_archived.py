"""``contacts_archived``: HubSpot's archived contacts as tombstones of ``contacts``' records.

Against the fake's ``GET /crm/v3/objects/contacts?archived=true`` (hubspot_fake.py): the conformance
suite (its deletion check included), the tombstones, the incremental read over a list with no
time filter, errors, and the runner taking an archived contact out of a real profile store.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx
from cdp_core.http import HttpFactory, ResponseError
from cdp_core.runinfo import RunInfo
from cdp_core.testing import RegisterPlugin, SourceConformance, kit_plugin, make_context, run_graph, to_toml
from hubspot_fake import BASE, T0, TOKEN, FakeHubSpot, contact

import cdp_hubspot
from cdp_hubspot import HubSpotConfig, HubSpotSource

LIST = f"{BASE}/crm/v3/objects/contacts"
CONFIG: dict[str, Any] = {"access_token": TOKEN, "page_size": 2}
SERVER_NOW = T0 + timedelta(days=10)
"""The fake's clock (its ``Date`` header): after every archival of these tests."""


def archived_portal(router: respx.Router, *ids: int) -> FakeHubSpot:
    """Contacts ``ids`` archived at minute 10 * id."""
    hub = FakeHubSpot(now=SERVER_NOW).install(router).install_archived(router)
    for n in ids:
        hub.archive(str(n), minutes=10 * n)
    return hub


class TestArchivedContacts(SourceConformance):
    """The core's contract of a source, on ``contacts_archived``: 5 archived contacts, 2 per page."""

    plugin = cdp_hubspot
    type_name = "hubspot"
    config: ClassVar[dict[str, Any]] = CONFIG
    stream = "contacts_archived"

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.fake = archived_portal(respx_mock, 1, 2, 3, 4, 5)

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        archived_portal(respx_mock)

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.fake.archive("6", minutes=500)
        self.fake.restore("1", minutes=510)  # restored, then archived again: a new deletion
        self.fake.archive("1", minutes=520)
        return ["6", "1"]

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str:
        self.fake.restore("1", minutes=600)
        self.fake.archive("1", minutes=601)
        return "1"

    def delete_records(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.fake.archive("7", minutes=700)
        self.fake.archive("8", minutes=700)
        return ["7", "8"]


def build(tmp_path: Path, http: HttpFactory, name: str = "crm", **options: Any) -> HubSpotSource:
    config = HubSpotConfig.model_validate({**CONFIG, **options})
    return HubSpotSource(config, make_context(tmp_path, name, services={"http": http.for_connector(name)}))


def read(source: HubSpotSource, cursor: Any = None) -> tuple[list[str], Any]:
    keys: list[str] = []
    final = cursor
    for page in source.stream("contacts_archived").read(cursor):
        keys += [r.key for r in page.records]
        final = page.cursor
    return keys, final


def test_archived_contacts_are_tombstones_of_the_contacts_records(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    hub = archived_portal(cdp_respx, 1)
    hub.archive("2", minutes=25, archived_at=False)  # no archivedAt: updatedAt stands for it
    source = build(tmp_path, cdp_http)
    records = [r for page in source.stream("contacts_archived").read(None) for r in page.records]
    assert [(r.stream, r.kind, r.key, r.deleted, r.data, r.identifiers) for r in records] == [
        ("crm.contacts", "profile", "1", True, {}, {}),
        ("crm.contacts", "profile", "2", True, {}, {}),
    ]
    assert [r.occurred_at for r in records] == [T0 + timedelta(minutes=10), T0 + timedelta(minutes=25)]
    stream = source.stream("contacts_archived")
    assert (stream.records_of, stream.emits_deletions, stream.cursor_field) == ("contacts", True, "archivedAt")


def test_the_list_request_and_its_paging(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    hub = archived_portal(cdp_respx, *range(1, 6))
    keys, _ = read(build(tmp_path, cdp_http, page_size=200))
    assert keys == ["1", "2", "3", "4", "5"]
    assert hub.lists == [{"archived": "true", "limit": "100"}]  # the list's maximum, not the search's 200
    hub.lists.clear()
    read(build(tmp_path, cdp_http))
    assert hub.lists == [
        {"archived": "true", "limit": "2"},
        {"archived": "true", "limit": "2", "after": "3"},
        {"archived": "true", "limit": "2", "after": "5"},
    ]
    assert hub.searches == [], "archived contacts are listed, never searched"


def test_a_second_run_emits_only_new_archivals(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    hub = archived_portal(cdp_respx, 1, 2, 3)
    keys, cursor = read(build(tmp_path, cdp_http))
    assert keys == ["1", "2", "3"]
    assert cursor["archived_since"] == (T0 + timedelta(minutes=29)).isoformat()  # the newest, minus the lookback
    assert read(build(tmp_path, cdp_http), cursor)[0] == [], "the whole list is read again, nothing delivered twice"
    hub.archive("9", minutes=40)
    keys, cursor = read(build(tmp_path, cdp_http), cursor)
    assert keys == ["9"]
    assert len(hub.lists) == 3 * 2  # every run reads the whole list (no filter by time)
    assert read(build(tmp_path, cdp_http), cursor)[0] == []


def test_an_archival_on_a_page_already_read_comes_next_run(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """Contact 1 (the first page) is archived while the read is on the last page, after contact 9 (read
    there): the mark stops at the moment the read began (the first answer's Date), so the next run has it."""
    hub = archived_portal(cdp_respx, 2, 3, 9)
    hub.archive("9", minutes=103)  # after the read began, too: the mark would be 103 (the next start 102)
    hub.objects["contacts"].append(contact(1, minutes=5))
    hub.now = T0 + timedelta(minutes=99)

    def archive_one_mid_read(request: httpx.Request) -> None:
        if request.url.params.get("after") == "4":
            hub.archive("1", minutes=100)

    hub.on_list = archive_one_mid_read
    keys, cursor = read(build(tmp_path, cdp_http))
    assert keys == ["2", "3", "9"]
    hub.on_list = None
    assert read(build(tmp_path, cdp_http), cursor)[0] == ["1"]


def test_resume_inside_a_read(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    archived_portal(cdp_respx, *range(1, 6))
    pages = list(build(tmp_path, cdp_http).stream("contacts_archived").read(None))
    assert [[r.key for r in p.records] for p in pages] == [["1", "2"], ["3", "4"], ["5"]]
    assert pages[0].cursor["after"] == "3" and pages[0].cursor["fresh"].keys() == {"2"}  # 1: before the next start
    assert read(build(tmp_path, cdp_http), pages[0].cursor)[0] == ["3", "4", "5"]


def test_rate_limited_then_a_5xx_then_ok(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    hub = archived_portal(cdp_respx, 1, 2)
    answers = iter([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(502)])
    cdp_respx.get(LIST).mock(side_effect=lambda request: next(answers, None) or hub.list_contacts(request))
    assert read(build(tmp_path, cdp_http))[0] == ["1", "2"]
    assert 3.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_bad_results_are_quarantined_a_bad_page_stops(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    hub = archived_portal(cdp_respx, 1, 2, 3)
    hub.archived[1].pop("archivedAt"), hub.archived[1].pop("updatedAt")  # contact 2: no time at all
    hub.archived[2].pop("id")
    pages = list(build(tmp_path, cdp_http, page_size=100).stream("contacts_archived").read(None))
    assert [r.key for p in pages for r in p.records] == ["1"]
    reasons = sorted(r.reason for p in pages for r in p.rejects)
    assert len(reasons) == 2
    assert "contact 2: archivedAt and updatedAt are missing or not a date-time" in reasons[0]
    assert "does not match ArchivedObject" in reasons[1]
    cdp_respx.get(LIST).respond(json={"results": {"not": "a list"}})
    with pytest.raises(ResponseError, match="results"):
        read(build(tmp_path, cdp_http))


# -- through the runner into the profile store -------------------------------------------------

STORE_CONFIG = """
[store]
url = "{store_url}"

[connectors.crm]
type = "hubspot"
access_token = "${{HUBSPOT_TOKEN}}"
page_size = 2

[connectors.store]
type = "profile_store"

[connectors.survey]
type = "list_source"
streams = {answers}

[syncs.crm.nodes.contacts]
source = "crm.contacts"

[syncs.crm.nodes.store]
destination = "store"
inputs = ["contacts"]

[syncs.crm_archived.nodes.archived]
source = "crm.contacts_archived"

[syncs.crm_archived.nodes.store]
destination = "store"
inputs = ["archived"]

[syncs.survey.nodes.answers]
source = "survey.answers"

[syncs.survey.nodes.store]
destination = "store"
inputs = ["answers"]
"""
ANSWERS = {
    "answers": {
        "records": [
            {"token": "t3", "email": "person3@example.com", "score": 9, "submitted_at": "2024-06-01T09:00:00Z"}
        ],
        "kind": "nps_response",
        "key_field": "token",
        "identifiers": {"email": "email"},
        "timestamp_field": "submitted_at",
    }
}


def test_an_archived_contact_leaves_the_profile_store(
    cdp_respx: respx.Router, cdp_http: HttpFactory, register_plugin: RegisterPlugin, tmp_path: Path, store_url: str
) -> None:
    """Contacts 1-3 synced, 2 and 3 archived: their records go; 2's person (no record left) is removed,
    3's stays with its NPS answer, its HubSpot id released and its contact traits gone. A second run
    deletes nothing; contact 2 restored comes back with the next contacts sync."""
    from cdp_core.store.engine import make_engine
    from cdp_profiles.store import tables
    from sqlalchemy import select

    hub = FakeHubSpot(now=SERVER_NOW).install(cdp_respx).install_archived(cdp_respx)
    hub.objects["contacts"] = [contact(n, minutes=n) for n in (1, 2, 3)]
    plugins = register_plugin(cdp_hubspot, extra=[kit_plugin, "profiles"])
    config = STORE_CONFIG.format(store_url=store_url, answers=to_toml(ANSWERS))

    def run(graph: str) -> RunInfo:
        info = run_graph(tmp_path, config, plugins, graph, services={"http": cdp_http}, env={"HUBSPOT_TOKEN": TOKEN})
        assert info.status == "succeeded", info.error
        return info

    def people() -> dict[frozenset[tuple[str, str]], dict[str, Any]]:
        """Live people: their identifiers -> their traits."""
        engine = make_engine(store_url)
        try:
            with engine.connect() as conn:
                profiles = tables.profiles
                identities = tables.identities
                live = {p.id: p.traits for p in conn.execute(select(profiles).where(profiles.c.merged_into.is_(None)))}
                ids: dict[str, set[tuple[str, str]]] = {p: set() for p in live}
                for row in conn.execute(select(identities.c.type, identities.c.value, identities.c.profile_id)):
                    ids[row.profile_id].add((row.type, row.value))
        finally:
            engine.dispose()
        return {frozenset(ids[p]): dict(traits) for p, traits in live.items()}

    def contact_keys() -> list[str]:
        engine = make_engine(store_url)
        try:
            with engine.connect() as conn:
                table = tables.profile_records
                return sorted(conn.execute(select(table.c.key).where(table.c.stream == "crm.contacts")).scalars())
        finally:
            engine.dispose()

    run("crm")
    run("survey")
    assert contact_keys() == ["1", "2", "3"] and len(people()) == 3
    assert (
        people()[frozenset({("email", "person3@example.com"), ("hubspot_contact_id", "3")})]["first_name"] == "Person3"
    )
    hub.archive("2", minutes=60)
    hub.archive("3", minutes=61)
    info = run("crm_archived")
    assert info.nodes["archived"].records_out == 2
    assert contact_keys() == ["1"]
    after = people()
    assert len(after) == 2, "contact 2's person had no other record: removed"
    person3 = after[frozenset({("email", "person3@example.com")})]
    assert "first_name" not in person3, "the traits the archived contact gave are gone"
    assert frozenset({("email", "person1@example.com"), ("hubspot_contact_id", "1")}) in after

    assert run("crm_archived").nodes["archived"].records_out == 0, "nothing archived since: nothing deleted again"
    hub.restore("2", minutes=90)  # restored within HubSpot's 90 days: modified, so the search has it again
    assert run("crm").nodes["contacts"].records_out == 1
    assert contact_keys() == ["1", "2"]
    assert frozenset({("email", "person2@example.com"), ("hubspot_contact_id", "2")}) in people()
