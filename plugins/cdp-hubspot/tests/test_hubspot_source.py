"""The HubSpot source against a fake of HubSpot's search API (hubspot_fake.py).

Nothing goes over the network (cdp_respx fails an unmocked request) and nothing
really sleeps (conftest.py: the kit's cdp_http factory records sleeps).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx
from cdp_core.http import AuthError, HttpFactory, NetworkError, RateLimit, ResponseError, ServerError
from cdp_core.testing import SourceConformance, make_context, roundtrip
from hubspot_fake import BASE, SEARCH_CAP, TOKEN, FakeHubSpot, at, company, contact, ms

import cdp_hubspot
from cdp_hubspot import HubSpotConfig, HubSpotSource

SEARCH = f"{BASE}/crm/v3/objects/contacts/search"
CONFIG: dict[str, Any] = {"access_token": TOKEN, "page_size": 2}


def five_contacts() -> list[dict[str, Any]]:
    return [contact(n, minutes=10 * n) for n in range(1, 6)]


class TestContacts(SourceConformance):
    """The core's contract of a source, on ``contacts``: 5 contacts, 2 per page."""

    plugin = cdp_hubspot
    type_name = "hubspot"
    config: ClassVar[dict[str, Any]] = CONFIG
    stream = "contacts"

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.fake = FakeHubSpot().install(respx_mock)
        self.fake.objects["contacts"] = five_contacts()

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        FakeHubSpot().install(respx_mock)

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.fake.objects["contacts"].append(contact(6, minutes=500))
        self.fake.modify("contacts", "1", minutes=400, city="Berlin")  # changed since the last run
        return ["6", "1"]

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str:
        # An edit in HubSpot while the read pages: contact 1 (first page) moves past the others.
        # An `after` offset would now skip contact 3, which shifts into the page already read.
        self.fake.modify("contacts", "1", minutes=300, city="Berlin")
        return "1"


class TestContactsOneMillisecond(SourceConformance):
    """A bulk import: more contacts share one lastmodifieddate than fit a page (the walk by id)."""

    plugin = cdp_hubspot
    type_name = "hubspot"
    config: ClassVar[dict[str, Any]] = {"access_token": TOKEN, "page_size": 3}
    stream = "contacts"

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.fake = FakeHubSpot().install(respx_mock)
        self.fake.objects["contacts"] = [contact(1, 5)] + [contact(n, 20) for n in range(2, 10)] + [contact(10, 30)]

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        FakeHubSpot().install(respx_mock)

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.fake.objects["contacts"].append(contact(11, minutes=30))  # the last run's final millisecond
        self.fake.modify("contacts", "4", minutes=45)
        return ["11", "4"]

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str:
        # The first page is contacts 1, 9 and 8 (ties come in descending id order): 9 leaves the
        # millisecond being walked while the read is inside it.
        self.fake.modify("contacts", "9", minutes=45)
        return "9"


class TestCompanies(SourceConformance):
    """``companies``: incremental by hs_lastmodifieddate through the companies search."""

    plugin = cdp_hubspot
    type_name = "hubspot"
    config: ClassVar[dict[str, Any]] = CONFIG
    stream = "companies"

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.fake = FakeHubSpot().install(respx_mock)
        self.fake.objects["companies"] = [company(n, minutes=7 * n) for n in range(101, 106)]

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        FakeHubSpot().install(respx_mock)

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.fake.objects["companies"].append(company(106, minutes=900))
        self.fake.modify("companies", "103", minutes=901, industry="RETAIL")
        return ["106", "103"]

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str:
        self.fake.modify("companies", "101", minutes=902, industry="RETAIL")
        return "101"


# -- helpers ------------------------------------------------------------------------------------


def build(tmp_path: Path, http: HttpFactory, name: str = "crm", **options: Any) -> HubSpotSource:
    config = HubSpotConfig.model_validate({**CONFIG, **options})
    return HubSpotSource(config, make_context(tmp_path, name, services={"http": http.for_connector(name)}))


def read(source: HubSpotSource, cursor: Any = None, stream: str = "contacts") -> tuple[list[str], Any]:
    keys: list[str] = []
    final = cursor
    for page in source.stream(stream).read(cursor):
        keys += [r.key for r in page.records]
        final = page.cursor
    return keys, roundtrip(final)


@pytest.fixture
def fake(cdp_respx: respx.Router) -> FakeHubSpot:
    hub = FakeHubSpot().install(cdp_respx)
    hub.objects["contacts"] = five_contacts()
    return hub


