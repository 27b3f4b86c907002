"""The Mailchimp destination against a mocked Marketing API: conformance, 500-member batches, refused members."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx
from cdp_core import Destination, ForgetState, ForgetSubject, Record, RecordKind
from cdp_core.http import AuthError, HttpFactory
from cdp_core.store import Checkpoint, SystemStore
from cdp_core.testing import (
    Collector,
    DestinationConformance,
    ForgetConformance,
    kit_plugin,
    make_context,
    make_records,
    run_graph,
    to_toml,
)
from fake_mailchimp import BASE, KEY, LIST_ID, FakeMailchimp, member_id, problem

import cdp_mailchimp

CONFIG = {"api_key": KEY, "list_id": LIST_ID}
OPTIONS = {"status_if_new": "subscribed"}


def profile(key: str, email: str | None, **data: Any) -> Record:
    return Record(
        stream="store.profiles",
        kind=RecordKind.profile,
        key=key,
        data=data,
        identifiers={"email": email} if email else {},
    )


def build(tmp_path: Path, http: HttpFactory, **options: Any) -> cdp_mailchimp.MailchimpDestination:
    config = cdp_mailchimp.MailchimpConfig.model_validate(CONFIG)
    opts = cdp_mailchimp.MailchimpWriteOptions.model_validate({**OPTIONS, **options})
    return cdp_mailchimp.MailchimpDestination(
        config, make_context(tmp_path, "newsletter", services={"http": http}), opts
    )


def write(destination: Destination, batch: list[Record]) -> Checkpoint:
    checkpoint = Checkpoint("g", "run-1", {"g.src": {"position": 1}})
    checkpoint.node = "g.newsletter"
    destination.open()
    try:
        destination.write(batch, checkpoint)
    finally:
        destination.close()
    return checkpoint


# -- the conformance suite -----------------------------------------------------------------------


class TestMailchimpDestination(DestinationConformance, ForgetConformance):
    plugin = cdp_mailchimp
    type_name = "mailchimp"
    config: ClassVar[dict[str, Any]] = CONFIG
    options: ClassVar[dict[str, Any]] = OPTIONS
    sample_records: ClassVar[list[Record]] = make_records(3)
    forget_subject = ForgetSubject(identifiers={"email": ["ana@example.com"], "phone": ["+491711234567"]})

    @pytest.fixture(autouse=True)
    def _api(self, cdp_respx: respx.Router) -> None:
        self.api = FakeMailchimp().install(cdp_respx)

    def mock_forget(self, router: respx.Router, failure: httpx.Response | Exception | None) -> None:
        route = router.post(f"{BASE}/lists/{LIST_ID}/members/{member_id('ana@example.com')}/actions/delete-permanent")
        if isinstance(failure, Exception):
            route.mock(side_effect=failure)
        else:
            route.mock(return_value=failure or httpx.Response(204))

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str]:
        """The records whose email is now a member of the audience (one member per email: upsert)."""
        by_email = {r.identifiers["email"]: r.key for r in self.sample_records}
        return [by_email[m["email_address"]] for m in self.api.members.values() if m["email_address"] in by_email]


# -- what is sent ---------------------------------------------------------------------------------


def test_upserts_members_with_merge_fields_and_tags(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    api = FakeMailchimp().install(cdp_respx)
    checkpoint = write(
        build(tmp_path, cdp_http, status_if_new="pending"),
        [
            profile(
                "p1", "anna@example.com", first_name="Anna", last_name="", tags=["vip", "nps:promoter"], city="Köln"
            ),
            profile("p2", "ben@example.com", last_name="Brandt", tags="newsletter, 2024"),
        ],
    )
    assert not checkpoint.rejected and not checkpoint.committed
    (body,) = api.batches
    assert body == {
        "members": [
            {"email_address": "anna@example.com", "status_if_new": "pending", "merge_fields": {"FNAME": "Anna"},
             "tags": ["vip", "nps:promoter"]},
            {"email_address": "ben@example.com", "status_if_new": "pending", "merge_fields": {"LNAME": "Brandt"},
             "tags": ["newsletter", "2024"]},
        ],
        "update_existing": True,
    }  # fmt: skip
    assert "status" not in body["members"][0]  # an existing member's status is never changed
    assert api.members[member_id("anna@example.com")]["status"] == "pending"


def test_an_unsubscribed_member_stays_unsubscribed(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    api = FakeMailchimp().install(cdp_respx)
    api.add("cara@example.com", "2024-05-01T10:00:00+00:00", "unsubscribed", {"FNAME": "C"}, ["old"])
    write(build(tmp_path, cdp_http), [profile("p3", "cara@example.com", first_name="Cara", tags=["new"])])
    member = api.members[member_id("cara@example.com")]
    assert member["status"] == "unsubscribed" and member["merge_fields"]["FNAME"] == "Cara"
    assert [t["name"] for t in member["tags"]] == ["old", "new"]  # tags are added, not replaced


def test_sync_tags_replaces_the_tags(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeMailchimp().install(cdp_respx)
    api.add("cara@example.com", "2024-05-01T10:00:00+00:00", "subscribed", {}, ["old"])
    write(build(tmp_path, cdp_http, sync_tags=True), [profile("p3", "cara@example.com", tags=["new"])])
    assert api.batches[0]["sync_tags"] is True
    assert [t["name"] for t in api.members[member_id("cara@example.com")]["tags"]] == ["new"]


def test_merge_field_mapping_is_an_option(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeMailchimp().install(cdp_respx)
    options = {"merge_fields": {"first_name": "FNAME", "nps_score": "NPS"}, "tags_field": "", "email_field": "mail"}
    write(
        build(tmp_path, cdp_http, **options),
        [profile("p1", None, mail=" x@example.com ", first_name="X", nps_score=9, tags=["t"])],
    )
    assert api.batches[0]["members"] == [
        {"email_address": "x@example.com", "status_if_new": "subscribed", "merge_fields": {"FNAME": "X", "NPS": 9}}
    ]


def test_one_member_per_email_in_a_batch(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeMailchimp().install(cdp_respx)
    write(
        build(tmp_path, cdp_http),
        [profile("a", "x@example.com", first_name="Old"), profile("b", "X@example.com", first_name="New")],
    )
    assert [m["merge_fields"]["FNAME"] for m in api.batches[0]["members"]] == ["New"]


# -- batches of 500 and refused members ------------------------------------------------------


def test_batches_are_split_at_500(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeMailchimp().install(cdp_respx)
    records = [profile(str(n), f"person{n}@example.com", first_name=f"P{n}") for n in range(1201)]
    checkpoint = write(build(tmp_path, cdp_http), records)
    assert [len(b["members"]) for b in api.batches] == [500, 500, 201]
    assert len(api.members) == 1201 and not checkpoint.rejected


def test_batch_size_option(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeMailchimp().install(cdp_respx)
    write(build(tmp_path, cdp_http, batch_size=2), [profile(str(n), f"p{n}@example.com") for n in range(5)])
    assert [len(b["members"]) for b in api.batches] == [2, 2, 1]
    with pytest.raises(ValueError):
        cdp_mailchimp.MailchimpWriteOptions.model_validate({**OPTIONS, "batch_size": 501})


def test_members_refused_in_a_200_answer_are_quarantined(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    api = FakeMailchimp().install(cdp_respx)
    batch = [
        profile("ok1", "anna@example.com", first_name="Anna"),
        profile("bad", "not-an-email", first_name="Bad"),
        profile("ok2", "ben@example.com"),
        profile("none", None, first_name="No Email"),
    ]
    checkpoint = write(build(tmp_path, cdp_http), batch)
    rejected = {r.key: r.reason for _node, r in checkpoint.rejected}
    assert set(rejected) == {"bad", "none"}
    assert rejected["bad"] == (
        "mailchimp refused the member (ERROR_GENERIC): not-an-email looks fake or invalid, please enter a real email "
        "address.; field email_address: Invalid email"
    )
    assert "no email address" in rejected["none"]
    assert all(node == "g.newsletter" for node, _ in checkpoint.rejected)
    assert {m["email_address"] for m in api.members.values()} == {"anna@example.com", "ben@example.com"}
    assert [m["email_address"] for m in api.batches[0]["members"]] == [
        "anna@example.com",
        "not-an-email",
        "ben@example.com",
    ]
    # the quarantined record keeps its payload, to be fixed and replayed
    (bad,) = [r for _n, r in checkpoint.rejected if r.key == "bad"]
    assert bad.raw["data"] == {"first_name": "Bad"}


def test_refusals_in_every_batch_are_quarantined(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    FakeMailchimp().install(cdp_respx)
    records = [
        profile(str(n), f"person{n}@example.com" if n % 300 else f"broken{n}@", first_name="x") for n in range(1000)
    ]
    checkpoint = write(build(tmp_path, cdp_http), records)
    assert sorted(r.key for _n, r in checkpoint.rejected) == ["0", "300", "600", "900"]


# -- what the HTTP layer does for the destination --------------------------------------------------


def test_a_failing_batch_is_retried(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakeMailchimp()
    route = cdp_respx.post(f"{BASE}/lists/{LIST_ID}").mock(
        side_effect=[httpx.Response(503), httpx.Response(429, headers={"Retry-After": "3"}), api.batch]
    )
    write(build(tmp_path, cdp_http), [profile("p1", "anna@example.com")])
    assert route.call_count == 3 and len(api.members) == 1
    assert 3.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_auth_failure_names_the_connector(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    FakeMailchimp(key="ffffffffffffffffffffffffffffffff-us21").install(cdp_respx)
    with pytest.raises(AuthError) as info:
        write(build(tmp_path, cdp_http), [profile("p1", "anna@example.com")])
    assert "connector 'newsletter'" in str(info.value) and KEY not in str(info.value)


def test_only_profiles_are_accepted() -> None:
    assert cdp_mailchimp.MailchimpDestination.accepts == frozenset({RecordKind.profile})


def test_status_if_new_must_be_chosen() -> None:
    with pytest.raises(ValueError, match="status_if_new"):
        cdp_mailchimp.MailchimpWriteOptions.model_validate({})


# -- in a sync graph, through the runner ---------------------------------------------------------


def test_graph_quarantines_refused_members(
    register_plugin: Any, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    api = FakeMailchimp().install(cdp_respx)
    plugins = register_plugin(cdp_mailchimp, extra=[kit_plugin])
    rows = [{"id": "1", "email": "anna@example.com", "first_name": "Anna"}, {"id": "2", "email": "nope"}]
    run = run_graph(
        tmp_path,
        f"""
