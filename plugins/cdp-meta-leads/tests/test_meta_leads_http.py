"""What the Meta leads source does over HTTP: cursor paging, per-form marks, Meta's error codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import meta_fake
import pytest
import respx
from cdp_core.http import AuthError, ClientError, HttpFactory, RateLimited, ResponseError
from cdp_core.testing import RegisterPlugin, kit_plugin, make_context, roundtrip, run_twice
from meta_fake import FORM_A, FORM_B, TOKEN, FakeLeads, graph_error, lead, leads_url

import cdp_meta_leads
from cdp_meta_leads import MetaLeadsConfig, MetaLeadsSource

URL_A, URL_B = leads_url(FORM_A), leads_url(FORM_B)


def five() -> list[dict[str, Any]]:
    return [lead(n, f"2024-05-0{n}T10:00:00+0000") for n in range(1, 6)]


def build(tmp_path: Path, http: HttpFactory, **options: Any) -> MetaLeadsSource:
    config = MetaLeadsConfig.model_validate({"access_token": TOKEN, "form_ids": [FORM_A], "page_size": 2, **options})
    return MetaLeadsSource(config, make_context(tmp_path, "meta", services={"http": http}))


def read(source: MetaLeadsSource, stream: str = "leads", cursor: Any = None) -> tuple[list[str], Any]:
    keys: list[str] = []
    final = cursor
    for page in source.stream(stream).read(roundtrip(cursor) if cursor is not None else None):
        keys += [r.key for r in page.records]
        final = page.cursor
    return keys, final


def filtering(fake: FakeLeads, n: int) -> Any:
    raw = fake.params_of(n).get("filtering")
    return json.loads(raw) if raw else None


# -- paging ------------------------------------------------------------------------------------


def test_cursor_paging_across_pages(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(side_effect=fake)
    keys, final = read(build(tmp_path, cdp_http))
    assert keys == ["100005", "100004", "100003", "100002", "100001"]  # Meta lists the newest first
    assert len(fake.requests) == 3
    first = fake.params_of(0)
    assert first == {"fields": "id,created_time,field_data,ad_id,campaign_id", "limit": "2"}
    assert "after" in fake.params_of(1) and "after" in fake.params_of(2)
    for request in fake.requests:  # the token goes in the header, never in a URL
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in str(request.url)
    assert final == {"forms": {FORM_A: {"since": 1714903140, "seen": {"100005": 1714903200}}}}


def test_incremental_filter_on_time_created(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(side_effect=fake)
    _, cursor = read(build(tmp_path, cdp_http))
    fake.leads.append(lead(6, "2024-05-06T10:00:00+0000"))
    keys, cursor = read(build(tmp_path, cdp_http), cursor=cursor)
    assert keys == ["100006"]
    # inclusive of the mark's second (newest 2024-05-05T10:00:00Z minus 60 s): GREATER_THAN mark - 1
    assert filtering(fake, 3) == [{"field": "time_created", "operator": "GREATER_THAN", "value": 1714903139}]
    keys, _ = read(build(tmp_path, cdp_http), cursor=cursor)
    assert keys == []


def test_resume_from_a_saved_mid_form_cursor(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(side_effect=fake)
    first = next(iter(build(tmp_path, cdp_http).stream("leads").read(None)))
    assert [r.key for r in first.records] == ["100005", "100004"]
    assert first.cursor["reading"]["form"] == FORM_A and first.cursor["reading"]["after"]
    keys, _ = read(build(tmp_path, cdp_http), cursor=first.cursor)  # a new process, the committed cursor
    assert keys == ["100003", "100002", "100001"]
    assert fake.params_of(1)["after"] == first.cursor["reading"]["after"]


def test_a_refused_saved_cursor_reads_the_form_again(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(side_effect=fake)
    first = next(iter(build(tmp_path, cdp_http).stream("leads").read(None)))
    cdp_respx.get(URL_A).mock(side_effect=[graph_error(100, "(#100) Invalid cursor"), fake, fake, fake])
    keys, final = read(build(tmp_path, cdp_http), cursor=first.cursor)
    # read again from the start of the form: the interrupted read's leads within the lookback of its
    # newest (100005) are in "fresh" and skipped; older ones (100004) come again, with the same key
    assert keys == ["100004", "100003", "100002", "100001"]
    assert "reading" not in final


def test_each_form_keeps_its_own_mark(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    a = FakeLeads(FORM_A, five())
    b = FakeLeads(FORM_B, [lead(1, "2024-04-01T10:00:00+0000", form=FORM_B)])
    cdp_respx.get(URL_A).mock(side_effect=a)
    cdp_respx.get(URL_B).mock(side_effect=b)
    keys, cursor = read(build(tmp_path, cdp_http, form_ids=[FORM_A, FORM_B]))
    assert keys == ["100005", "100004", "100003", "100002", "100001", "200001"]
    assert cursor["forms"][FORM_A]["since"] == 1714903140 and cursor["forms"][FORM_B]["since"] == 1711965540
    b.leads.append(lead(2, "2024-04-02T10:00:00+0000", form=FORM_B))  # older than form A's mark: B's own counts
    keys, _ = read(build(tmp_path, cdp_http, form_ids=[FORM_A, FORM_B]), cursor=cursor)
    assert keys == ["200002"]


def test_a_form_added_later_is_read_from_its_beginning(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    cdp_respx.get(URL_A).mock(side_effect=FakeLeads(FORM_A, five()))
    b = FakeLeads(FORM_B, [lead(1, "2024-04-01T10:00:00+0000", form=FORM_B)])
    cdp_respx.get(URL_B).mock(side_effect=b)
    _, cursor = read(build(tmp_path, cdp_http))
    keys, _ = read(build(tmp_path, cdp_http, form_ids=[FORM_A, FORM_B]), cursor=cursor)
    assert keys == ["200001"]
    assert "filtering" not in b.params_of(0)


def test_a_lead_in_the_boundary_second_is_not_lost(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake = FakeLeads(FORM_A, [lead(1, "2024-05-09T10:00:00+0000"), lead(2, "2024-05-09T10:00:00+0000")])
    cdp_respx.get(URL_A).mock(side_effect=fake)
    keys, cursor = read(build(tmp_path, cdp_http, lookback_seconds=0))
    assert sorted(keys) == ["100001", "100002"]
    fake.leads.append(lead(3, "2024-05-09T10:00:00+0000"))  # same second, visible only now
    keys, cursor = read(build(tmp_path, cdp_http, lookback_seconds=0), cursor=cursor)
    assert keys == ["100003"]
    keys, _ = read(build(tmp_path, cdp_http, lookback_seconds=0), cursor=cursor)
    assert keys == []


def test_a_lead_created_during_the_read_comes_next_run(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """Newest first: a lead created between pages lands before the pages already read; nobody shifts
    past the keyset cursor, and the next run's filter from the mark brings the new one, once."""
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(side_effect=fake)
    pages = build(tmp_path, cdp_http).stream("leads").read(None)
    first = next(pages)
    fake.leads.append(lead(6, "2024-05-09T10:00:00+0000"))
    rest = list(pages)
    assert [r.key for page in [first, *rest] for r in page.records] == ["100005", "100004", "100003", "100002", "100001"]
    keys, cursor = read(build(tmp_path, cdp_http), cursor=rest[-1].cursor)
    assert keys == ["100006"]
    assert read(build(tmp_path, cdp_http), cursor=cursor)[0] == []


