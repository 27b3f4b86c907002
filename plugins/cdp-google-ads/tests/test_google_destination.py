"""The google_ads destination through the real runner, against a respx fake of the Google Ads API."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from cdp_core.http import HttpFactory
from cdp_core.plugins import Plugins
from cdp_core.runinfo import RunInfo
from cdp_core.store import SystemStore
from cdp_core.testing import kit_plugin, run_graph, store_url_for, to_toml
from google_fake import ADD_URL, CREATE_URL, CUSTOMER, JOB, LOGIN_CUSTOMER, RUN_URL, TOKEN_URL, USER_LIST

import cdp_google_ads

ENV = {
    "GOOGLE_ADS_DEVELOPER_TOKEN": "dev-token-secret",
    "GOOGLE_ADS_CLIENT_SECRET": "client-secret-value",
    "GOOGLE_ADS_REFRESH_TOKEN": "refresh-token-value",
}
KNOWN = {
    "id": "p1",
    "email": " John.Doe@Example.com ",
    "phone": "+49 (0)171 1234567",
    "first_name": "Zoë",
    "last_name": "Doe",
    "country": "DE",
    "zip": "10115",
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def person(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"p{n}", "email": f"Person.{n}@Example.org", "phone": f"+49 30 {1000000 + n}", **extra}


def email_of(identifiers: list[dict[str, Any]]) -> str:
    return next(i["hashedEmail"] for i in identifiers if "hashedEmail" in i)


@pytest.fixture
def plugins(register_plugin: Any) -> Plugins:
    return register_plugin(cdp_google_ads, extra=[kit_plugin, "profiles"])


def gads_toml(**options: Any) -> str:
    gads = {
        "customer_id": "123-456-7890",
        "login_customer_id": "987-654-3210",
        "user_list_id": USER_LIST,
        "client_id": "client-id.apps.googleusercontent.com",
        **options,
    }
    return f"""
# The mirror, not consent, is tested here (consent: test_*_consent.py): nobody has a decision,
# so ads is opt-out and everyone fed is sent.
[consent.purposes.ads]
policy = "opt_out"

[connectors.gads]
type = "google_ads"
developer_token = "${{GOOGLE_ADS_DEVELOPER_TOKEN}}"
client_secret = "${{GOOGLE_ADS_CLIENT_SECRET}}"
refresh_token = "${{GOOGLE_ADS_REFRESH_TOKEN}}"
{"".join(f"{k} = {to_toml(v)}{chr(10)}" for k, v in gads.items())}"""


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
    """One run of: list_source (full refresh) -> google_ads."""
    source = {
        "page_size": page_size,
        **({"fail_after_pages": fail_after_pages} if fail_after_pages is not None else {}),
    }
    stream = {"records": people, "incremental": False, "identifiers": {"email": "email", "phone": "phone"}}
    toml = f"""
[connectors.src]
type = "list_source"
streams = {to_toml({"people": stream})}
{"".join(f"{k} = {to_toml(v)}{chr(10)}" for k, v in source.items())}
{gads_toml(**options)}
[syncs.main.nodes.people]
source = "src.people"

