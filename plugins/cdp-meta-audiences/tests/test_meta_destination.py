"""The meta_audiences destination through the real runner, against a respx fake of the Graph API."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from cdp_core.http import HttpFactory
from cdp_core.plugins import Plugins
from cdp_core.runinfo import RunInfo
from cdp_core.store import SystemStore
from cdp_core.testing import kit_plugin, run_graph, store_url_for, to_toml
from meta_fake import AUDIENCE, USERS_URL, FakeGraph

import cdp_meta_audiences

ENV = {"META_ACCESS_TOKEN": "meta-token-secret"}
KNOWN = {"id": "p1", "email": " John.Doe@Example.com ", "phone": "+49 (0)171 1234567", "first_name": "Zoë"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def person(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"p{n}", "email": f"Person.{n}@Example.org", "phone": f"+49 30 {1000000 + n}", **extra}


@pytest.fixture
def plugins(register_plugin: Any) -> Plugins:
    return register_plugin(cdp_meta_audiences, extra=[kit_plugin, "profiles"])


def sync(
    tmp_path: Any,
    plugins: Plugins,
    http: HttpFactory,
    people: list[dict[str, Any]],
    *,
    page_size: int = 100,
    fail_after_pages: int | None = None,
    **options: Any,
) -> RunInfo:
    """One run of: list_source (full refresh) -> meta_audiences."""
    source = {
        "page_size": page_size,
        **({"fail_after_pages": fail_after_pages} if fail_after_pages is not None else {}),
    }
    stream = {"records": people, "incremental": False, "identifiers": {"email": "email", "phone": "phone"}}
    meta = {"audience_id": AUDIENCE, "graph_version": "v22.0", **options}
    toml = f"""
[connectors.src]
type = "list_source"
streams = {to_toml({"people": stream})}
{"".join(f"{k} = {to_toml(v)}{chr(10)}" for k, v in source.items())}
# The mirror, not consent, is tested here (consent: test_*_consent.py): nobody has a decision,
# so ads is opt-out and everyone fed is sent.
[consent.purposes.ads]
policy = "opt_out"

[connectors.meta]
type = "meta_audiences"
access_token = "${{META_ACCESS_TOKEN}}"
{"".join(f"{k} = {to_toml(v)}{chr(10)}" for k, v in meta.items())}
[syncs.main.nodes.people]
source = "src.people"

