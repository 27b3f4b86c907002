"""The Mailchimp source against a mocked Marketing API: conformance, paging, incremental reads, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx
from cdp_core import RecordKind
from cdp_core.http import AuthError, HttpFactory, ResponseError
from cdp_core.testing import (
    RegisterPlugin,
    SourceConformance,
    kit_plugin,
    make_context,
    read_keys,
    roundtrip,
    run_graph,
    run_twice,
)
from fake_mailchimp import BASE, KEY, LIST_ID, FakeMailchimp, member_id
from pydantic import ValidationError

import cdp_mailchimp

MEMBERS = [  # (email, last_changed, status, merge fields, tags)
    ("anna@example.com", "2024-05-01T10:00:00+00:00", "subscribed", {"FNAME": "Anna", "LNAME": "Berg"}, ["vip"]),
    ("ben@example.com", "2024-05-02T10:00:00+00:00", "pending", {"FNAME": "Ben"}, []),
    ("cara@example.com", "2024-05-03T10:00:00+00:00", "unsubscribed", {"FNAME": "Cara"}, ["Abo", "2024"]),
    ("dirk@example.com", "2024-05-04T10:00:00+00:00", "cleaned", {}, []),
    ("eva@example.com", "2024-05-05T10:00:00+00:00", "subscribed", {"LNAME": "Ernst", "PHONE": "+49 171 1234567"}, []),
]
CONFIG = {"api_key": KEY, "list_id": LIST_ID, "page_size": 2}  # 5 members: 3 pages


def fake(members: list[tuple[Any, ...]] = MEMBERS, **options: Any) -> FakeMailchimp:
    api = FakeMailchimp(**options)
    for email, changed, status, merge, tags in members:
        api.add(email, changed, status, merge, tags)
    return api


def build(tmp_path: Path, http: HttpFactory, **options: Any) -> cdp_mailchimp.MailchimpSource:
    config = cdp_mailchimp.MailchimpConfig.model_validate({**CONFIG, **options})
    return cdp_mailchimp.MailchimpSource(config, make_context(tmp_path, "newsletter", services={"http": http}))


def keys(source: cdp_mailchimp.MailchimpSource, stream: str = "members", cursor: Any = None) -> list[str]:
    return read_keys(source.stream(stream), cursor)[0]


# -- the conformance suite, on both streams ------------------------------------------------


class _PinnedClock(SourceConformance):
    """The read's clock pinned after the fixture data; change_between_pages edits a member "now"."""

    now = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)

    @pytest.fixture(autouse=True)
    def _clock(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(cdp_mailchimp.source, "utc_now", lambda: self.now)

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        # Anna (first page) unsubscribes while the read pages: her last_changed is now, past the read's
        # window (before_last_changed), so she leaves it and the members after her move up one offset.
        changed = self.api.change(
            "anna@example.com", (self.now + timedelta(seconds=10)).isoformat(), status="unsubscribed"
        )
        self.now += timedelta(hours=1)  # the next run
        return [self.moved_key(changed)]

    def moved_key(self, member: str) -> str:
        return member


class TestMembersConformance(_PinnedClock):
    plugin = cdp_mailchimp
    type_name = "mailchimp"
    config: ClassVar[dict[str, Any]] = CONFIG
    stream = "members"

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.api = fake().install(respx_mock)

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        fake([]).install(respx_mock)

    def delete_records(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        return [self.api.change("ben@example.com", "2024-06-03T08:00:00+00:00", status="archived")]

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        new = self.api.add("fritz@example.com", "2024-06-01T08:00:00+00:00", "subscribed", {"FNAME": "Fritz"})
        changed = self.api.change("anna@example.com", "2024-06-02T08:00:00+00:00", status="unsubscribed")
        return [new, changed]


class TestConsentsConformance(_PinnedClock):
    plugin = cdp_mailchimp
    type_name = "mailchimp"
    config: ClassVar[dict[str, Any]] = CONFIG
    stream = "consents"

    def moved_key(self, member: str) -> str:
        return f"{member}:email"

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.api = fake().install(respx_mock)

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        fake([]).install(respx_mock)

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        new = self.api.add("fritz@example.com", "2024-06-01T08:00:00+00:00", "subscribed")
        self.api.add("gert@example.com", "2024-06-01T09:00:00+00:00", "transactional")  # no consent record
        changed = self.api.change("anna@example.com", "2024-06-02T08:00:00+00:00", status="unsubscribed")
        return [f"{new}:email", f"{changed}:email"]


# -- records ---------------------------------------------------------------------------------


def test_member_becomes_a_profile(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake().install(cdp_respx)
    records = [r for page in build(tmp_path, cdp_http).stream("members").read(None) for r in page.records]
    anna, eva = records[0], records[4]
    assert anna.stream == "newsletter.members" and anna.kind is RecordKind.profile
    assert anna.key == member_id("anna@example.com")
    assert anna.identifiers == {"mailchimp_member_id": anna.key, "email": "anna@example.com"}
    assert anna.data == {"first_name": "Anna", "last_name": "Berg", "tags": ["vip"], "status": "subscribed"}
    assert anna.occurred_at is not None and anna.occurred_at.isoformat() == "2024-05-01T10:00:00+00:00"
    # empty merge fields are left out; unmapped merge tags keep their tag; PHONE -> phone
    assert eva.data == {"last_name": "Ernst", "phone": "+49 171 1234567", "tags": [], "status": "subscribed"}


def test_the_members_default_trait_mapping_and_its_override(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    address = {"addr1": "Hauptstr. 1", "city": "Köln", "state": "NRW", "zip": "50667", "country": "DE"}
    merge = {"FNAME": "A", "LNAME": "B", "BIRTHDAY": "05/14", "ADDRESS": address, "MMERGE5": "Gold"}
    fake([("a@example.com", "2024-05-01T10:00:00+00:00", "subscribed", merge, ["vip", "fan"])]).install(cdp_respx)
    source = build(tmp_path, cdp_http)
    (record,) = [r for p in source.stream("members").read(None) for r in p.records]
    mapping = source.stream("members").traits
    assert mapping is not None and source.stream("consents").traits is None
    assert mapping.apply(record.data) == (
        {
            "first_name": "A",
            "last_name": "B",
            "birthday": "05/14",
            "city": "Köln",
            "state": "NRW",
            "zip": "50667",
            "country": "DE",
            "tags": ["vip", "fan"],
        },
        [],
    )  # not the status (the consents stream's), not the unmapped MMERGE5
    custom = build(tmp_path, cdp_http, traits={"members": {"loyalty_tier": "MMERGE5", "tags": {"type": "list"}}})
    custom_mapping = custom.stream("members").traits
    assert custom_mapping is not None
    assert custom_mapping.apply(record.data)[0] == {"loyalty_tier": "Gold", "tags": ["vip", "fan"]}
    with pytest.raises(ValueError, match="no stream 'member' \\(did you mean 'members'\\?\\)"):
        build(tmp_path, cdp_http, traits={"member": ["x"]})


def test_merge_field_names_are_configurable(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake([("a@example.com", "2024-05-01T10:00:00+00:00", "subscribed", {"FNAME": "A", "MMERGE5": "Gold"}, [])]).install(
        cdp_respx
    )
    source = build(tmp_path, cdp_http, merge_fields={"FNAME": "vorname", "MMERGE5": "loyalty_tier"})
    (record,) = [r for p in source.stream("members").read(None) for r in p.records]
    assert record.data == {"vorname": "A", "loyalty_tier": "Gold", "tags": [], "status": "subscribed"}


def test_an_archived_member_is_a_tombstone_of_its_record(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    members = [*MEMBERS[:1], ("gone@example.com", "2024-05-06T10:00:00+00:00", "archived", {"FNAME": "Gus"}, [])]
    fake(members).install(cdp_respx)
    anna, gone = [r for p in build(tmp_path, cdp_http, page_size=100).stream("members").read(None) for r in p.records]
    assert not anna.deleted
    assert (gone.stream, gone.kind, gone.key, gone.deleted) == ("newsletter.members", "profile", member_id("gone@example.com"), True)
    assert gone.data == {} and gone.identifiers == {}
    assert gone.occurred_at is not None and gone.occurred_at.isoformat() == "2024-05-06T10:00:00+00:00"


def test_status_becomes_an_email_consent(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    members = [
        (f"{status}@example.com", f"2024-05-0{n}T10:00:00+00:00", status, {}, [])
        for n, status in enumerate(["subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived"], 1)
    ]
    fake(members).install(cdp_respx)
    records = [r for p in build(tmp_path, cdp_http, page_size=100).stream("consents").read(None) for r in p.records]
    got = {r.identifiers["email"]: (r.data["status"], r.data["mailchimp_status"]) for r in records}
    assert got == {
        "subscribed@example.com": ("granted", "subscribed"),
        "unsubscribed@example.com": ("revoked", "unsubscribed"),
        "cleaned@example.com": ("revoked", "cleaned"),
    }  # pending, transactional and archived neither grant nor withdraw consent
    record = records[0]
    assert record.kind is RecordKind.consent and record.stream == "newsletter.consents"
    assert record.key == f"{member_id('subscribed@example.com')}:email"
    assert record.data == {
        "purpose": "email", "status": "granted", "source": "mailchimp", "mailchimp_status": "subscribed", "list_id": LIST_ID,
    }  # fmt: skip
    assert record.identifiers == {
        "mailchimp_member_id": member_id("subscribed@example.com"),
        "email": "subscribed@example.com",
    }


def test_consents_ask_only_for_the_fields_they_need(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    api = fake().install(cdp_respx)
    keys(build(tmp_path, cdp_http), "consents")
    assert api.list_requests[0].url.params["fields"] == (
        "members.id,members.email_address,members.status,members.last_changed,total_items"
    )


def test_data_center_comes_from_the_key(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    key = "fedcba9876543210fedcba9876543210-us6"
    api = fake(key=key).install(cdp_respx)
    assert api.base == "https://us6.api.mailchimp.com/3.0"
    source = build(tmp_path, cdp_http, api_key=key)
    assert source.config.api_base == "https://us6.api.mailchimp.com/3.0"
    assert len(keys(source)) == 5
    assert {r.url.host for r in api.list_requests} == {"us6.api.mailchimp.com"}
    assert all(r.url.path == f"/3.0/lists/{LIST_ID}/members" for r in api.list_requests)


@pytest.mark.parametrize("key", ["0123456789abcdef0123456789abcdef", "secret-", "secret-US21", "-us9", "a-us9/x"])
def test_a_key_without_a_data_center_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        cdp_mailchimp.MailchimpConfig.model_validate({"api_key": key, "list_id": LIST_ID})
    assert "ends with its data center" in str(info.value)
    assert key not in str(info.value)


# -- paging and incremental reads --------------------------------------------------------------


def test_pages_by_offset_in_one_fixed_window(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = fake().install(cdp_respx)
    pages = list(build(tmp_path, cdp_http).stream("members").read(None))
    assert [len(p.records) for p in pages] == [2, 2, 1]
    sent = [r.url.params for r in api.list_requests]
    assert [p["offset"] for p in sent] == ["0", "2", "4"]
    assert all(p["count"] == "2" and p["sort_field"] == "last_changed" and p["sort_dir"] == "ASC" for p in sent)
    assert len({p["before_last_changed"] for p in sent}) == 1  # one window for the whole read
    assert all("since_last_changed" not in p for p in sent)  # a first read takes everything
    assert pages[0].cursor["window"]["offset"] == 2 and pages[1].cursor["window"]["offset"] == 4
    assert pages[-1].cursor == {"since": "2024-05-05T10:00:00+00:00", "seen": [member_id("eva@example.com")]}


def test_resumes_from_a_saved_cursor(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = fake().install(cdp_respx)
    saved = {"since": "2024-05-02T10:00:00+00:00", "seen": [member_id("ben@example.com")]}
    got = keys(build(tmp_path, cdp_http), cursor=roundtrip(saved))
    assert got == [member_id(e) for e in ("cara@example.com", "dirk@example.com", "eva@example.com")]
    assert api.list_requests[0].url.params["since_last_changed"] == "2024-05-02T10:00:00+00:00"


def test_resumes_mid_read_in_the_same_window(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = fake().install(cdp_respx)
    first = next(iter(build(tmp_path, cdp_http).stream("members").read(None)))
    window = first.cursor["window"]
    api.list_requests.clear()
    got = keys(build(tmp_path, cdp_http), cursor=roundtrip(first.cursor))
    assert got == [member_id(e) for e in ("cara@example.com", "dirk@example.com", "eva@example.com")]
    assert api.list_requests[0].url.params["offset"] == "2"
    assert api.list_requests[0].url.params["before_last_changed"] == window["before"]


def test_an_inclusive_since_repeats_nothing(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """Should since_last_changed include its bound, the members of the cursor's last second are skipped."""
    members = [*MEMBERS, ("eve2@example.com", "2024-05-05T10:00:00+00:00", "subscribed", {}, [])]
    api = fake(members, inclusive_since=True).install(cdp_respx)
    all_keys, final = read_keys(build(tmp_path, cdp_http).stream("members"), None)
    assert len(all_keys) == 6 and sorted(final["seen"]) == sorted(
        [member_id("eva@example.com"), member_id("eve2@example.com")]
    )
    assert keys(build(tmp_path, cdp_http), cursor=roundtrip(final)) == []
    new = api.add("late@example.com", "2024-05-05T10:00:00+00:00", "subscribed")  # the same second, not seen yet
    assert keys(build(tmp_path, cdp_http), cursor=roundtrip(final)) == [new]


def test_a_bulk_import_in_one_second(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """Many members changed in the same second: each page's cursor says exactly which of them it has read."""
    same = "2024-05-01T10:00:00+00:00"
    fake([(f"p{n}@example.com", same, "subscribed", {}, []) for n in range(5)]).install(cdp_respx)
    pages = list(build(tmp_path, cdp_http).stream("members").read(None))
    assert [len(p.cursor["window"]["newest_ids"]) for p in pages[:-1]] == [2, 4]
    assert pages[-1].cursor["since"] == same and len(pages[-1].cursor["seen"]) == 5
    for k, page in enumerate(pages[:-1]):  # resuming after any page gives exactly the rest
        rest = [r.key for later in pages[k + 1 :] for r in later.records]
        assert keys(build(tmp_path, cdp_http), cursor=roundtrip(page.cursor)) == rest


def test_members_changing_during_the_read_are_not_skipped(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """A member read on page 1 changes before page 2 is asked for: it leaves the window, the rest moves up."""
    api = fake().install(cdp_respx)
    moved: list[str] = []

    def change_anna(fake_api: FakeMailchimp) -> None:
        if not moved:
            moved.append(fake_api.change("anna@example.com", "2099-01-01T00:00:00+00:00", status="unsubscribed"))

    api.after_list = change_anna
    got, final = read_keys(build(tmp_path, cdp_http).stream("members"), None)
    assert sorted(got) == sorted(member_id(m[0]) for m in MEMBERS)  # cara was not skipped, nobody came twice
    assert len(got) == len(set(got))
    # page 2 saw total_items drop by one: the read stepped back one place (offset 1, not 2)
    assert [r.url.params["offset"] for r in api.list_requests] == ["0", "2", "1", "3"]
    api.after_list = None
    # the change is read by the next run (once its time has passed the window's bound)
    assert final["since"] == "2024-05-05T10:00:00+00:00"


def test_empty_audience(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = fake([]).install(cdp_respx)
    pages = list(build(tmp_path, cdp_http).stream("members").read(None))
    assert [p.records for p in pages] == [[]]
    assert pages[0].cursor == {"since": None, "seen": []}
    assert len(api.list_requests) == 1


def test_nothing_new_keeps_the_cursor(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake().install(cdp_respx)
    saved = {"since": "2024-05-05T10:00:00+00:00", "seen": [member_id("eva@example.com")]}
    pages = list(build(tmp_path, cdp_http).stream("members").read(roundtrip(saved)))
    assert [p.records for p in pages] == [[]] and pages[-1].cursor == saved


def test_a_cursor_of_another_shape_is_a_clear_error(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake().install(cdp_respx)
    with pytest.raises(ValueError, match="mailchimp cursor"):
        keys(build(tmp_path, cdp_http), cursor="2024-05-01")


# -- what the HTTP layer does for the source ------------------------------------------------------


def test_rate_limited_then_ok(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = fake()
    cdp_respx.get(f"{BASE}/lists/{LIST_ID}/members").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            api.list_members,
            api.list_members,
            api.list_members,
        ]
    )
    assert len(keys(build(tmp_path, cdp_http))) == 5
    assert 7.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_server_error_then_ok(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = fake()
    cdp_respx.get(f"{BASE}/lists/{LIST_ID}/members").mock(
        side_effect=[api.list_members, httpx.Response(503), api.list_members, api.list_members]
    )
    assert len(keys(build(tmp_path, cdp_http))) == 5


def test_timeout_then_ok(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = fake()
    cdp_respx.get(f"{BASE}/lists/{LIST_ID}/members").mock(
        side_effect=[api.list_members, api.list_members, httpx.ReadTimeout("slow"), api.list_members]
    )
    assert len(keys(build(tmp_path, cdp_http))) == 5


def test_malformed_page_stops_before_its_cursor(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = fake()
    broken = httpx.Response(200, json={"members": {"email_address": "x@example.com"}, "total_items": 5})
    cdp_respx.get(f"{BASE}/lists/{LIST_ID}/members").mock(side_effect=[api.list_members, broken])
    pages = build(tmp_path, cdp_http).stream("members").read(None)
    first = next(pages)
    with pytest.raises(ResponseError) as info:
        next(pages)  # page 2 never reaches the runner: the cursor stays after page 1
    assert len(first.records) == 2 and first.cursor["window"]["offset"] == 2
    message = str(info.value)
    assert "connector 'newsletter'" in message and "members: Input should be a valid list" in message
    assert "x@example.com" not in message


def test_not_json_is_a_clear_error(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(f"{BASE}/lists/{LIST_ID}/members").mock(
        return_value=httpx.Response(200, text="<html>maintenance</html>")
    )
    with pytest.raises(ResponseError, match="connector 'newsletter': the response body is not valid JSON"):
        keys(build(tmp_path, cdp_http))


def test_auth_failure_names_the_connector(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake().install(cdp_respx)
    wrong = "ffffffffffffffffffffffffffffffff-us21"
    with pytest.raises(AuthError) as info:
        keys(build(tmp_path, cdp_http, api_key=wrong))
    message = str(info.value)
    assert "connector 'newsletter'" in message and "401" in message and "credentials" in message
    assert wrong not in message and "ffffffff" not in message


def test_concurrency_is_capped_at_ten(cdp_http: HttpFactory, tmp_path: Path) -> None:
    source = build(tmp_path, cdp_http)
    assert source.client.limiter.max_concurrency == 10
    assert json.dumps(source.config.model_dump(mode="json")).count("**********") == 1  # the key stays secret


# -- in a sync graph, into the profile store -------------------------------------------------------


def test_members_and_consents_reach_the_profile_store(
    register_plugin: Any, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    from cdp_core.store.engine import make_engine
    from cdp_profiles.identity import IdentityConfig
    from cdp_profiles.store.queries import find_profile, profile_view

    api = fake().install(cdp_respx)
    toml = f"""
[connectors.newsletter]
type = "mailchimp"
api_key = "${{MAILCHIMP_API_KEY}}"
list_id = "{LIST_ID}"

[connectors.store]
type = "profile_store"

[syncs.main.nodes.members]
source = "newsletter.members"

[syncs.main.nodes.consents]
source = "newsletter.consents"

[syncs.main.nodes.people]
transform = "normalize"
inputs = ["members"]
options = {{ fields = {{ phone = "phone" }}, on_invalid = "null" }}

[syncs.main.nodes.store]
destination = "store"
inputs = ["people", "consents"]
"""
    plugins = register_plugin(cdp_mailchimp, extra=["profiles"])
    env = {"MAILCHIMP_API_KEY": KEY}
    run = run_graph(tmp_path, toml, plugins, services={"http": cdp_http}, env=env)
    assert run.status == "succeeded", run.error
    assert run.nodes["store"].records_in == 5 + 4  # 5 members, 4 consents (ben is pending)
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    try:
        anna = profile_view(engine, find_profile(engine, "anna@example.com", IdentityConfig()) or "")
        # the members' default trait mapping: the status is her email consent, not a trait
        assert {t.name: t.value for t in anna.traits} == {"first_name": "Anna", "last_name": "Berg", "tags": ["vip"]}
        assert [(c.purpose, c.status) for c in anna.consents.latest] == [("email", "granted")]
        # anna unsubscribes: the next run reads only her and revokes her consent
        api.change("anna@example.com", "2024-06-02T08:00:00+00:00", status="unsubscribed")
        again = run_graph(tmp_path, toml, plugins, services={"http": cdp_http}, env=env)
        assert again.status == "succeeded" and again.nodes["store"].records_in == 2
        anna = profile_view(engine, anna.profile.id)
        assert [(c.purpose, c.status) for c in anna.consents.latest] == [("email", "revoked")]
    finally:
        engine.dispose()


# -- cursors committed before the source kept its mark with cdp_core.Incremental -------------------


def test_a_mid_read_cursor_stored_by_earlier_versions_resumes(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """The layout is unchanged (the final one: test_resumes_from_a_saved_cursor); a mid-read one as stored."""
    api = fake().install(cdp_respx)
    ben = member_id("ben@example.com")
    window = {"before": "2024-06-01T00:00:00+00:00", "offset": 2, "total": 5, "newest": "2024-05-02T10:00:00+00:00"}
    saved = {"since": None, "seen": [], "window": {**window, "newest_ids": [ben]}}
    pages = list(build(tmp_path, cdp_http).stream("members").read(roundtrip(saved)))
    assert [r.key for p in pages for r in p.records] == [
        member_id(e) for e in ("cara@example.com", "dirk@example.com", "eva@example.com")
    ]
    sent = api.list_requests[0].url.params
    assert sent["offset"] == "2" and sent["before_last_changed"] == "2024-06-01T00:00:00+00:00"
    assert pages[0].cursor["window"]["newest"] == "2024-05-04T10:00:00+00:00"
    assert pages[-1].cursor == {"since": "2024-05-05T10:00:00+00:00", "seen": [member_id("eva@example.com")]}


def test_one_malformed_member_is_quarantined_the_others_stored(
    cdp_respx: respx.Router, cdp_http: HttpFactory, register_plugin: RegisterPlugin, tmp_path: Path, store_url: str
) -> None:
    """One member that fails the model in the middle of a page: the others reach the destination, it
    is quarantined with its payload, the run succeeds, and the next run delivers nothing again."""
    api = FakeMailchimp().install(cdp_respx)
    for n in (1, 2, 3):
        api.add(f"person{n}@example.com", f"2024-05-0{n}T10:00:00+00:00")
    bad = api.change("person2@example.com", "2024-05-02T10:00:00+00:00", status=None)
    connector = (
        f'[connectors.newsletter]\ntype = "mailchimp"\napi_key = "${{MAILCHIMP_API_KEY}}"\nlist_id = "{LIST_ID}"'
    )
    runs = run_twice(
        tmp_path, connector, "newsletter.members", register_plugin(cdp_mailchimp, extra=[kit_plugin]), store_url,
        env={"MAILCHIMP_API_KEY": KEY}, services={"http": cdp_http},
    )  # fmt: skip
    assert runs.delivered == [member_id(f"person{n}@example.com") for n in (1, 3)]
    assert (runs.first.nodes["members"].records_out, runs.first.nodes["members"].rejected) == (2, 1)
    [entry] = runs.quarantined
    assert entry["record_key"] == bad and entry["payload"]["email_address"] == "person2@example.com"
    assert entry["reason"].startswith(f"mailchimp members: an item of GET /lists/{LIST_ID}/members")
    assert "status: Input should be a valid string" in entry["reason"]
    assert runs.second.nodes["members"].records_out == 0 and runs.redelivered == []