# -- Meta's errors -------------------------------------------------------------------------------


def test_throttling_codes_wait_and_retry(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(
        side_effect=[
            fake,
            graph_error(17, "(#17) User request limit reached", subcode=2446079),
            graph_error(613, "(#613) Calls to this api have exceeded the rate limit."),
            fake,
            fake,
        ]
    )
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["100005", "100004", "100003", "100002", "100001"]
    assert [s for s in cdp_http.clock.sleeps if s >= 1] == [60.0, 120.0]  # type: ignore[attr-defined]


@pytest.mark.parametrize("code", [4, 32])
def test_other_throttling_codes(code: int, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(side_effect=[graph_error(code, f"(#{code}) limit"), fake, fake, fake])
    keys, _ = read(build(tmp_path, cdp_http))
    assert len(keys) == 5 and 60.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_throttling_waits_as_long_as_meta_says(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    usage = json.dumps({"123": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 3}]})
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(
        side_effect=[graph_error(17, "(#17) limit", **{"X-Business-Use-Case-Usage": usage}), fake, fake, fake]
    )
    keys, _ = read(build(tmp_path, cdp_http))
    assert len(keys) == 5 and 180.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_throttled_for_too_long_fails_clearly(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    usage = json.dumps({"123": [{"type": "pages", "estimated_time_to_regain_access": 60}]})
    cdp_respx.get(URL_A).mock(return_value=graph_error(80001, "limit", **{"X-Business-Use-Case-Usage": usage}))
    with pytest.raises(RateLimited) as info:
        read(build(tmp_path, cdp_http))
    assert "connector 'meta'" in str(info.value) and "60 min" in str(info.value)
    assert cdp_http.clock.sleeps == []  # type: ignore[attr-defined]


def test_throttled_until_the_retries_run_out(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(URL_A).mock(return_value=graph_error(4, "(#4) Application request limit reached"))
    with pytest.raises(RateLimited) as info:
        read(build(tmp_path, cdp_http, rate_limit_retries=2))
    message = str(info.value)
    assert "connector 'meta'" in message and "code 4" in message and "after 3 attempts" in message
    assert [s for s in cdp_http.clock.sleeps if s >= 1] == [60.0, 120.0]  # type: ignore[attr-defined]


def test_http_429_with_retry_after(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "2"}), fake, fake, fake])
    keys, _ = read(build(tmp_path, cdp_http))
    assert len(keys) == 5 and 2.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_server_error_then_success(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(
        side_effect=[fake, graph_error(2, "An unexpected error has occurred.", status=500), fake, fake]
    )
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["100005", "100004", "100003", "100002", "100001"]


def test_transient_code_in_a_400_is_retried(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(side_effect=[graph_error(1, "An unknown error occurred"), fake, fake, fake])
    keys, _ = read(build(tmp_path, cdp_http))
    assert len(keys) == 5


def test_timeout_then_success(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(side_effect=[httpx.ReadTimeout("slow"), fake, fake, fake])
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["100005", "100004", "100003", "100002", "100001"]


def test_malformed_page_stops_before_its_cursor(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, five())

    def broken(request: httpx.Request) -> httpx.Response:
        body = fake(request).json()
        body["data"] = {"id": "100003"}  # not a list
        return httpx.Response(200, json=body)

    cdp_respx.get(URL_A).mock(side_effect=[fake, broken])
    pages = build(tmp_path, cdp_http).stream("leads").read(None)
    first = next(pages)
    with pytest.raises(ResponseError) as info:
        next(pages)  # never yielded: its cursor is never committed
    assert [r.key for r in first.records] == ["100005", "100004"]
    message = str(info.value)
    assert "connector 'meta'" in message and "data: Input should be a valid list" in message
    cdp_respx.get(URL_A).mock(side_effect=fake)
    keys, _ = read(build(tmp_path, cdp_http), cursor=first.cursor)
    assert keys == ["100003", "100002", "100001"]


def test_next_without_an_after_cursor_is_malformed(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    body = {"data": [lead(1, "2024-05-01T10:00:00+0000")], "paging": {"next": "https://graph.facebook.com/x"}}
    cdp_respx.get(URL_A).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(ResponseError) as info:
        read(build(tmp_path, cdp_http))
    assert "connector 'meta'" in str(info.value) and "paging.cursors.after" in str(info.value)


def test_invalid_token_names_the_connector(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(URL_A).mock(side_effect=FakeLeads(FORM_A, five()))
    with pytest.raises(AuthError) as info:
        read(build(tmp_path, cdp_http, access_token="EAAwrongtoken"))
    message = str(info.value)
    assert "connector 'meta'" in message and "code 190" in message and "access token" in message
    assert FORM_A in message  # the URL path says which form
    assert "EAAwrongtoken" not in message and "credentials" in message


def test_expired_token(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(URL_A).mock(
        return_value=graph_error(190, "Error validating access token: Session has expired.", status=401, subcode=463)
    )
    with pytest.raises(AuthError) as info:
        read(build(tmp_path, cdp_http))
    assert "subcode 463" in str(info.value) and "Session has expired" in str(info.value)


def test_missing_permission(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(URL_A).mock(
        return_value=graph_error(200, "(#200) Requires pages_manage_ads permission to manage the object", status=403)
    )
    with pytest.raises(AuthError) as info:
        read(build(tmp_path, cdp_http))
    assert "connector 'meta'" in str(info.value) and "leads_retrieval" in str(info.value)


def test_unknown_form(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(URL_A).mock(
        return_value=graph_error(100, f"Unsupported get request. Object with ID '{FORM_A}' does not exist", subcode=33)
    )
    with pytest.raises(ClientError) as info:
        read(build(tmp_path, cdp_http))
    assert "connector 'meta'" in str(info.value) and "code 100" in str(info.value) and FORM_A in str(info.value)


def test_the_token_is_redacted_from_meta_messages(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    cdp_respx.get(URL_A).mock(return_value=graph_error(190, f"Malformed access token {TOKEN}"))
    with pytest.raises(AuthError) as info:
        read(build(tmp_path, cdp_http))
    assert TOKEN not in str(info.value)


def test_empty_result(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, [])
    cdp_respx.get(URL_A).mock(side_effect=fake)
    pages = list(build(tmp_path, cdp_http).stream("leads").read(None))
    assert [r for p in pages for r in p.records] == []
    assert pages[-1].cursor == {"forms": {FORM_A: {"since": None, "seen": {}}}}
    assert len(fake.requests) == 1


def test_plugin_registers_the_type(register_plugin: Any) -> None:
    assert register_plugin(cdp_meta_leads).registry.get("source", "meta_leads") is not None


def test_config() -> None:
    config = MetaLeadsConfig.model_validate(
        {"access_token": "t", "graph_version": "21.0", "form_ids": [1234567890123456], "extra_fields": ["is_organic"]}
    )
    assert config.graph_version == "v21.0" and config.form_ids == ["1234567890123456"]
    assert config.fields == "id,created_time,field_data,ad_id,campaign_id,is_organic"
    with pytest.raises(ValueError, match="numeric"):
        MetaLeadsConfig.model_validate({"access_token": "t", "form_ids": ["../me"]})
    with pytest.raises(ValueError):
        MetaLeadsConfig.model_validate({"access_token": "t", "form_ids": []})


# -- cursors committed before the source kept its mark with cdp_core.Incremental -------------------


def test_a_cursor_stored_by_earlier_versions_resumes(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """The layout is unchanged: a final and a mid-read cursor as stores already hold them still resume."""
    fake = FakeLeads(FORM_A, five())
    cdp_respx.get(URL_A).mock(side_effect=fake)
    final = {"forms": {FORM_A: {"since": 1714816740, "seen": {"100004": 1714816800}}}}  # 2024-05-04T09:59Z
    keys, cursor = read(build(tmp_path, cdp_http), cursor=final)
    assert keys == ["100005"]
    assert filtering(fake, 0) == [{"field": "time_created", "operator": "GREATER_THAN", "value": 1714816739}]
    assert cursor == {"forms": {FORM_A: {"since": 1714903140, "seen": {"100005": 1714903200}}}}

    reading = {
        "form": FORM_A,
        "after": meta_fake._cursor("100004"),
        "newest": 1714903200,
        "fresh": {"100005": 1714903200},
    }
    keys, cursor = read(build(tmp_path, cdp_http), cursor={"forms": {}, "reading": reading})
    assert keys == ["100003", "100002", "100001"]
    assert cursor == {"forms": {FORM_A: {"since": 1714903140, "seen": {"100005": 1714903200}}}}


def test_one_malformed_lead_is_quarantined_the_others_stored(
    cdp_respx: respx.Router, cdp_http: HttpFactory, register_plugin: RegisterPlugin, tmp_path: Path, store_url: str
) -> None:
    """One lead that fails the model in the middle of a page: the others reach the destination, it
    is quarantined with its payload, the run succeeds, and the next run delivers nothing again."""
    leads = [lead(n, f"2024-05-0{n}T10:00:00+0000") for n in (1, 2, 3)]
    leads[1]["field_data"] = "not a list"
    cdp_respx.get(URL_A).mock(side_effect=FakeLeads(FORM_A, leads))
    connector = f'[connectors.meta]\ntype = "meta_leads"\naccess_token = "${{META_TOKEN}}"\nform_ids = ["{FORM_A}"]'
    runs = run_twice(
        tmp_path, connector, "meta.leads", register_plugin(cdp_meta_leads, extra=[kit_plugin]), store_url,
        env={"META_TOKEN": TOKEN}, services={"http": cdp_http},
    )  # fmt: skip
    assert runs.delivered == ["100003", "100001"]  # Meta lists the newest first
    assert (runs.first.nodes["leads"].records_out, runs.first.nodes["leads"].rejected) == (2, 1)
    [entry] = runs.quarantined
    assert entry["record_key"] == "100002" and entry["payload"]["field_data"] == "not a list"
    assert entry["reason"].startswith(f"meta_leads leads: an item of GET /{FORM_A}/leads")
    assert "field_data: Input should be a valid list" in entry["reason"]
    assert runs.second.nodes["leads"].records_out == 0 and runs.redelivered == []