def scripted(fake: FakeHubSpot, **answers: Any) -> Any:
    """A side effect: call N (``at_1``, ``at_2``...) answers ``answers["at_N"]`` (a response or an
    exception to raise); every other call goes to the fake API."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        answer = answers.get(f"at_{calls}")
        if isinstance(answer, Exception):
            raise answer
        return answer if answer is not None else fake.search(request)

    return handler


def filters(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f["propertyName"], f["operator"], f["value"]) for f in body["filterGroups"][0]["filters"]]


# -- records ------------------------------------------------------------------------------------


def test_contact_records(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake.modify("contacts", "2", minutes=20, phone="+49 171 1234567")
    page = next(build(tmp_path, cdp_http).stream("contacts").read(None))
    first, second = page.records
    assert first.stream == "crm.contacts" and first.kind == "profile" and first.key == "1"
    assert first.identifiers == {"hubspot_contact_id": "1", "email": "person1@example.com"}
    assert second.identifiers == {"hubspot_contact_id": "2", "email": "person2@example.com", "phone": "+49 171 1234567"}
    assert first.data["firstname"] == "Person1" and first.data["lastmodifieddate"] == at(10)
    assert first.data["createdAt"] == at(0) and first.data["archived"] is False
    assert first.occurred_at is not None and first.occurred_at.isoformat() == "2024-05-01T10:10:00+00:00"


def test_additional_emails_and_the_mobile_phone_are_further_values(
    fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake.modify("contacts", "2", minutes=20, phone="+49 171 1234567", mobilephone="+49 171 7654321",
                hs_additional_emails="p2@work.example; person2@example.com;;old2@example.org")  # fmt: skip
    page = next(build(tmp_path, cdp_http).stream("contacts").read(None))
    assert "hs_additional_emails" in fake.searches[0]["properties"]
    first, second = page.records
    assert first.identifiers["email"] == "person1@example.com", "one email: a text, as before"
    assert second.identifiers["email"] == ["person2@example.com", "p2@work.example", "old2@example.org"]
    assert second.identifiers["phone"] == ["+49 171 1234567", "+49 171 7654321"]


def test_company_records_link_no_person(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    hub = FakeHubSpot().install(cdp_respx)
    hub.objects["companies"] = [company(7, minutes=1)]
    (record,) = [r for page in build(tmp_path, cdp_http).stream("companies").read(None) for r in page.records]
    # A company's phone is a switchboard, its domain no person's: neither may link people.
    assert record.identifiers == {"hubspot_company_id": "7"}
    assert record.kind == "profile" and record.stream == "crm.companies"
    assert record.data["name"] == "Company 7" and record.data["phone"] == "+49 30 1234567"
    assert hub.searches[0]["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]


def test_default_trait_mappings_keep_people_facts_not_ids_or_dates(
    fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake.modify(
        "contacts", "1", minutes=10, city="Köln", country="Germany", lifecyclestage="customer", hs_email_optout="true"
    )
    source = build(tmp_path, cdp_http)
    first = next(source.stream("contacts").read(None)).records[0]
    mapping = source.stream("contacts").traits
    assert mapping is not None
    traits, problems = mapping.apply(first.data)
    assert problems == []
    assert traits == {
        "first_name": "Person1",
        "last_name": "Example",
        "city": "Köln",
        "country": "Germany",
        "lifecycle_stage": "customer",
        "email_opt_out": True,
    }
    fake.objects["companies"] = [
        company(7, minutes=1, numberofemployees="250", annualrevenue="1250000.50", industry="RETAIL")
    ]
    company_record = next(source.stream("companies").read(None)).records[0]
    companies = source.stream("companies").traits
    assert companies is not None
    assert companies.apply(company_record.data) == (
        {
            "name": "Company 7",
            "domain": "company7.example",
            "industry": "RETAIL",
            "employees": 250,
            "annual_revenue": 1250000.5,
        },
        [],
    )


def test_a_stream_mapping_in_the_config_replaces_the_default(cdp_http: HttpFactory, tmp_path: Path) -> None:
    source = build(
        tmp_path,
        cdp_http,
        traits={
            "contacts": {
                "first_name": "firstname",
                "interests": {"field": "hs_interests", "type": "list", "separator": ";"},
            }
        },
    )
    mapping = source.stream("contacts").traits
    assert mapping is not None and mapping.apply({"firstname": "A", "hs_interests": "golf;wine", "city": "X"})[0] == {
        "first_name": "A",
        "interests": ["golf", "wine"],
    }
    companies = source.stream("companies").traits
    assert companies is not None and "employees" in companies.fields  # untouched: the default
    with pytest.raises(ValueError, match="no stream 'contact' \\(did you mean 'contacts'\\?\\)"):
        HubSpotConfig.model_validate({**CONFIG, "traits": {"contact": ["city"]}})
    with pytest.raises(ValueError, match="unknown trait type 'bool'"):
        HubSpotConfig.model_validate({**CONFIG, "traits": {"contacts": {"x": {"field": "x", "type": "bool"}}}})


def test_search_request_shape(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    read(build(tmp_path, cdp_http, properties=["email", "city"]))
    body = fake.searches[0]
    assert body == {
        "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "city", "lastmodifieddate"],
        "limit": 2,
    }


# -- paging, the cap, the lookback ----------------------------------------------------------------


def test_pages_restart_the_filter_from_the_last_value(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    pages = list(build(tmp_path, cdp_http).stream("contacts").read(None))
    # Every page is a new search from the last lastmodifieddate seen (GTE: ties at the boundary are
    # not lost; the one already delivered is dropped by id), never HubSpot's offset `after`. With
    # 2 per page that leaves 1 new contact per page; with HubSpot's 200, 199.
    assert [[r.key for r in p.records] for p in pages] == [["1", "2"], ["3"], ["4"], ["5"]]
    assert [filters(b) for b in fake.searches] == [
        [("lastmodifieddate", "GTE", "0")],
        [("lastmodifieddate", "GTE", str(ms(at(20))))],
        [("lastmodifieddate", "GTE", str(ms(at(30))))],
        [("lastmodifieddate", "GTE", str(ms(at(40))))],
    ]
    assert all("after" not in b for b in fake.searches)
    assert pages[-1].cursor["mark"] == ms(at(50)) and "pos" not in pages[-1].cursor


def test_more_than_the_10000_result_cap(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """10,250 contacts: HubSpot refuses `after` past 10,000; restarting the filter reads them all, once each."""
    hub = FakeHubSpot().install(cdp_respx)
    hub.objects["contacts"] = [contact(n, minutes=n / 60) for n in range(1, SEARCH_CAP + 251)]
    keys, cursor = read(build(tmp_path, cdp_http, page_size=200))
    assert len(keys) == SEARCH_CAP + 250 and len(set(keys)) == len(keys)
    assert keys[:3] == ["1", "2", "3"] and keys[-1] == str(SEARCH_CAP + 250)
    assert cursor["mark"] == ms(at((SEARCH_CAP + 250) / 60))
    assert len(hub.searches) == 52  # 10,250 / 199 new per page (each restart re-reads its boundary contact)


def test_the_fake_refuses_paging_past_the_cap(cdp_respx: respx.Router) -> None:
    """The fake behaves as HubSpot: `after` at 10,000 is a 400 (so the test above proves the restart)."""
    FakeHubSpot().install(cdp_respx)
    answer = httpx.post(SEARCH, json={"after": "10000", "limit": 200}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 400


def test_one_millisecond_of_many_contacts_is_walked_by_id(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    hub = FakeHubSpot().install(cdp_respx)
    hub.objects["contacts"] = [contact(n, minutes=20) for n in range(1, 8)] + [contact(8, minutes=21)]
    keys, _ = read(build(tmp_path, cdp_http, page_size=3))
    assert sorted(keys) == [str(n) for n in range(1, 9)] and len(keys) == 8
    t = str(ms(at(20)))
    assert [filters(b) for b in hub.searches] == [
        [("lastmodifieddate", "GTE", "0")],
        [("lastmodifieddate", "GTE", t)],  # the same 3 again: a full page of one millisecond
        [("lastmodifieddate", "EQ", t)],
        [("lastmodifieddate", "EQ", t), ("hs_object_id", "GT", "3")],
        [("lastmodifieddate", "EQ", t), ("hs_object_id", "GT", "6")],
        [("lastmodifieddate", "GT", t)],
    ]
    assert hub.searches[2]["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]


def test_lookback_rereads_the_lag_window_without_repeats(
    fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    source = build(tmp_path, cdp_http, lookback=1800)  # 30 minutes
    keys, cursor = read(source)
    assert keys == ["1", "2", "3", "4", "5"]
    assert cursor["mark"] == ms(at(50))
    assert sorted(cursor["seen"]) == ["2", "3", "4", "5"]  # delivered at or after mark - 30 min
    # Contact 9 was modified at minute 45 but reached the search index only after the run had passed it.
    fake.objects["contacts"].append(contact(9, minutes=45))
    fake.searches.clear()
    keys, cursor = read(build(tmp_path, cdp_http, lookback=1800), cursor)
    assert keys == ["9"]  # 3, 4 and 5 came back in the window, and were dropped
    assert filters(fake.searches[0]) == [("lastmodifieddate", "GTE", str(ms(at(20))))]
    keys, _ = read(build(tmp_path, cdp_http, lookback=1800), cursor)
    assert keys == []


def test_incremental_resume_from_a_saved_cursor(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    _, saved = read(build(tmp_path, cdp_http))
    saved = json.loads(json.dumps(saved))  # as the store keeps it
    fake.modify("contacts", "2", minutes=70, city="Hamburg")
    fake.objects["contacts"].append(contact(7, minutes=80))
    fake.searches.clear()
    source = build(tmp_path, cdp_http)
    records = [r for page in source.stream("contacts").read(saved) for r in page.records]
    assert [r.key for r in records] == ["2", "7"]
    assert records[0].data["city"] == "Hamburg"
    assert filters(fake.searches[0]) == [("lastmodifieddate", "GTE", str(ms(at(50)) - 60_000))]


def test_resume_inside_a_read(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    pages = build(tmp_path, cdp_http).stream("contacts").read(None)
    next(pages)
    cursor = roundtrip(next(pages).cursor)  # the run stopped after page 2
    assert cursor["pos"] == ms(at(30)) and cursor["seen"] == {"3": ms(at(30))}  # pruned to the lookback window
    keys, _ = read(build(tmp_path, cdp_http), cursor)
    assert keys == ["4", "5"]


def test_a_contact_modified_during_the_read_skips_nobody(
    fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """Offset paging would lose contact 3 here: contact 1 moves to the end between pages."""

    def edit_after_first_page(request: httpx.Request) -> None:
        if len(fake.searches) == 1:
            fake.modify("contacts", "1", minutes=60, city="Köln")

    fake.on_search = edit_after_first_page
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["1", "2", "3", "4", "5", "1"]  # 1 again, as its new version, after the others


# -- the HTTP layer's part ------------------------------------------------------------------------


def test_rate_limited_then_ok(
    fake: FakeHubSpot, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    limited = httpx.Response(429, headers={"Retry-After": "2"}, json={"status": "error", "category": "RATE_LIMITS"})
    cdp_respx.post(SEARCH).mock(side_effect=scripted(fake, at_1=limited))
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["1", "2", "3", "4", "5"]
    assert 2.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_server_error_then_ok(
    fake: FakeHubSpot, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    cdp_respx.post(SEARCH).mock(side_effect=scripted(fake, at_2=httpx.Response(502)))
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["1", "2", "3", "4", "5"]


def test_timeout_then_ok(fake: FakeHubSpot, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.post(SEARCH).mock(side_effect=scripted(fake, at_1=httpx.ReadTimeout("slow")))
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["1", "2", "3", "4", "5"]


def test_timeouts_that_persist_fail_clearly(
    fake: FakeHubSpot, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    cdp_respx.post(SEARCH).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(NetworkError) as info:
        read(build(tmp_path, cdp_http))
    assert info.value.timed_out and "connector 'crm'" in str(info.value)


def test_server_errors_that_persist_fail_clearly(
    fake: FakeHubSpot, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    cdp_respx.post(SEARCH).mock(return_value=httpx.Response(503))
    with pytest.raises(ServerError) as info:
        read(build(tmp_path, cdp_http))
    assert "connector 'crm'" in str(info.value) and "503" in str(info.value)


def test_malformed_page_stops_before_its_cursor(
    fake: FakeHubSpot, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    broken = httpx.Response(200, json={"results": {"id": "1"}, "paging": None})  # the envelope itself is wrong
    cdp_respx.post(SEARCH).mock(side_effect=scripted(fake, at_2=broken))
    pages = build(tmp_path, cdp_http).stream("contacts").read(None)
    first = next(pages)
    with pytest.raises(ResponseError) as info:
        next(pages)  # page 2 never reaches the runner: the cursor stays after page 1
    assert [r.key for r in first.records] == ["1", "2"]
    assert "connector 'crm'" in str(info.value) and "results" in str(info.value)
    keys, _ = read(build(tmp_path, cdp_http), roundtrip(first.cursor))  # the rerun resumes after page 1
    assert keys == ["3", "4", "5"]


def test_a_result_without_its_id_is_quarantined(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    bad = {"properties": {"email": "x@example.com", "lastmodifieddate": at(2)}}
    cdp_respx.post(SEARCH).respond(json={"total": 3, "results": [contact(1, minutes=1), bad, contact(3, minutes=3)]})
    pages = list(build(tmp_path, cdp_http).stream("contacts").read(None))
    assert [r.key for p in pages for r in p.records] == ["1", "3"]
    [reject] = [r for p in pages for r in p.rejects]
    assert reject.raw == bad
    assert "an item of POST /crm/v3/objects/contacts/search" in reject.reason and "id: Field required" in reject.reason
    assert "x@example.com" not in reject.reason


def test_result_without_its_modification_time_is_quarantined(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    bad = contact(2, minutes=2)
    bad["properties"]["lastmodifieddate"] = "last tuesday"
    cdp_respx.post(SEARCH).respond(json={"total": 2, "results": [contact(1, minutes=1), bad]})
    pages = list(build(tmp_path, cdp_http).stream("contacts").read(None))
    assert [r.key for p in pages for r in p.records] == ["1"]
    [reject] = [r for p in pages for r in p.rejects]
    assert reject.key == "2" and reject.raw == bad
    assert "contact 2: lastmodifieddate is missing or not a date-time" in reject.reason
    assert pages[-1].cursor["mark"] == ms(at(1))  # the cursor moved only as far as the readable result


def test_not_json_is_malformed(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.post(SEARCH).respond(200, text="<html>maintenance</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(ResponseError, match="connector 'crm'.*not valid JSON"):
        read(build(tmp_path, cdp_http))


def test_auth_failure_names_the_connector(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    with pytest.raises(AuthError) as info:
        read(build(tmp_path, cdp_http, access_token="pat-wrong-token"))
    message = str(info.value)
    assert "connector 'crm'" in message and "401" in message and "credentials" in message
    assert "401 Unauthorized: HubSpot INVALID_AUTHENTICATION: Authentication credentials not found" in message
    assert "pat-wrong-token" not in message
    assert info.value.attempts == 1  # a 401 is not retried


def test_empty_result(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    FakeHubSpot().install(cdp_respx)
    pages = list(build(tmp_path, cdp_http).stream("contacts").read(None))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].rejects == []
    assert pages[0].cursor == {"mark": None, "seen": {}}
    keys, _ = read(build(tmp_path, cdp_http), roundtrip(pages[0].cursor))
    assert keys == []


def test_search_has_its_own_rate_limit(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    read(build(tmp_path, cdp_http, name="crm"))
    limiter = cdp_http.limiter("crm", "search")
    assert limiter.rate == RateLimit(4, per=1.0) and limiter.max_concurrency == 4
    assert 0.25 in cdp_http.clock.sleeps  # type: ignore[attr-defined]  # 3 searches, 4 per second


def test_config_validation() -> None:
    config = HubSpotConfig.model_validate({"access_token": "pat-secret", "base_url": "https://api.hubapi.com/"})
    assert config.base_url == "https://api.hubapi.com" and "pat-secret" not in repr(config)
    assert config.rate_limit == 190 and config.rate_period == 10 and config.page_size == 200
    with pytest.raises(ValueError, match="page_size"):
        HubSpotConfig.model_validate({"access_token": "t", "page_size": 500})
    with pytest.raises(ValueError, match="base_url"):
        HubSpotConfig.model_validate({"access_token": "t", "base_url": "api.hubapi.com"})


# -- cursors committed before the source kept its mark with cdp_core.Incremental -------------------


def test_a_cursor_stored_by_earlier_versions_resumes(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """The layout is unchanged: a final and a mid-read cursor as stores already hold them still resume."""
    final = {"mark": 1714560600000, "seen": {"5": 1714560600000}, "mark_at": "2024-05-01T10:50:00Z"}
    fake.objects["contacts"].append(contact(6, minutes=50))  # the same millisecond as the mark, not seen yet
    keys, cursor = read(build(tmp_path, cdp_http), final)
    assert keys == ["6"]
    assert filters(fake.searches[0]) == [("lastmodifieddate", "GTE", str(1714560600000 - 60_000))]
    assert cursor == {
        "mark": 1714560600000,
        "seen": {"5": 1714560600000, "6": 1714560600000},
        "mark_at": "2024-05-01T10:50:00Z",
    }

    fake.objects["contacts"].pop()  # back to the five contacts
    mid_read = {
        "mark": 1714559400000,
        "seen": {"3": 1714559400000},
        "mark_at": "2024-05-01T10:30:00Z",
        "pos": 1714559400000,
        "strict": False,
    }
    keys, _ = read(build(tmp_path, cdp_http), mid_read)
    assert keys == ["4", "5"]  # 3 came again at the GTE boundary and was dropped