[syncs.main.nodes.audience]
destination = "meta"
inputs = ["people"]
"""
    return run_graph(tmp_path, toml, plugins, services={"http": http}, env=ENV)


# -- the exact payload -------------------------------------------------------------------------


def test_the_known_person_is_sent_exactly_as_meta_documents(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    run = sync(tmp_path, plugins, cdp_http, [KNOWN], schema=["EMAIL", "PHONE", "FN"])
    assert run.status == "succeeded", run.error
    [(method, body)] = graph.calls
    assert method == "POST"
    session = body.pop("session")
    assert body == {
        "payload": {
            "schema": ["EMAIL", "PHONE", "FN"],
            "data": [
                [
                    hashlib.sha256(b"john.doe@example.com").hexdigest(),
                    hashlib.sha256(b"491711234567").hexdigest(),  # Meta: digits with country code, no '+'
                    hashlib.sha256("zoë".encode()).hexdigest(),
                ]
            ],
        }
    }
    assert session["batch_seq"] == 1 and session["last_batch_flag"] is True and session["estimated_num_total"] == 1
    assert isinstance(session["session_id"], int)
    request = graph.requests[0]
    assert request.headers["Authorization"] == "Bearer meta-token-secret"
    assert str(request.url) == USERS_URL  # no token in the query string


def test_the_default_schema_sends_empty_strings_for_what_a_person_lacks(
    tmp_path, plugins, cdp_http, graph: FakeGraph
) -> None:
    run = sync(tmp_path, plugins, cdp_http, [{**KNOWN, "last_name": "Doe", "country": "Germany", "zip": "10115-1"}])
    assert run.status == "succeeded", run.error
    payload = graph.calls[0][1]["payload"]
    assert payload["schema"] == ["EMAIL", "PHONE", "FN", "LN", "CT", "ZIP", "COUNTRY"]
    assert payload["data"] == [
        [sha("john.doe@example.com"), sha("491711234567"), sha("zoë"), sha("doe"), "", sha("10115"), sha("de")]
    ]


RAW_FORMS = [
    "John.Doe@Example.com", "john.doe@example.com", "john.doe", "+49 (0)171 1234567", "+491711234567",
    "491711234567", "1711234567", "Person.1@Example.org", "person.1@example.org", "4930100000", "Zoë", "zo\\u00eb",
]  # fmt: skip


def test_no_request_body_carries_a_raw_email_or_phone(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    people = [KNOWN, *(person(n) for n in range(1, 6))]
    assert sync(tmp_path, plugins, cdp_http, people).status == "succeeded"
    assert sync(tmp_path, plugins, cdp_http, people[:3] + [person(9)]).status == "succeeded"  # removals too
    assert {"POST", "DELETE"} <= set(graph.methods())
    assert [r.method for r in graph.requests] == ["POST", "DELETE", "POST"]
    for request in graph.requests:
        sent = request.url.raw_path.decode() + request.content.decode("utf-8")
        for raw in RAW_FORMS:
            assert raw.lower() not in sent.lower(), f"{raw!r} went out in {request.method} {request.url}"
        for row in json.loads(request.content)["payload"]["data"]:
            assert all(len(v) == 64 and int(v, 16) >= 0 for v in row if v), row


# -- the mirror ----------------------------------------------------------------------------------


def test_first_run_uploads_everyone_then_only_the_difference(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    people = [person(n) for n in range(1, 6)]
    assert sync(tmp_path, plugins, cdp_http, people).status == "succeeded"
    assert graph.methods() == ["POST"]
    assert len(graph.rows("POST")) == 5
    graph.calls.clear()

    # p3 is gone, p6 is new.
    run = sync(tmp_path, plugins, cdp_http, [p for p in people if p["id"] != "p3"] + [person(6)])
    assert run.status == "succeeded", run.error
    assert sorted(graph.methods()) == ["DELETE", "POST"]
    assert graph.methods()[0] == "DELETE"  # removals go first
    [removed] = graph.rows("DELETE")
    [added] = graph.rows("POST")
    assert removed[0] == sha("person.3@example.org")
    assert added[0] == sha("person.6@example.org")
    graph.calls.clear()

    assert sync(tmp_path, plugins, cdp_http, [p for p in people if p["id"] != "p3"] + [person(6)]).status == "succeeded"
    assert graph.calls == []  # nothing changed, nothing sent


def test_a_changed_person_is_sent_again_as_an_addition(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    assert sync(tmp_path, plugins, cdp_http, [person(1, first_name="Ann")]).status == "succeeded"
    graph.calls.clear()
    assert sync(tmp_path, plugins, cdp_http, [person(1, first_name="Anne")]).status == "succeeded"
    assert graph.methods() == ["POST"]
    assert graph.rows("POST")[0][2] == sha("anne")


def test_a_failed_run_sends_no_removals_and_the_resumed_run_sees_everyone(
    tmp_path, plugins, cdp_http, graph: FakeGraph
) -> None:
    people = [person(n) for n in range(1, 5)]
    assert sync(tmp_path, plugins, cdp_http, people, page_size=2).status == "succeeded"
    graph.calls.clear()
    graph.requests.clear()

    # p4 is gone, but the source fails after its first page: nothing may be removed.
    failed = sync(tmp_path, plugins, cdp_http, people[:3], page_size=2, fail_after_pages=1)
    assert failed.status == "failed"
    assert graph.requests == []

    # The next run resumes the source after that page and completes: exactly p4 goes.
    run = sync(tmp_path, plugins, cdp_http, people[:3], page_size=2)
    assert run.status == "succeeded", run.error
    assert graph.methods() == ["DELETE"]
    assert [row[0] for row in graph.rows("DELETE")] == [sha("person.4@example.org")]


def test_nobody_fed_fails_rather_than_empty_the_audience(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    assert sync(tmp_path, plugins, cdp_http, [person(1), person(2)]).status == "succeeded"
    graph.calls.clear()
    run = sync(tmp_path, plugins, cdp_http, [])
    assert run.status == "failed"
    assert "allow_empty" in (run.error or "") and "connector 'meta'" in (run.error or "")
    assert graph.calls == []
    run = sync(tmp_path, plugins, cdp_http, [], allow_empty=True)
    assert run.status == "succeeded", run.error
    assert graph.methods() == ["DELETE"] and len(graph.rows("DELETE")) == 2


def test_records_without_a_usable_identifier_are_quarantined(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    people = [person(1), {"id": "p2", "first_name": "Zoë"}, {"id": "p3", "email": "not-an-email"}]
    run = sync(tmp_path, plugins, cdp_http, people)
    assert run.status == "succeeded", run.error
    assert run.nodes["audience"].rejected == 2 and run.nodes["audience"].records_out == 1
    store = SystemStore(store_url_for(tmp_path))
    try:
        rows = {row["record_key"]: row["reason"] for row in store.quarantine(graph="main", node="audience")}
    finally:
        store.engine.dispose()
    assert rows == {
        "p2": "no usable identifier for Meta: needs a valid email or phone",
        "p3": "no usable identifier for Meta: needs a valid email or phone (its email is not valid)",
    }
    assert len(graph.rows("POST")) == 1


# -- chunks of at most 10,000 rows -----------------------------------------------------------------


def test_additions_go_in_chunks_of_at_most_10000_rows(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    people = [{"id": f"p{n}", "email": f"p{n}@example.com"} for n in range(10_001)]
    run = sync(tmp_path, plugins, cdp_http, people, page_size=5_000, schema=["EMAIL"])
    assert run.status == "succeeded", run.error
    sizes = [len(body["payload"]["data"]) for _, body in graph.calls]
    assert sizes == [10_000, 1]
    sessions = [body["session"] for _, body in graph.calls]
    assert len({s["session_id"] for s in sessions}) == 1
    assert [(s["batch_seq"], s["last_batch_flag"], s["estimated_num_total"]) for s in sessions] == [
        (1, False, 10_001),
        (2, True, 10_001),
    ]


def test_removals_are_chunked_too(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    people = [person(n) for n in range(1, 8)]
    assert sync(tmp_path, plugins, cdp_http, people, rows_per_request=3).status == "succeeded"
    assert [len(body["payload"]["data"]) for _, body in graph.calls] == [3, 3, 1]
    graph.calls.clear()
    assert sync(tmp_path, plugins, cdp_http, people[:2], rows_per_request=3).status == "succeeded"
    assert [(m, len(b["payload"]["data"])) for m, b in graph.calls] == [("DELETE", 3), ("DELETE", 2)]


def test_more_than_10000_rows_per_request_is_a_config_error(tmp_path, plugins, cdp_http) -> None:
    from cdp_core.config import ConfigError

    with pytest.raises(ConfigError, match="rows_per_request"):
        sync(tmp_path, plugins, cdp_http, [person(1)], rows_per_request=10_001)


# -- errors and retries ------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    graph.failures.append(httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"code": 80003}}))
    run = sync(tmp_path, plugins, cdp_http, [person(1)])
    assert run.status == "succeeded", run.error
    assert cdp_http.clock.sleeps == [7.0]
    assert len(graph.rows("POST")) == 1


def test_a_5xx_then_success(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    graph.failures.append(httpx.Response(503))
    run = sync(tmp_path, plugins, cdp_http, [person(1)])
    assert run.status == "succeeded", run.error
    assert len(graph.requests) == 2 and len(cdp_http.clock.sleeps) == 1


def test_an_expired_token_is_an_auth_error_naming_the_connector(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    oauth = {"error": {"message": "Error validating access token", "type": "OAuthException", "code": 190,
                       "error_subcode": 463, "fbtrace_id": "AbC123"}}  # fmt: skip
    graph.failures.append(httpx.Response(400, json=oauth))
    run = sync(tmp_path, plugins, cdp_http, [person(1), person(2)])
    assert run.status == "failed"
    error = run.error or ""
    assert error.startswith("AuthError: connector 'meta':")
    assert "OAuthException, code 190/463" in error and "fbtrace_id AbC123" in error
    assert "check the connector's credentials" in error
    assert "meta-token-secret" not in error
    assert len(graph.requests) == 1  # not retried
    # Nothing was confirmed: the next complete run uploads everyone.
    assert sync(tmp_path, plugins, cdp_http, [person(1), person(2)]).status == "succeeded"
    assert len(graph.rows("POST")) == 2


def test_a_401_is_an_auth_error_too(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    graph.failures.append(httpx.Response(401, json={"error": {"type": "OAuthException", "code": 2500}}))
    run = sync(tmp_path, plugins, cdp_http, [person(1)])
    assert run.status == "failed" and (run.error or "").startswith("AuthError: connector 'meta':")


def test_a_failure_mid_upload_keeps_what_meta_took(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    people = [person(n) for n in range(1, 6)]
    answer, calls = graph._answer, []

    def second_request_refused(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 2:
            return httpx.Response(400, json={"error": {"type": "GraphMethodException", "code": 100}})
        return answer(request)

    graph.route_post.mock(side_effect=second_request_refused)
    run = sync(tmp_path, plugins, cdp_http, people, rows_per_request=2)
    assert run.status == "failed"
    assert "ClientError: connector 'meta'" in (run.error or "")
    assert "GraphMethodException, code 100" in (run.error or "")
    assert len(graph.rows("POST")) == 2  # the first chunk went through
    graph.route_post.mock(side_effect=answer)
    graph.calls.clear()
    assert sync(tmp_path, plugins, cdp_http, people, rows_per_request=2).status == "succeeded"
    assert len(graph.rows("POST")) == 3  # only what Meta had not taken yet


def test_an_unexpected_answer_is_a_clear_error(tmp_path, plugins, cdp_http, cdp_respx) -> None:
    cdp_respx.post(USERS_URL).respond(200, json={"success": True})
    run = sync(tmp_path, plugins, cdp_http, [person(1)])
    assert run.status == "failed"
    assert "ResponseError: connector 'meta': the response does not match UsersResponse: num_received" in (
        run.error or ""
    )


def test_the_graph_version_and_host_are_configurable(tmp_path, plugins, cdp_http, cdp_respx) -> None:
    route = cdp_respx.post(f"https://graph.example.test/v23.0/{AUDIENCE}/users").respond(
        200, json={"audience_id": AUDIENCE, "num_received": 1, "num_invalid_entries": 0}
    )
    run = sync(tmp_path, plugins, cdp_http, [person(1)], graph_version="v23.0", base_url="https://graph.example.test")
    assert run.status == "succeeded", run.error
    assert route.call_count == 1


# -- the intended graph: profile store -> filter -> audience -----------------------------------------


def test_profiles_all_through_a_filter_into_the_audience(tmp_path, plugins, cdp_http, graph: FakeGraph) -> None:
    def toml(people: list[dict[str, Any]]) -> str:
        stream = {"records": people, "incremental": False, "identifiers": {"email": "email", "phone": "phone"}}
        return f"""
