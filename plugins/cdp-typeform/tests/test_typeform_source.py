"""The Typeform source against a mocked Responses API: conformance, paging by `after`, records, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx
from cdp_core import RecordKind
from cdp_core.http import AuthError, ClientError, HttpFactory, ResponseError
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
from fake_typeform import FORM_ID, TOKEN, FakeTypeform, response
from pydantic import ValidationError

import cdp_typeform

RESPONSES = [
    response("tok1", "2024-05-01T10:00:00Z", 10, "Great coffee", email="anna@example.com", channel="email"),
    response("tok2", "2024-05-02T10:00:00Z", 3, "Too slow", email_answer="ben@example.com"),
    response("tok3", "2024-05-03T10:00:00Z", 8),  # anonymous
    response("tok4", "2024-05-04T10:00:00Z", 9, email="cara@example.com"),
    response("tok5", "2024-05-05T10:00:00Z", 0, "Never again", email="dirk@example.com"),
]
CONFIG = {"token": TOKEN, "form_id": FORM_ID, "score_field": "nps", "comment_field": "why", "channel_field": "channel",
          "survey": "NPS 2024", "page_size": 2}  # fmt: skip  # 5 responses: 3 pages


def build(tmp_path: Path, http: HttpFactory, **options: Any) -> cdp_typeform.TypeformSource:
    config = cdp_typeform.TypeformConfig.model_validate({**CONFIG, **options})
    return cdp_typeform.TypeformSource(config, make_context(tmp_path, "survey", services={"http": http}))


def keys(source: cdp_typeform.TypeformSource, cursor: Any = None) -> list[str]:
    return read_keys(source.stream("responses"), cursor)[0]


# -- the conformance suite ----------------------------------------------------------------------


class TestResponsesConformance(SourceConformance):
    plugin = cdp_typeform
    type_name = "typeform"
    config: ClassVar[dict[str, Any]] = CONFIG
    stream = "responses"

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.api = FakeTypeform([dict(r) for r in RESPONSES]).install(respx_mock)

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        FakeTypeform([]).install(respx_mock)

    # The changing-data case moves a record of the first page to the end; a Typeform response
    # does not move: test_an_answer_processed_during_the_read_comes_once reads what does happen.
    pages_never_change = (
        "a completed response never changes, and one processed during the read comes after the first read's "
        "anchor in Typeform's processing order, where step 3 of the read reads it"
    )

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.api.responses.append(response("tok6", "2024-06-01T08:00:00Z", 7, email="eva@example.com"))
        # processed after tok6 but submitted before everything read: `after` still finds it
        self.api.responses.append(response("tok7", "2024-04-30T23:59:00Z", 6))
        return ["tok6", "tok7"]


# -- records ------------------------------------------------------------------------------------


def test_responses_become_nps_records(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    FakeTypeform(RESPONSES).install(cdp_respx)
    records = {r.key: r for p in build(tmp_path, cdp_http).stream("responses").read(None) for r in p.records}
    anna = records["tok1"]
    assert anna.kind is RecordKind.nps_response and anna.stream == "survey.responses"
    assert anna.data == {
        "score": 10,
        "comment": "Great coffee",
        "survey": "NPS 2024",
        "channel": "email",
        "form_id": FORM_ID,
    }
    assert anna.identifiers == {"email": "anna@example.com"}  # from the hidden field
    assert anna.occurred_at is not None and anna.occurred_at.isoformat() == "2024-05-01T10:00:00+00:00"
    assert records["tok2"].identifiers == {"email": "ben@example.com"}  # from the email question
    assert records["tok3"].identifiers == {}  # anonymous: the store keeps it unlinked
    assert records["tok3"].data["comment"] is None and records["tok3"].data["channel"] is None


def test_email_field_by_name_and_defaults(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    FakeTypeform([response("t", "2024-05-01T10:00:00Z", 9, email="hidden@example.com", email_answer="asked@example.com")]).install(cdp_respx)  # fmt: skip
    read = lambda **o: next(r for p in build(tmp_path, cdp_http, **o).stream("responses").read(None) for r in p.records)
    assert read().identifiers == {"email": "hidden@example.com"}  # default: hidden field 'email' first
    assert read(email_field="email_q").identifiers == {"email": "asked@example.com"}  # a question's ref
    assert read(email_field="Qz8YH1n3mLkd").identifiers == {"email": "asked@example.com"}  # or its id
    assert read(email_field="nope").identifiers == {}


def test_placeholder_emails_are_not_identifiers(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    FakeTypeform([response("t", "2024-05-01T10:00:00Z", 9, email="xxxxx")]).install(cdp_respx)
    (record,) = [r for p in build(tmp_path, cdp_http).stream("responses").read(None) for r in p.records]
    assert record.identifiers == {}


def test_score_field_by_id_and_defaults(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    FakeTypeform(RESPONSES[:1]).install(cdp_respx)
    source = build(tmp_path, cdp_http, score_field="Fj2bX0lCA1ay", survey=None, channel_field=None, channel="web")
    (record,) = [r for p in source.stream("responses").read(None) for r in p.records]
    assert record.data["score"] == 10 and record.data["survey"] == FORM_ID and record.data["channel"] == "web"


def test_answers_without_a_usable_score_are_quarantined(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    FakeTypeform([
        response("ok", "2024-05-01T10:00:00Z", 9),
        response("skipped", "2024-05-02T10:00:00Z", None, "no score given", email="x@example.com"),
        response("scale5", "2024-05-03T10:00:00Z", 11),
        response("half", "2024-05-04T10:00:00Z", 7.5),
    ]).install(cdp_respx)  # fmt: skip
    pages = list(build(tmp_path, cdp_http, page_size=10).stream("responses").read(None))
    assert [r.key for p in pages for r in p.records] == ["ok"]
    rejects = {r.key: r for p in pages for r in p.rejects}
    assert rejects["skipped"].reason == "typeform: response skipped has no answer to the score field 'nps'"
    assert rejects["scale5"].reason == "typeform: response scale5: the score field 'nps' answered 11, not a whole number from 0 to 10"  # fmt: skip
    assert "7.5" in rejects["half"].reason
    assert rejects["skipped"].raw["token"] == "skipped" and rejects["skipped"].raw["hidden"]["email"] == "x@example.com"
    assert pages[-1].cursor == {"after": "half"}  # the cursor moves past quarantined answers


def test_a_stored_record_reads_as_an_nps_answer(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    from cdp_profiles.store.kinds import row_for

    FakeTypeform(RESPONSES).install(cdp_respx)
    records = [r for p in build(tmp_path, cdp_http).stream("responses").read(None) for r in p.records]
    rows = [row_for(r) for r in records]
    assert [(row["score"], row["category"]) for row in rows] == [
        (10, "promoter"), (3, "detractor"), (8, "passive"), (9, "promoter"), (0, "detractor"),
    ]  # fmt: skip
    assert rows[0]["survey"] == "NPS 2024" and rows[0]["comment"] == "Great coffee" and rows[0]["channel"] == "email"


# -- paging and incremental reads -----------------------------------------------------------------


def test_a_first_read_pages_by_submission_time_then_after_the_anchor(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    pages = list(build(tmp_path, cdp_http).stream("responses").read(None))
    assert [[r.key for r in p.records] for p in pages] == [["tok1", "tok2"], ["tok3"], ["tok4"], ["tok5"], [], []]
    at = lambda day, token: {"anchor": "tok5", "since": f"2024-05-0{day}T10:00:00+00:00", "seen": [token]}
    assert [p.cursor for p in pages] == [
        at(2, "tok2"), at(3, "tok3"), at(4, "tok4"), at(5, "tok5"), {"after": "tok5"}, {"after": "tok5"}
    ]  # fmt: skip
    since = lambda day: {"page_size": "2", "sort": "submitted_at,asc", "since": f"2024-05-0{day}T10:00:00"}
    assert [dict(r.url.params) for r in api.requests] == [
        {"page_size": "1", "sort": "submitted_at,desc"},  # the anchor: the newest response
        {"page_size": "2", "sort": "submitted_at,asc"},
        since(2), since(3), since(4), since(5),  # inclusive: the last second's responses come again, dropped
        {"page_size": "2", "after": "tok5"},  # `after` and `sort` exclude each other
    ]  # fmt: skip


def test_later_runs_page_by_the_after_token(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    pages = list(build(tmp_path, cdp_http).stream("responses").read(roundtrip({"after": "tok1"})))
    assert [[r.key for r in p.records] for p in pages] == [["tok2", "tok3"], ["tok4", "tok5"], []]
    assert [p.cursor for p in pages] == [{"after": "tok3"}, {"after": "tok5"}, {"after": "tok5"}]
    assert [dict(r.url.params) for r in api.requests] == [
        {"page_size": "2", "after": "tok1"}, {"page_size": "2", "after": "tok3"}, {"page_size": "2", "after": "tok5"},
    ]  # fmt: skip


# Processing order (the list's order) differs from submission order: "mid" was submitted after tok2
# (the last response of the first page by submission time) but processed before it.
OUT_OF_ORDER = [RESPONSES[0], response("mid", "2024-05-02T18:00:00Z", 7), *RESPONSES[1:]]
ALL_KEYS = ["tok1", "tok2", "mid", "tok3", "tok4", "tok5"]
# And "lag": submitted before the newest response (tok5, the first read's anchor), processed after it.
LAGGING = [*OUT_OF_ORDER, response("lag", "2024-05-01T12:00:00Z", 8)]


def test_a_first_read_reads_every_response_once_whatever_the_processing_order(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """`after` the first page's last token skips what was processed before that token; the first read does not."""
    FakeTypeform(OUT_OF_ORDER).install(cdp_respx)
    got, final = read_keys(build(tmp_path, cdp_http).stream("responses"), None)
    assert sorted(got) == sorted(ALL_KEYS) and len(got) == len(ALL_KEYS)
    assert final == {"after": "tok5"}  # the last response in processing order