[syncs.main.nodes.audience]
destination = "gads"
inputs = ["people"]
"""
    return run_graph(tmp_path, toml, plugins, services={"http": http}, env=ENV)


# -- the exact payload -------------------------------------------------------------------------


def test_the_known_person_is_sent_exactly_as_google_documents(tmp_path, plugins, cdp_http, google) -> None:
    run = sync(tmp_path, plugins, cdp_http, [KNOWN])
    assert run.status == "succeeded", run.error
    assert google.calls == [
        (
            "create",
            {
                "job": {
                    "type": "CUSTOMER_MATCH_USER_LIST",
                    "customerMatchUserListMetadata": {"userList": f"customers/{CUSTOMER}/userLists/{USER_LIST}"},
                }
            },
        ),
        (
            "addOperations",
            {
                "enablePartialFailure": True,
                "operations": [
                    {
                        "create": {
                            "userIdentifiers": [
                                {"hashedEmail": hashlib.sha256(b"john.doe@example.com").hexdigest()},
                                # Google: E.164 with the '+' (Meta hashes 491711234567)
                                {"hashedPhoneNumber": hashlib.sha256(b"+491711234567").hexdigest()},
                                {
                                    "addressInfo": {
                                        "hashedFirstName": hashlib.sha256("zoë".encode()).hexdigest(),
                                        "hashedLastName": hashlib.sha256(b"doe").hexdigest(),
                                        "countryCode": "DE",
                                        "postalCode": "10115",
                                    }
                                },
                            ]
                        }
                    }
                ],
            },
        ),
        ("run", {}),
    ]
    token, *api = google.requests
    assert str(token.url) == TOKEN_URL
    for request in api:
        assert request.headers["Authorization"] == "Bearer ya29.access-1"
        assert request.headers["developer-token"] == "dev-token-secret"
        assert request.headers["login-customer-id"] == LOGIN_CUSTOMER
    assert [str(r.url) for r in api] == [CREATE_URL, ADD_URL, RUN_URL]
    assert google.tokens_issued == 1


def test_gmail_dots_are_dropped(tmp_path, plugins, cdp_http, google) -> None:
    run = sync(tmp_path, plugins, cdp_http, [{"id": "g", "email": "John.Doe@GoogleMail.com"}])
    assert run.status == "succeeded", run.error
    assert google.ops("create") == [[{"hashedEmail": sha("johndoe@googlemail.com")}]]


RAW_FORMS = [
    "John.Doe@Example.com", "john.doe@example.com", "john.doe", "+49 (0)171 1234567", "+491711234567",
    "491711234567", "1711234567", "Person.1@Example.org", "person.1@example.org", "4930100000", "Zoë", "zo\\u00eb",
]  # fmt: skip


def test_no_request_body_carries_a_raw_email_or_phone(tmp_path, plugins, cdp_http, google) -> None:
    people = [KNOWN, *(person(n) for n in range(1, 6))]
    assert sync(tmp_path, plugins, cdp_http, people).status == "succeeded"
    assert sync(tmp_path, plugins, cdp_http, people[:3] + [person(9)]).status == "succeeded"  # removals too
    assert google.ops("remove") and google.ops("create")
    assert len(google.requests) >= 7
    for request in google.requests:  # the token requests too
        sent = str(request.url) + request.content.decode("utf-8")
        for raw in RAW_FORMS:
            assert raw.lower() not in sent.lower(), f"{raw!r} went out in {request.method} {request.url}"


# -- the mirror ----------------------------------------------------------------------------------


def test_first_run_uploads_everyone_then_only_the_difference(tmp_path, plugins, cdp_http, google) -> None:
    people = [person(n) for n in range(1, 6)]
    assert sync(tmp_path, plugins, cdp_http, people).status == "succeeded"
    assert google.steps() == ["create", "addOperations", "run"]
    assert len(google.ops("create")) == 5 and google.ops("remove") == []
    google.calls.clear()

    # p3 is gone, p6 is new: one job, the removal first.
    run = sync(tmp_path, plugins, cdp_http, [p for p in people if p["id"] != "p3"] + [person(6)])
    assert run.status == "succeeded", run.error
    assert google.steps() == ["create", "addOperations", "run"]
    assert [list(op) for op in google.operations()] == [["remove"], ["create"]]
    [removed] = google.ops("remove")
    [added] = google.ops("create")
    assert removed == [{"hashedEmail": sha("person.3@example.org")}, {"hashedPhoneNumber": sha("+49301000003")}]
    assert email_of(added) == sha("person.6@example.org")
    google.calls.clear()

    assert sync(tmp_path, plugins, cdp_http, [p for p in people if p["id"] != "p3"] + [person(6)]).status == "succeeded"
    assert google.calls == []  # nothing changed: no job at all


def test_a_failed_run_sends_no_removals_and_the_resumed_run_sees_everyone(tmp_path, plugins, cdp_http, google) -> None:
    people = [person(n) for n in range(1, 5)]
    assert sync(tmp_path, plugins, cdp_http, people, page_size=2).status == "succeeded"
    google.calls.clear()
    google.requests.clear()

    failed = sync(tmp_path, plugins, cdp_http, people[:3], page_size=2, fail_after_pages=1)
    assert failed.status == "failed"
    assert google.requests == []

    run = sync(tmp_path, plugins, cdp_http, people[:3], page_size=2)
    assert run.status == "succeeded", run.error
    assert [list(op) for op in google.operations()] == [["remove"]]
    assert email_of(google.ops("remove")[0]) == sha("person.4@example.org")


def test_refused_operations_are_sent_again_next_time(tmp_path, plugins, cdp_http, google) -> None:
    people = [person(n) for n in range(1, 4)]
    google.partial[0] = [1]  # the second create of the first request is refused
    run = sync(tmp_path, plugins, cdp_http, people)
    assert run.status == "succeeded", run.error
    refused = google.ops("create")[1]
    google.calls.clear()
    assert sync(tmp_path, plugins, cdp_http, people).status == "succeeded"
    assert google.ops("create") == [refused]


def test_nobody_fed_fails_rather_than_empty_the_list(tmp_path, plugins, cdp_http, google) -> None:
    assert sync(tmp_path, plugins, cdp_http, [person(1)]).status == "succeeded"
    google.calls.clear()
    run = sync(tmp_path, plugins, cdp_http, [])
    assert run.status == "failed" and "allow_empty" in (run.error or "")
    assert google.calls == []
    assert sync(tmp_path, plugins, cdp_http, [], allow_empty=True).status == "succeeded"
    assert [list(op) for op in google.operations()] == [["remove"]]


def test_records_without_a_usable_identifier_are_quarantined(tmp_path, plugins, cdp_http, google) -> None:
    people = [person(1), {"id": "p2", "first_name": "Zoë"}]
    run = sync(tmp_path, plugins, cdp_http, people)
    assert run.status == "succeeded", run.error
    assert run.nodes["audience"].rejected == 1
    store = SystemStore(store_url_for(tmp_path))
    try:
        [row] = store.quarantine(graph="main", node="audience")
    finally:
        store.engine.dispose()
    assert row["record_key"] == "p2"
    assert row["reason"].startswith("no usable identifier for Google Customer Match: needs a valid email")


def test_consent_goes_into_the_job(tmp_path, plugins, cdp_http, google) -> None:
    run = sync(
        tmp_path, plugins, cdp_http, [person(1)], ad_user_data_consent="GRANTED", ad_personalization_consent="DENIED"
    )
    assert run.status == "succeeded", run.error
    metadata = google.calls[0][1]["job"]["customerMatchUserListMetadata"]
    assert metadata["consent"] == {"adUserData": "GRANTED", "adPersonalization": "DENIED"}


# -- chunks of at most 10,000 identifiers ------------------------------------------------------------


def test_add_operations_carry_at_most_10000_identifiers(tmp_path, plugins, cdp_http, google) -> None:
    people = [{"id": f"p{n}", "email": f"p{n}@example.com"} for n in range(10_001)]
    run = sync(tmp_path, plugins, cdp_http, people, page_size=5_000, identifiers=["email"])
    assert run.status == "succeeded", run.error
    sizes = [len(body["operations"]) for step, body in google.calls if step == "addOperations"]
    assert sizes == [10_000, 1]
    assert google.steps() == ["create", "addOperations", "addOperations", "run"]  # one job


def test_chunks_count_identifiers_not_people(tmp_path, plugins, cdp_http, google) -> None:
    people = [person(n) for n in range(1, 26)]  # two identifiers each
    run = sync(tmp_path, plugins, cdp_http, people, identifiers_per_request=20)
    assert run.status == "succeeded", run.error
    bodies = [body for step, body in google.calls if step == "addOperations"]
    counts = [sum(len(op["create"]["userIdentifiers"]) for op in body["operations"]) for body in bodies]
    assert counts == [20, 20, 10]


# -- auth, errors and retries --------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out(tmp_path, plugins, cdp_http, google) -> None:
    google.failures["addOperations"].append(
        httpx.Response(
            429, headers={"Retry-After": "11"}, json={"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}
        )
    )
    run = sync(tmp_path, plugins, cdp_http, [person(1)])
    assert run.status == "succeeded", run.error
    assert cdp_http.clock.sleeps == [11.0]
    assert google.steps() == ["create", "addOperations", "run"]


def test_a_5xx_then_success(tmp_path, plugins, cdp_http, google) -> None:
    google.failures["create"].append(httpx.Response(503, json={"error": {"code": 503, "status": "UNAVAILABLE"}}))
    run = sync(tmp_path, plugins, cdp_http, [person(1)])
    assert run.status == "succeeded", run.error
    assert len(cdp_http.clock.sleeps) == 1
    assert google.steps() == ["create", "addOperations", "run"]


def test_a_refused_refresh_token_is_an_auth_error_naming_the_connector(tmp_path, plugins, cdp_http, google) -> None:
    google.failures["token"].append(httpx.Response(400, json={"error": "invalid_grant"}))
    run = sync(tmp_path, plugins, cdp_http, [person(1)])
    assert run.status == "failed"
    error = run.error or ""
    assert error.startswith("AuthError: connector 'gads':")
    assert "invalid_grant" in error and "authorize the app again" in error
    for secret in ENV.values():
        assert secret not in error
    assert google.calls == []


def test_permission_denied_is_an_auth_error_with_a_hint(tmp_path, plugins, cdp_http, google) -> None:
    denied = {
        "error": {
            "code": 403,
            "message": "The caller does not have permission",
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
                    "errors": [
                        {
                            "errorCode": {"authorizationError": "USER_PERMISSION_DENIED"},
                            "message": "User doesn't have permission to access customer.",
                        }
                    ],
                    "requestId": "req-42",
                }
            ],
        }
    }
    google.failures["create"].append(httpx.Response(403, json=denied))
    run = sync(tmp_path, plugins, cdp_http, [person(1)])
    assert run.status == "failed"
    error = run.error or ""
    assert error.startswith("AuthError: connector 'gads': 403 Forbidden: Google Ads API create: PERMISSION_DENIED")
    assert "authorizationError USER_PERMISSION_DENIED" in error and "request id req-42" in error
    assert "login_customer_id" in error
    # Nothing was confirmed: the next run sends everyone.
    assert sync(tmp_path, plugins, cdp_http, [person(1)]).status == "succeeded"
    assert len(google.ops("create")) == 1


def test_an_expired_access_token_is_refreshed_once(tmp_path, plugins, cdp_http, google) -> None:
    google.failures["create"].append(httpx.Response(401, json={"error": {"code": 401, "status": "UNAUTHENTICATED"}}))
    run = sync(tmp_path, plugins, cdp_http, [person(1)])
    assert run.status == "succeeded", run.error
    assert google.tokens_issued == 2


def test_a_failing_run_call_confirms_nothing(tmp_path, plugins, cdp_http, google) -> None:
    google.failures["run"].extend([httpx.Response(500)] * 5)
    run = sync(tmp_path, plugins, cdp_http, [person(1), person(2)])
    assert run.status == "failed" and "ServerError: connector 'gads'" in (run.error or "")
    google.calls.clear()
    assert sync(tmp_path, plugins, cdp_http, [person(1), person(2)]).status == "succeeded"
    assert len(google.ops("create")) == 2


def test_an_unexpected_job_answer_is_a_clear_error(tmp_path, plugins, cdp_http, google) -> None:
    google.failures["create"].append(httpx.Response(200, json={"name": "something else"}))
    run = sync(tmp_path, plugins, cdp_http, [person(1)])
    assert run.status == "failed"
    assert "ResponseError: connector 'gads': the response does not match CreatedJob: resourceName" in (run.error or "")


# -- the intended graph: profile store -> filter -> user list -----------------------------------------


def test_profiles_all_through_a_filter_into_the_list(tmp_path, plugins, cdp_http, google) -> None:
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
{gads_toml()}
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
destination = "gads"
inputs = ["promoters"]
"""

    people = [{**KNOWN, "nps_category": "promoter"}, {**person(2), "nps_category": "detractor"}]
    assert run_graph(tmp_path, toml(people), plugins, "ingest", env=ENV).status == "succeeded"
    run = run_graph(tmp_path, toml(people), plugins, "promoters", services={"http": cdp_http}, env=ENV)
    assert run.status == "succeeded", run.error
    [identifiers] = google.ops("create")
    assert identifiers[0] == {"hashedEmail": sha("john.doe@example.com")}
    assert identifiers[1] == {"hashedPhoneNumber": sha("+491711234567")}
    assert identifiers[2]["addressInfo"]["hashedFirstName"] == sha("zoë")
    assert JOB in str(google.requests[-1].url)