[identity]
default_region = "DE"

[connectors.src]
type = "list_source"
streams = {to_toml({"people": stream})}

[connectors.store]
type = "profile_store"

# The mirror, not consent, is tested here (consent: test_*_consent.py): nobody has a decision,
# so ads is opt-out and everyone fed is sent.
[consent.purposes.ads]
policy = "opt_out"

[connectors.meta]
type = "meta_audiences"
access_token = "${{META_ACCESS_TOKEN}}"
audience_id = "{AUDIENCE}"
graph_version = "v22.0"
schema = ["EMAIL", "PHONE", "FN"]

[syncs.ingest.nodes.people]
source = "src.people"

[syncs.ingest.nodes.store]
destination = "store"
inputs = ["people"]

[syncs.promoters.nodes.profiles]
source = "store.profiles_all"

[syncs.promoters.nodes.promoters]
transform = "filter"
inputs = ["profiles"]
options = {{ where = "nps_category == 'promoter'" }}

[syncs.promoters.nodes.audience]
destination = "meta"
inputs = ["promoters"]
"""

    people = [
        {**KNOWN, "nps_category": "promoter"},
        {**person(2), "nps_category": "detractor"},
        {**person(3), "nps_category": "promoter"},
    ]
    assert run_graph(tmp_path, toml(people), plugins, "ingest", env=ENV).status == "succeeded"
    run = run_graph(tmp_path, toml(people), plugins, "promoters", services={"http": cdp_http}, env=ENV)
    assert run.status == "succeeded", run.error
    sent = graph.rows("POST")
    assert sorted(sent) == sorted(
        [
            [sha("john.doe@example.com"), sha("491711234567"), sha("zoë")],
            [sha("person.3@example.org"), sha("49301000003"), ""],
        ]
    )
    graph.calls.clear()

    # p3 stops being a promoter: the next run removes exactly p3.
    later = [people[0], people[1], {**person(3), "id": "p3", "nps_category": "passive"}]
    assert run_graph(tmp_path, toml(later), plugins, "ingest", env=ENV).status == "succeeded"
    run = run_graph(tmp_path, toml(later), plugins, "promoters", services={"http": cdp_http}, env=ENV)
    assert run.status == "succeeded", run.error
    assert graph.methods() == ["DELETE"]
    assert [row[0] for row in graph.rows("DELETE")] == [sha("person.3@example.org")]
