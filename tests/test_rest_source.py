"""The declarative REST source (``type = "rest"``): the docs' Pipedrive-like and HubSpot-like examples, as written there, against fake APIs.

The TOML is read from docs/rest-source.md, so the example and what is tested cannot drift.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx

from cdp_core.builtins import rest
from cdp_core.builtins.rest import RestSource, RestSourceConfig
from cdp_core.config import ConfigError, load_config
from cdp_core.http import HttpFactory, ResponseError
from cdp_core.plugins import Plugins
from cdp_core.runinfo import RunStatus
from cdp_core.store import SystemStore
from cdp_core.testing import Collector, SourceConformance, kit_plugin, make_context, roundtrip, run_graph
from examples import hubspot_api
from examples.hubspot_api import FakeHubSpotSearch, contact
from examples.pipedrive_api import BASE, TOKEN, URL, FakePipedrive, persons

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rest-source.md"


def docs_example(name: str) -> str:
    """The TOML block after ``<!-- example: NAME ...-->`` in docs/rest-source.md."""
    match = re.search(rf"<!-- example: {name}\b[^>]*-->\s*```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert match, f"no example {name!r} in {DOCS}"
    return match.group(1)


def connector_options(name: str, env: dict[str, str]) -> dict[str, Any]:
    text = docs_example(name)
    for key, value in env.items():
        text = text.replace("${" + key + "}", value)
    options = dict(tomllib.loads(text)["connectors"][name])
    assert options.pop("type") == "rest"
    return options


PIPEDRIVE = connector_options("pipedrive", {"PIPEDRIVE_API_TOKEN": TOKEN})


class TestPipedrivePersons(SourceConformance):
    """The conformance suite on the docs' example: paging, resuming, incremental, changes between pages."""

    plugin = rest
    plugin_name = "cdp.rest"
    type_name = "rest"
    config: ClassVar[dict[str, Any]] = PIPEDRIVE
    stream = "persons"

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.api = FakePipedrive(persons())
        respx_mock.get(URL).mock(side_effect=self.api)

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        respx_mock.get(URL).mock(side_effect=FakePipedrive([]))

    def delete_records(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.api.rows[0]["active_flag"] = False  # deleted in Pipedrive: inactive, with a newer update_time
        self.api.touch(1, "2024-06-03 08:00:00")
        return ["1"]

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.api.rows.append({**persons()[0], "id": 6, "update_time": "2024-06-01 08:00:00"})
        self.api.touch(2, "2024-06-02 08:00:00")
        return ["6", "2"]

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str:
        self.api.touch(1, "2024-07-01 09:00:00")
        return "1"


# -- the docs' HubSpot-like search example ------------------------------------------------------

HUBSPOT = connector_options("hubspot", {"HUBSPOT_TOKEN": hubspot_api.TOKEN})
HUBSPOT_SMALL_PAGES = copy.deepcopy(HUBSPOT)
HUBSPOT_SMALL_PAGES["streams"]["contacts"]["json"]["limit"] = 2  # five contacts: three pages


def five_contacts() -> list[dict[str, Any]]:
    return [contact(1, 10), contact(2, 20), contact(3, 20), contact(4, 30), contact(5, 40)]  # 2 and 3: one time


class TestHubSpotContacts(SourceConformance):
    """The suite on the docs' search example (its page size lowered to 2): POST bodies, ``after`` tokens in the
    body, the GTE filter restarted from the last lastmodifieddate read, a contact edited between pages."""

    plugin = rest
    plugin_name = "cdp.rest"
    type_name = "rest"
    config: ClassVar[dict[str, Any]] = HUBSPOT_SMALL_PAGES
    stream = "contacts"

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.api = FakeHubSpotSearch(five_contacts())
        respx_mock.post(hubspot_api.URL).mock(side_effect=self.api)

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        respx_mock.post(hubspot_api.URL).mock(side_effect=FakeHubSpotSearch([]))

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.api.contacts.append(contact(6, 50))
        self.api.modify("2", 60, firstname="Renamed")
        return ["6", "2"]

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str:
        self.api.modify("1", 90, lastname="Edited")  # first page; now the newest
        return "1"


def test_hubspot_example_second_run_repeats_nothing(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """As the docs write it (100 a page): one run reads all, the next asks from the last time read and
    delivers nothing again; an edit after it comes once."""
    api = FakeHubSpotSearch(five_contacts())
    cdp_respx.post(hubspot_api.URL).mock(side_effect=api)
    context = make_context(tmp_path, "hubspot", services={"http": cdp_http})
    source = RestSource(RestSourceConfig.model_validate(HUBSPOT), context)
    first, cursor = read_all(source, None)
    assert first == ["1", "3", "2", "4", "5"]  # the fake gives ties in descending id order
    gte = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": 0}
    assert api.bodies[0]["filterGroups"][0]["filters"][0] == gte  # the docs' body, {start} at the epoch
    again, cursor = read_all(source, cursor)
    assert again == []
    assert api.bodies[-1]["filterGroups"][0]["filters"][0]["value"] == hubspot_api.ms(hubspot_api.at(40))
    api.modify("3", 70)
    assert read_all(source, cursor)[0] == ["3"]


def read_all(source: RestSource, cursor: Any) -> tuple[list[str], Any]:
    keys: list[str] = []
    for page in source.stream("contacts").read(roundtrip(cursor)):
        keys += [r.key for r in page.records]
        cursor = page.cursor
    return keys, cursor


# -- the same example, record by record and request by request ---------------------------------


@pytest.fixture
def api(cdp_respx: respx.Router) -> FakePipedrive:
    fake = FakePipedrive(persons())
    cdp_respx.get(URL).mock(side_effect=fake)
    return fake


def build(tmp_path: Path, http: HttpFactory, options: dict[str, Any] | None = None) -> RestSource:
    config = RestSourceConfig.model_validate(options or PIPEDRIVE)
    return RestSource(config, make_context(tmp_path, "pipedrive", services={"http": http}))


def test_two_identifier_lists_and_traits(api: FakePipedrive, cdp_http: HttpFactory, tmp_path: Path) -> None:
    source = build(tmp_path, cdp_http)
    page = next(source.stream("persons").read(None))
    first = page.records[0]
    assert first.stream == "pipedrive.persons" and first.key == "1"
    assert first.identifiers == {
        "pipedrive_person_id": "1",
        "email": ["p1.0@example.com", "p1.1@example.com"],
        "phone": ["+4930100000"],
    }
    assert first.identifier_values("email") == ["p1.0@example.com", "p1.1@example.com"]
    assert first.occurred_at is not None and first.occurred_at.isoformat() == "2024-05-01T10:00:00+00:00"
    assert source.stream("persons").traits is not None
    # the token went in the query, the filter in the API's own format on the next request
    assert api.requests[0].url.params["api_token"] == TOKEN and "updated_since" not in api.requests[0].url.params
    list(source.stream("persons").read(page.cursor))
    assert api.requests[1].url.params["updated_since"] == "2024-05-02 10:00:00"


def test_malformed_record_is_quarantined_and_the_read_goes_on(
    api: FakePipedrive, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    pages = list(build(tmp_path, cdp_http).stream("persons").read(None))
    rejects = [r for p in pages for r in p.rejects]
    # met again at a page boundary (an inclusive filter), it is the same entry: quarantine keeps it once
    assert {(r.reason, r.raw["name"]) for r in rejects} == {("an item of GET /v1/persons: no primary key id", "no id")}
    assert [r.key for p in pages for r in p.records] == ["1", "2", "3", "4", "5"]


def test_rate_limited_with_retry_after_then_a_5xx(api: FakePipedrive, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(503)])
    cdp_respx.get(URL).mock(side_effect=lambda request: next(answers, None) or api(request))
    keys = [r.key for p in build(tmp_path, cdp_http).stream("persons").read(None) for r in p.records]
    assert keys == ["1", "2", "3", "4", "5"]
    assert 7.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_malformed_page_fails_the_read_before_its_cursor(
    api: FakePipedrive, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    calls = iter([None, httpx.Response(200, json={"success": True, "data": {"oops": 1}})])
    cdp_respx.get(URL).mock(side_effect=lambda request: next(calls, None) or api(request))
    pages = build(tmp_path, cdp_http).stream("persons").read(None)
    first = next(pages)
    with pytest.raises(ResponseError) as info:
        next(pages)
    assert [r.key for r in first.records] == ["1", "2"]
    assert "record_path 'data' is a dict, not a list" in str(info.value) and "connector 'pipedrive'" in str(info.value)


@pytest.mark.parametrize("ascending", [True, False])
def test_offsets_over_changing_data_lose_a_record_unless_ascending(
    api: FakePipedrive, cdp_http: HttpFactory, tmp_path: Path, ascending: bool
) -> None:
    """What the conformance case guards against: without ``ascending``, the offsets skip the person who shifts back."""
    options = copy.deepcopy(PIPEDRIVE)
    options["streams"]["persons"]["incremental"]["ascending"] = ascending
    pages = build(tmp_path, cdp_http, options).stream("persons").read(None)
    keys = [r.key for r in next(pages).records]
    api.touch(1, "2024-07-01 09:00:00")
    keys += [r.key for page in pages for r in page.records]
    assert keys == (["1", "2", "3", "4", "5", "1"] if ascending else ["1", "2", "4", "5", "1"])


def test_a_keyless_record_at_a_page_boundary_is_quarantined_once(
    api: FakePipedrive, tmp_path: Path, store_url: str, register_plugin: Any
) -> None:
    """Through the runner into a store: the item without an id shares the time the next request starts from,
    so the read meets it twice; it is rejected once (one reject counted, one quarantine row)."""
    graph = f"""
[store]
url = "{store_url}"

{docs_example("pipedrive")}
[connectors.sink]
type = "collect"

[syncs.people.nodes.persons]
source = "pipedrive.persons"

[syncs.people.nodes.out]
destination = "sink"
inputs = ["persons"]
"""
    collector = Collector()
    run = run_graph(tmp_path, graph, register_plugin(kit_plugin), "people", collector=collector,
                    env={"PIPEDRIVE_API_TOKEN": TOKEN})  # fmt: skip
    assert run.status is RunStatus.succeeded, run.error
    assert collector.keys("sink") == ["1", "2", "3", "4", "5"]
    assert [dict(r.url.params).get("updated_since") for r in api.requests][-2:] == [
        "2024-05-04 10:00:00", "2024-05-04 12:00:00",  # the keyless item's time: asked again from it
    ]  # fmt: skip
    assert run.nodes["persons"].rejected == 1
    store = SystemStore(store_url)
    try:
        rows = store.quarantine(graph="people")
        assert [(r["node"], r["reason"], r["record_key"]) for r in rows] == [
            ("persons", "an item of GET /v1/persons: no primary key id", None)
        ]
        assert rows[0]["payload"]["name"] == "no id"
        again = run_graph(tmp_path, graph, register_plugin(kit_plugin), "people", collector=collector,
                          env={"PIPEDRIVE_API_TOKEN": TOKEN})  # fmt: skip
        assert again.status is RunStatus.succeeded and again.nodes["persons"].records_out == 0
        assert store.quarantine_count("people") == 1
    finally:
        store.engine.dispose()


def test_deleted_person_is_a_tombstone(api: FakePipedrive, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api.rows[0]["active_flag"] = False
    record = next(build(tmp_path, cdp_http).stream("persons").read(None)).records[0]
    assert record.deleted and record.key == "1" and record.data == {} and record.identifiers == {}


def test_the_token_stays_out_of_errors(api: FakePipedrive, cdp_http: HttpFactory, tmp_path: Path) -> None:
    options = connector_options("pipedrive", {"PIPEDRIVE_API_TOKEN": "wrong-secret-token"})
    with pytest.raises(Exception) as info:
        list(build(tmp_path, cdp_http, options).stream("persons").read(None))
    assert "401" in str(info.value) and "wrong-secret-token" not in str(info.value)


# -- validation, like any plugin's config --------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connectors.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_docs_examples_validate_as_connectors_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdp_plugins: Plugins) -> None:
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", TOKEN)
    monkeypatch.setenv("HUBSPOT_TOKEN", "hs-token")
    text = docs_example("pipedrive") + "\n" + docs_example("hubspot")
    config = load_config(write_config(tmp_path, text), cdp_plugins)
    assert set(config.connectors) >= {"pipedrive", "hubspot"}
    for name in ("pipedrive", "hubspot"):
        lines = [line for line in docs_example(name).splitlines() if line.strip()]
        assert len(lines) < 40, f"the {name} example has {len(lines)} lines"


def test_unknown_key_gets_a_did_you_mean_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdp_plugins: Plugins
) -> None:
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", TOKEN)
    text = docs_example("pipedrive").replace('record_path = "data"', 'record_pth = "data"')
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, text), cdp_plugins)
    message = str(info.value)
    assert "connectors.pipedrive.streams.persons.record_pth" in message and "record_path" in message
    assert re.search(r"connectors\.toml:\d+:", message)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"base_url": "http://api.example.com"}, "plain http:// is allowed only for a loopback"),
        ({"auth": {"type": "api_key", "name": "t", "api_key": "k", "location": "cookie"}}, "location"),
        ({"streams": {"s": {"path": "/x", "json": {"a": "{start}"}, "method": "POST"}}}, "needs an incremental block"),
        ({"streams": {"s": {"path": "/x", "paginator": {"type": "offst"}}}}, "offst"),
    ],
)
def test_bad_options_are_refused(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        RestSourceConfig.model_validate({"base_url": BASE, "streams": {"s": {"path": "/x"}}, **change})