[connectors.people]
type = "list_source"
streams = {to_toml({"profiles": {"records": rows, "identifiers": {"email": "email"}}})}

[connectors.newsletter]
type = "mailchimp"
api_key = "${{MAILCHIMP_API_KEY}}"
list_id = "{LIST_ID}"

[syncs.main.nodes.people]
source = "people.profiles"

[syncs.main.nodes.newsletter]
destination = "newsletter"
inputs = ["people"]
options = {{ status_if_new = "transactional" }}
""",
        plugins,
        collector=Collector(),
        services={"http": cdp_http},
        env={"MAILCHIMP_API_KEY": KEY},
    )
    assert run.status == "succeeded", run.error
    assert run.nodes["newsletter"].rejected == 1
    assert [m["status"] for m in api.members.values()] == ["transactional"]
    system = SystemStore(f"sqlite:///{tmp_path / 'store.sqlite'}")
    try:
        assert system.quarantine_count("main") == 1
    finally:
        system.engine.dispose()
    assert json.dumps(api.batches).count("anna@example.com") == 1


# -- forget: Mailchimp's permanent delete -----------------------------------------------------------


def forgetter(tmp_path: Path, http: HttpFactory) -> cdp_mailchimp.MailchimpDestination:
    config = cdp_mailchimp.MailchimpConfig.model_validate(CONFIG)
    return cdp_mailchimp.MailchimpDestination(config, make_context(tmp_path, "newsletter", services={"http": http}))


def delete_permanent(email: str) -> str:
    return f"{BASE}/lists/{LIST_ID}/members/{member_id(email)}/actions/delete-permanent"


def test_forget_deletes_each_email_permanently(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    anna = cdp_respx.post(delete_permanent("anna@example.com")).mock(return_value=httpx.Response(204))
    work = cdp_respx.post(delete_permanent("anna@work.example")).mock(
        return_value=problem(404, "Resource Not Found", "The requested resource could not be found.")
    )
    subject = ForgetSubject(identifiers={"email": ["Anna@Example.com", "anna@work.example"]})
    result = forgetter(tmp_path, cdp_http).forget(subject)
    assert result.state is ForgetState.done, result
    assert anna.call_count == 1 and work.call_count == 1
    request = anna.calls[0].request
    assert request.content == b"" and request.headers["Authorization"].startswith("Basic ")
    assert "404" in result.answer and "anna" not in result.answer.lower()


def test_forget_retried_then_done(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    route = cdp_respx.post(delete_permanent("anna@example.com")).mock(
        side_effect=[problem(503, "Service Unavailable", "try again"), httpx.Response(204)]
    )
    subject = ForgetSubject(identifiers={"email": ["anna@example.com"]})
    first = forgetter(tmp_path, cdp_http).forget(subject)
    assert first.state is ForgetState.retry and first.answer.startswith("Mailchimp 503")
    assert forgetter(tmp_path, cdp_http).forget(subject).state is ForgetState.done
    assert route.call_count == 2 and not cdp_http.clock.sleeps


def test_forget_refused_for_good(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.post(delete_permanent("anna@example.com")).mock(
        return_value=problem(403, "Forbidden", "This API key may not delete members of anna@example.com's audience")
    )
    result = forgetter(tmp_path, cdp_http).forget(ForgetSubject(identifiers={"email": ["anna@example.com"]}))
    assert result.state is ForgetState.failed
    assert result.answer.startswith("Mailchimp 403 Forbidden: Forbidden: This API key may not delete")
    assert "anna@" not in result.answer and KEY not in result.answer