def test_a_later_run_reads_only_the_new_answers(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """The first read ends after the last response processed ("lag", read by submission time and again after
    the anchor): the next run asks after it, and gets only what is new."""
    api = FakeTypeform(LAGGING).install(cdp_respx)
    got, final = read_keys(build(tmp_path, cdp_http).stream("responses"), None)
    assert sorted(got) == sorted([*ALL_KEYS, "lag"]) and final == {"after": "lag"}
    api.responses.append(response("new", "2024-06-01T08:00:00Z", 7))
    api.responses.append(response("late", "2024-05-01T09:00:00Z", 6))  # submitted before everything read
    seen = len(api.requests)
    got, final = read_keys(build(tmp_path, cdp_http).stream("responses"), roundtrip(final))
    assert got == ["new", "late"] and final == {"after": "late"}
    assert all(set(r.url.params) == {"page_size", "after"} for r in api.requests[seen:])  # no first read again
    assert keys(build(tmp_path, cdp_http), roundtrip(final)) == []


def test_a_first_read_cut_short_after_any_page_loses_nothing(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """Resumed from the cursor of page N (of the pass by submission time or after the anchor), with answers
    processed meanwhile (one submitted before everything read): every answer comes. The one repeat a cut
    allows: "lag", read by submission time before the cut and processed after the anchor, comes again."""
    api = FakeTypeform().install(cdp_respx)
    for cut in range(1, 9):  # the read has 8 pages: 7 by submission time, 1 after the anchor
        api.responses = list(LAGGING)
        pages = build(tmp_path, cdp_http).stream("responses").read(None)
        before = [next(pages) for _ in range(cut)]
        pages.close()  # the crash
        api.responses.append(response("new", "2024-06-01T08:00:00Z", 7))
        api.responses.append(response("late", "2024-05-01T09:00:00Z", 6))
        got, final = read_keys(build(tmp_path, cdp_http).stream("responses"), roundtrip(before[-1].cursor))
        delivered = [r.key for p in before for r in p.records] + got
        assert sorted(set(delivered)) == sorted([*ALL_KEYS, "lag", "new", "late"]), cut
        assert [k for k in delivered if delivered.count(k) > 1] in ([], ["lag", "lag"]), cut
        assert final == {"after": "late"}, cut
        assert keys(build(tmp_path, cdp_http), roundtrip(final)) == [], cut


def test_a_whole_page_in_one_second_fails_rather_than_skip(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """`since` is inclusive and to the second: past a page of responses of one second it cannot get."""
    FakeTypeform([response(t, "2024-05-01T10:00:00Z") for t in ("a", "b", "c")]).install(cdp_respx)
    pages = build(tmp_path, cdp_http).stream("responses").read(None)
    assert [r.key for r in next(pages).records] == ["a", "b"]
    with pytest.raises(ValueError, match=r"a whole page of 2 responses was submitted in the second 2024-05-01T10:00:00.*raise page_size"):  # fmt: skip
        next(pages)
    assert keys(build(tmp_path, cdp_http, page_size=4)) == ["a", "b", "c"]  # a page larger than the second


def test_resumes_from_a_saved_cursor(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    assert keys(build(tmp_path, cdp_http), roundtrip({"after": "tok3"})) == ["tok4", "tok5"]
    assert api.requests[0].url.params["after"] == "tok3" and "sort" not in api.requests[0].url.params


def test_a_late_processed_answer_is_not_missed(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """Submitted before the last run's newest answer, processed after it: `after` returns it, once."""
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    _, final = read_keys(build(tmp_path, cdp_http).stream("responses"), None)
    api.responses.append(response("late", "2024-05-02T12:00:00Z", 5))
    got, final = read_keys(build(tmp_path, cdp_http).stream("responses"), roundtrip(final))
    assert got == ["late"] and final == {"after": "late"}
    assert keys(build(tmp_path, cdp_http), roundtrip(final)) == []


def test_an_answer_processed_during_the_read_comes_once(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """Answers processed while the read pages come after its anchor: "new" is read by submission time and
    dropped after the anchor, "late" (submitted before everything read) after the anchor; each once, and the
    next run nothing."""
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    pages = build(tmp_path, cdp_http).stream("responses").read(None)
    first = next(pages)
    api.responses.append(response("new", "2024-06-01T08:00:00Z", 7))
    api.responses.append(response("late", "2024-05-01T09:00:00Z", 6))  # submitted before everything read
    rest = list(pages)
    got = [r.key for page in [first, *rest] for r in page.records]
    assert got == ["tok1", "tok2", "tok3", "tok4", "tok5", "new", "late"]
    assert keys(build(tmp_path, cdp_http), roundtrip(rest[-1].cursor)) == []


def test_a_full_last_page_ends_with_an_empty_one(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    api = FakeTypeform(RESPONSES[:4]).install(cdp_respx)
    pages = list(build(tmp_path, cdp_http).stream("responses").read({"after": "tok2"}))
    # a full page may have a successor whatever page_count says: one more request makes sure
    assert [len(p.records) for p in pages] == [2, 0]
    assert len(api.requests) == 2 and [p.cursor for p in pages] == [{"after": "tok4"}, {"after": "tok4"}]


def test_empty_form(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    FakeTypeform([]).install(cdp_respx)
    pages = list(build(tmp_path, cdp_http).stream("responses").read(None))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].rejects == [] and pages[0].cursor == {"after": None}


def test_nothing_new_keeps_the_cursor(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    FakeTypeform(RESPONSES).install(cdp_respx)
    pages = list(build(tmp_path, cdp_http).stream("responses").read({"after": "tok5"}))
    assert [p.records for p in pages] == [[]] and pages[-1].cursor == {"after": "tok5"}


def test_eu_accounts_use_the_eu_api(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeTypeform(RESPONSES, base="https://api.eu.typeform.com").install(cdp_respx)
    assert len(keys(build(tmp_path, cdp_http, base_url="https://api.eu.typeform.com/"))) == 5
    assert {r.url.host for r in api.requests} == {"api.eu.typeform.com"}


def test_config_is_checked() -> None:
    with pytest.raises(ValidationError, match="https"):
        cdp_typeform.TypeformConfig.model_validate({**CONFIG, "base_url": "http://api.typeform.com"})
    with pytest.raises(ValidationError) as info:
        cdp_typeform.TypeformConfig.model_validate({**CONFIG, "page_size": 1001, "form_id": "a/b"})
    assert TOKEN not in str(info.value)


def test_a_cursor_of_another_shape_is_a_clear_error(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    FakeTypeform(RESPONSES).install(cdp_respx)
    for cursor in ("tok3", {"after": "tok3", "anchor": "tok5"}, {"since": "2024-05-01T10:00:00Z"}, {"token": "x"}):
        with pytest.raises(ValueError, match="typeform cursor"):
            keys(build(tmp_path, cdp_http), cursor)


# -- what the HTTP layer does for the source ------------------------------------------------------


def test_rate_limited_then_ok(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    api.failures[1] = httpx.Response(429, headers={"Retry-After": "5"})
    assert len(keys(build(tmp_path, cdp_http))) == 5
    assert 5.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_requests_are_paced_at_two_per_second(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    source = build(tmp_path, cdp_http)
    keys(source)
    assert source.client.limiter.rate is not None and source.client.limiter.rate.interval == 0.5
    assert len(api.requests) == 7  # the anchor, 5 pages by submission time, 1 after the anchor
    assert sum(cdp_http.clock.sleeps) == pytest.approx(3.0)  # type: ignore[attr-defined]  # 7 requests: 6 waits


def test_server_error_then_ok(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    api.failures[2] = httpx.Response(502)
    assert len(keys(build(tmp_path, cdp_http))) == 5


def test_timeout_then_ok(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    api.failures[2] = httpx.ConnectTimeout("slow")
    assert len(keys(build(tmp_path, cdp_http))) == 5


def test_malformed_page_stops_before_its_cursor(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    # the anchor, page 1, then a page whose items are not a list
    api.failures[3] = httpx.Response(200, json={"total_items": 3, "page_count": 2, "items": {"token": "tok3"}})
    pages = build(tmp_path, cdp_http).stream("responses").read(None)
    first = next(pages)
    with pytest.raises(ResponseError) as info:
        next(pages)  # the runner keeps the cursor of page 1
    assert first.cursor == {"anchor": "tok5", "since": "2024-05-02T10:00:00+00:00", "seen": ["tok2"]}
    assert "connector 'survey'" in str(info.value) and "items: Input should be a valid list" in str(info.value)


def test_auth_failure_names_the_connector(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    FakeTypeform(RESPONSES).install(cdp_respx)
    with pytest.raises(AuthError) as info:
        keys(build(tmp_path, cdp_http, token="tfp_wrong_token_value"))
    message = str(info.value)
    assert "connector 'survey'" in message and "401" in message and "credentials" in message
    # Typeform's own reason, from the body: what the status line alone does not say.
    assert "401 Unauthorized: Typeform AUTHENTICATION_FAILED: Authentication credentials not found" in message
    assert "tfp_wrong_token_value" not in message


def test_a_form_that_is_not_there_says_so(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(url__regex=r"/forms/.*/responses").mock(
        return_value=httpx.Response(404, json={"code": "FORM_NOT_FOUND", "description": "Non existing form with uid abc"})
    )
    with pytest.raises(ClientError) as info:
        keys(build(tmp_path, cdp_http))
    assert "404 Not Found: Typeform FORM_NOT_FOUND: Non existing form with uid abc" in str(info.value)


@pytest.mark.parametrize(
    ("url", "ok"),
    [("http://127.0.0.1:8080", True), ("http://localhost:9", True), ("http://[::1]:9", True), ("https://proxy.example/tf", True),
     ("http://api.typeform.com", False), ("ftp://127.0.0.1", False), ("https://u:p@proxy.example", False)],
)  # fmt: skip
def test_base_url_takes_https_or_loopback_http(url: str, ok: bool) -> None:
    if ok:
        assert cdp_typeform.TypeformConfig.model_validate({**CONFIG, "base_url": url}).base_url == url
    else:
        with pytest.raises(ValueError, match="base_url|loopback|user info"):
            cdp_typeform.TypeformConfig.model_validate({**CONFIG, "base_url": url})


# -- in a sync graph, into the profile store --------------------------------------------------------


def test_answers_reach_the_profile_store(
    register_plugin: Any, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:

    api = FakeTypeform([*RESPONSES, response("bad", "2024-05-06T10:00:00Z", None)]).install(cdp_respx)
    toml = f"""
[connectors.survey]
type = "typeform"
token = "${{TYPEFORM_TOKEN}}"
form_id = "{FORM_ID}"
score_field = "nps"
comment_field = "why"
survey = "NPS 2024"

[connectors.store]
type = "profile_store"

[syncs.main.nodes.answers]
source = "survey.responses"

[syncs.main.nodes.store]
destination = "store"
inputs = ["answers"]
"""
    plugins = register_plugin(cdp_typeform, extra=["profiles"])
    env = {"TYPEFORM_TOKEN": TOKEN}
    run = run_graph(tmp_path, toml, plugins, services={"http": cdp_http}, env=env)
    assert run.status == "succeeded", run.error
    assert run.nodes["answers"].records_out == 5 and run.nodes["answers"].rejected == 1
    api.responses.append(response("tok6", "2024-06-01T08:00:00Z", 7, email="anna@example.com"))
    again = run_graph(tmp_path, toml, plugins, services={"http": cdp_http}, env=env)
    assert again.status == "succeeded" and again.nodes["answers"].records_out == 1
    assert api.requests[-1].url.params["after"] == "bad"


# -- cursors committed before the source kept its mark with cdp_core.Incremental -------------------


def test_an_empty_first_reads_cursor_stored_by_earlier_versions(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """The layout is unchanged ({"after": TOKEN}: test_resumes_from_a_saved_cursor); {"after": null} reads from the start."""
    api = FakeTypeform(RESPONSES).install(cdp_respx)
    assert keys(build(tmp_path, cdp_http), roundtrip({"after": None})) == ["tok1", "tok2", "tok3", "tok4", "tok5"]
    assert dict(api.requests[0].url.params) == {"page_size": "1", "sort": "submitted_at,desc"}  # a first read
    assert dict(api.requests[1].url.params) == {"page_size": "2", "sort": "submitted_at,asc"}


def test_one_malformed_response_is_quarantined_the_others_stored(
    cdp_respx: respx.Router, cdp_http: HttpFactory, register_plugin: RegisterPlugin, tmp_path: Path, store_url: str
) -> None:
    """One response that fails the model in the middle of a page: the others reach the destination, it
    is quarantined with its payload, the run succeeds, and the next run delivers nothing again."""
    answers = [response(f"tok{n}", f"2024-05-0{n}T10:00:00Z", email=f"p{n}@example.com") for n in (1, 2, 3)]
    answers[1]["submitted_at"] = "2024-05-02T25:99:00Z"  # no such time
    api = FakeTypeform(answers).install(cdp_respx)
    connector = (
        f'[connectors.survey]\ntype = "typeform"\ntoken = "${{TYPEFORM_TOKEN}}"\nform_id = "{FORM_ID}"\nscore_field = "nps"'
    )
    runs = run_twice(
        tmp_path, connector, "survey.responses", register_plugin(cdp_typeform, extra=[kit_plugin]), store_url,
        env={"TYPEFORM_TOKEN": TOKEN}, services={"http": cdp_http},
    )  # fmt: skip
    assert runs.delivered == ["tok1", "tok3"]
    assert (runs.first.nodes["responses"].records_out, runs.first.nodes["responses"].rejected) == (2, 1)
    [entry] = runs.quarantined
    assert entry["record_key"] == "tok2" and entry["payload"] == answers[1]
    assert entry["reason"].startswith(f"typeform: an item of GET /forms/{FORM_ID}/responses")
    assert "submitted_at: Input should be a valid datetime" in entry["reason"]
    assert runs.second.nodes["responses"].records_out == 0 and runs.redelivered == []
    assert api.requests[-1].url.params["after"] == "tok3"  # the next run asked only for what came after
