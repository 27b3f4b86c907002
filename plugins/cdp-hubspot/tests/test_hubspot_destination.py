"""The HubSpot write-back against a fake of HubSpot's batch update (hubspot_fake.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx
from cdp_core import Destination, ForgetState, ForgetSubject, Record, RecordKind
from cdp_core.http import AuthError, ClientError, HttpFactory
from cdp_core.store import Checkpoint
from cdp_core.testing import DestinationConformance, ForgetConformance, make_context
from hubspot_fake import BASE, TOKEN, FakeHubSpot, contact

import cdp_hubspot
from cdp_hubspot import HubSpotConfig, HubSpotDestination, WriteBackOptions, property_value

BATCH = f"{BASE}/crm/v3/objects/contacts/batch/update"
GDPR = f"{BASE}/crm/v3/objects/contacts/gdpr-delete"
NPS = {"nps_score": "nps_score", "nps_category": "nps_category"}


def person(key: str, contact_id: str | None, score: Any = None, category: Any = None, **data: Any) -> Record:
    identifiers = {"email": f"{key}@example.com"}
    if contact_id is not None:
        identifiers["hubspot_contact_id"] = contact_id
    values = {"profile_id": f"p-{key}", **data}
    if score is not None:
        values["nps_score"] = score
    if category is not None:
        values["nps_category"] = category
    return Record(stream="store.profiles", kind=RecordKind.profile, key=key, data=values, identifiers=identifiers)


SAMPLES = [
    person("p1", "1", 9, "promoter"),
    person("p2", "2", 3.0, "detractor"),
    person("p3", "3", 7, "passive"),
    person("p4", None, 10, "promoter"),  # no HubSpot id: quarantined
    person("p5", "999", 8, "passive"),  # unknown to HubSpot: 207, quarantined
]


class TestWriteBack(DestinationConformance, ForgetConformance):
    """The core's contract of a destination; HubSpot holds what the batch updates set; forget is its GDPR delete."""

    plugin = cdp_hubspot
    type_name = "hubspot"
    config: ClassVar[dict[str, Any]] = {"access_token": TOKEN}
    options: ClassVar[dict[str, Any]] = {"properties": NPS}
    sample_records: ClassVar[list[Record]] = SAMPLES
    forget_subject = ForgetSubject(identifiers={"email": ["ana@example.com"], "hubspot_contact_id": ["101"]})

    @pytest.fixture(autouse=True)
    def _hubspot(self, cdp_respx: respx.Router) -> Iterator[None]:
        self.fake = FakeHubSpot().install(cdp_respx)
        self.fake.objects["contacts"] = [contact(n, minutes=n) for n in (1, 2, 3)]
        yield

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str]:
        by_contact = {r.identifiers.get("hubspot_contact_id"): r.key for r in SAMPLES}
        return [by_contact[c] for c in self.fake.updated]

    def mock_forget(self, router: respx.Router, failure: httpx.Response | Exception | None) -> None:
        route = router.post(GDPR)
        if isinstance(failure, Exception):
            route.mock(side_effect=failure)
        else:
            route.mock(return_value=failure or httpx.Response(204))


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def fake(cdp_respx: respx.Router) -> FakeHubSpot:
    hub = FakeHubSpot().install(cdp_respx)
    hub.objects["contacts"] = [contact(n, minutes=0) for n in range(1, 301)]
    return hub


def build(
    tmp_path: Path, http: HttpFactory, config: dict[str, Any] | None = None, **options: Any
) -> HubSpotDestination:
    cfg = HubSpotConfig.model_validate({"access_token": TOKEN, **(config or {})})
    opts = WriteBackOptions.model_validate({"properties": NPS, **options})
    return HubSpotDestination(cfg, make_context(tmp_path, "crm", services={"http": http.for_connector("crm")}), opts)


def write(destination: HubSpotDestination, batch: list[Record]) -> Checkpoint:
    checkpoint = Checkpoint("writeback", "run-1")
    checkpoint.node = "hubspot"
    destination.open()
    try:
        destination.write(batch, checkpoint)
    finally:
        destination.close()
    return checkpoint


def rejected(checkpoint: Checkpoint) -> dict[str, str]:
    return {str(r.key): r.reason for _, r in checkpoint.rejected}


# -- batches ------------------------------------------------------------------------------------


def test_batches_of_at_most_100(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    batch = [person(f"k{n}", str(n), n % 11, "passive") for n in range(1, 251)]
    checkpoint = write(build(tmp_path, cdp_http), batch)
    assert [len(b) for b in fake.batches] == [100, 100, 50]
    assert not checkpoint.rejected and len(fake.updated) == 250
    assert fake.batches[0][0] == {"id": "1", "properties": {"nps_score": "1", "nps_category": "passive"}}


def test_smaller_batches_by_option(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    batch = [person(f"k{n}", str(n), 5) for n in range(1, 11)]
    write(build(tmp_path, cdp_http, batch_size=4), batch)
    assert [len(b) for b in fake.batches] == [4, 4, 2]
    with pytest.raises(ValueError, match="batch_size"):
        WriteBackOptions.model_validate({"properties": NPS, "batch_size": 101})


def test_partial_errors_are_quarantined(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """207 multi-status: HubSpot updates what it can and names the rest in errors[].context.ids."""
    batch = [person("a", "1", 9), person("b", "4040", 6), person("c", "2", 10), person("d", "5050", 0)]
    destination = build(tmp_path, cdp_http)
    checkpoint = write(destination, batch)
    assert set(fake.updated) == {"1", "2"} and destination.updated == 2
    reasons = rejected(checkpoint)
    assert set(reasons) == {"b", "d"}
    assert reasons["b"].startswith("HubSpot refused the update of contact 4040: 207 OBJECT_NOT_FOUND: Could not get")
    assert all(node == "hubspot" for node, _ in checkpoint.rejected)
    assert checkpoint.rejected[0][1].raw["identifiers"]["hubspot_contact_id"] == "4040"  # the record, kept whole


def test_207_without_attributable_errors_never_counts_as_written(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    answer = {"status": "COMPLETE", "results": [{"id": "1", "properties": {}}], "numErrors": 0, "errors": []}
    cdp_respx.post(BATCH).respond(207, json=answer)
    checkpoint = write(build(tmp_path, cdp_http), [person("a", "1", 9), person("b", "2", 9)])
    assert list(rejected(checkpoint)) == ["b"]
    assert "did not confirm the update of contact 2" in rejected(checkpoint)["b"]


def test_a_refused_value_is_found_by_splitting_the_batch(
    fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """HubSpot answers 400 for a whole batch when one value is invalid: the others are still written."""
    batch = [person(f"k{n}", str(n), 8, "passive") for n in range(1, 11)]
    batch[6] = person("k7", "7", 8, "superfan")
    checkpoint = write(build(tmp_path, cdp_http), batch)
    assert sorted(fake.updated, key=int) == [str(n) for n in range(1, 11) if n != 7]
    reasons = rejected(checkpoint)
    assert list(reasons) == ["k7"]
    assert reasons["k7"].startswith("HubSpot refused the update of contact 7: 400 VALIDATION_ERROR:")
    assert "INVALID_OPTION" in reasons["k7"]
    assert [len(b) for b in fake.batches] == [
        10,
        5,
        5,
        2,
        1,
        1,
        3,
    ]  # 10: 400; 1-5 ok; 6-10: 400; 6-7: 400; 6; 7: 400; 8-10


def test_a_missing_property_fails_the_run(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """Every record would fail alike: that is a config error, not a quarantine of everything."""
    destination = build(tmp_path, cdp_http, properties={"nps_scroe": "nps_score"})
    with pytest.raises(ClientError) as info:
        write(destination, [person(f"k{n}", str(n), 9) for n in range(1, 5)])
    message = str(info.value)
    assert "connector 'crm'" in message and "PROPERTY_DOESNT_EXIST" in message and "nps_scroe" in message
    assert len(fake.batches) == 1


def test_records_without_a_contact_id_are_quarantined(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    batch = [person("a", None, 9), person("b", " 12x", 9), person("c", "3", 9)]
    checkpoint = write(build(tmp_path, cdp_http), batch)
    reasons = rejected(checkpoint)
    assert reasons["a"] == "no hubspot_contact_id identifier: the HubSpot write-back updates known contacts only"
    assert reasons["b"] == "hubspot_contact_id '12x' is not a HubSpot record id (digits only)"
    assert list(fake.updated) == ["3"]


def test_the_id_identifier_is_an_option(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    record = Record(stream="s", key="x", data={"nps_score": 4}, identifiers={"crm_id": "5"})
    write(build(tmp_path, cdp_http, id_identifier="crm_id"), [record])
    assert fake.updated == {"5": {"nps_score": "4"}}


def test_one_contact_twice_in_a_batch_is_one_input(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    batch = [person("old", "1", 3, "detractor"), person("other", "2", 9), person("new", "1", 10, city="Berlin")]
    destination = build(tmp_path, cdp_http, properties={**NPS, "city": "city"})
    checkpoint = write(destination, batch)
    assert not checkpoint.rejected
    assert fake.batches == [[
        {"id": "1", "properties": {"nps_score": "10", "nps_category": "detractor", "city": "Berlin"}},
        {"id": "2", "properties": {"nps_score": "9"}},
    ]]  # fmt: skip


def test_records_with_nothing_to_write_send_nothing(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    checkpoint = write(build(tmp_path, cdp_http), [person("a", "1"), person("b", "2", nps_score=None)])
    assert fake.batches == [] and not checkpoint.rejected


def test_fields_from_nested_data_and_identifiers(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    record = person("a", "1", survey={"nps": 6}, tags=["vip", "beta"])
    options = {"properties": {"nps_score": "survey.nps", "firstname": "identifiers.email", "city": "tags"}}
    write(build(tmp_path, cdp_http, **options), [record])
    assert fake.updated["1"] == {"nps_score": "6", "firstname": "a@example.com", "city": "vip;beta"}


def test_a_value_without_property_form_is_quarantined(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    checkpoint = write(build(tmp_path, cdp_http), [person("a", "1", {"value": 9}), person("b", "2", 9)])
    assert rejected(checkpoint) == {
        "a": "cannot write to HubSpot: nps_score -> nps_score: a dict has no HubSpot property form"
    }
    assert list(fake.updated) == ["2"]


def test_property_values_are_text() -> None:
    assert property_value(9) == "9" and property_value(9.0) == "9" and property_value(7.5) == "7.5"
    assert property_value(True) == "true" and property_value(False) == "false"
    assert property_value(Decimal("10.00")) == "10" and property_value(Decimal("9.5")) == "9.5"
    assert property_value(date(2024, 5, 1)) == "2024-05-01"
    assert property_value(["a", None, "b"]) == "a;b" and property_value("promoter") == "promoter"
    with pytest.raises(ValueError):
        property_value(float("nan"))


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        WriteBackOptions.model_validate({"properties": {}})
    with pytest.raises(ValueError):
        WriteBackOptions.model_validate({"properties": {"nps_score": "identifiers."}})
    with pytest.raises(ValueError):
        WriteBackOptions.model_validate({"properties": NPS, "typo": 1})


# -- the HTTP layer's part ------------------------------------------------------------------------


def test_rate_limited_then_ok(
    fake: FakeHubSpot, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    limited = httpx.Response(429, headers={"Retry-After": "3"}, json={"status": "error", "category": "RATE_LIMITS"})
    cdp_respx.post(BATCH).mock(side_effect=[limited, fake.batch_update])
    checkpoint = write(build(tmp_path, cdp_http), [person("a", "1", 9)])
    assert not checkpoint.rejected and fake.updated == {"1": {"nps_score": "9"}}
    assert 3.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_server_error_and_timeout_then_ok(
    fake: FakeHubSpot, cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    cdp_respx.post(BATCH).mock(side_effect=[httpx.Response(500), httpx.ReadTimeout("slow"), fake.batch_update])
    checkpoint = write(build(tmp_path, cdp_http), [person("a", "1", 9)])
    assert not checkpoint.rejected and list(fake.updated) == ["1"]


def test_auth_failure_names_the_connector(fake: FakeHubSpot, cdp_http: HttpFactory, tmp_path: Path) -> None:
    destination = build(tmp_path, cdp_http, config={"access_token": "pat-expired"})
    with pytest.raises(AuthError) as info:
        write(destination, [person("a", "1", 9)])
    assert "connector 'crm'" in str(info.value) and "credentials" in str(info.value)
    assert "pat-expired" not in str(info.value)


def test_rate_headers_hold_the_connector(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """Other apps spend the same budget: HubSpot's Remaining header near 0 holds the next request."""
    hub = FakeHubSpot()
    hub.objects["contacts"] = [contact(n, minutes=0) for n in (1, 2)]

    def nearly_spent(request: httpx.Request) -> httpx.Response:
        answer = hub.batch_update(request)
        answer.headers.update(
            {"X-HubSpot-RateLimit-Remaining": "1", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
        )
        return answer

    cdp_respx.post(BATCH).mock(side_effect=nearly_spent)
    write(build(tmp_path, cdp_http, batch_size=1), [person("a", "1", 9), person("b", "2", 9)])
    assert len(hub.batches) == 2
    assert any(abs(s - 10.0) < 0.01 for s in cdp_http.clock.sleeps)  # type: ignore[attr-defined]
    limiter = cdp_http.limiter("crm")
    assert limiter.rate is not None and (limiter.rate.requests, limiter.rate.per) == (190, 10.0)


# -- forget: HubSpot's GDPR delete -----------------------------------------------------------


def forgetter(tmp_path: Path, http: HttpFactory) -> HubSpotDestination:
    context = make_context(tmp_path, "crm", services={"http": http.for_connector("crm")})
    return HubSpotDestination(HubSpotConfig.model_validate({"access_token": TOKEN}), context)


def test_forget_by_contact_id_in_hubspots_shape(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    route = cdp_respx.post(GDPR).mock(side_effect=[httpx.Response(204), httpx.Response(404, json={"message": "x"})])
    subject = ForgetSubject(identifiers={"email": ["ana@example.com"], "hubspot_contact_id": ["101", "102"]})
    result = forgetter(tmp_path, cdp_http).forget(subject)
    assert result.state is ForgetState.done
    assert [json.loads(c.request.content) for c in route.calls] == [{"objectId": "101"}, {"objectId": "102"}]
    assert route.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "404" in result.answer and "ana@" not in result.answer


def test_forget_by_email_without_a_contact_id(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    route = cdp_respx.post(GDPR).mock(return_value=httpx.Response(204))
    subject = ForgetSubject(identifiers={"email": ["ana@example.com", "ana@work.example"], "phone": ["+4917112345"]})
    assert forgetter(tmp_path, cdp_http).forget(subject).state is ForgetState.done
    assert [json.loads(c.request.content) for c in route.calls] == [
        {"objectId": "ana@example.com", "idProperty": "email"},
        {"objectId": "ana@work.example", "idProperty": "email"},
    ]


def test_forget_retried_then_done(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """A 429 is one attempt (no sleeping in the call): retry with HubSpot's Retry-After; the next attempt erases."""
    route = cdp_respx.post(GDPR).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "10"}, json={"message": "rate"}), httpx.Response(204)]
    )
    subject = ForgetSubject(identifiers={"hubspot_contact_id": ["101"]})
    first = forgetter(tmp_path, cdp_http).forget(subject)
    assert (first.state, first.retry_after) == (ForgetState.retry, 10)
    assert not cdp_http.clock.sleeps
    assert forgetter(tmp_path, cdp_http).forget(subject).state is ForgetState.done
    assert route.call_count == 2


def test_forget_refused_for_good(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    body = {
        "status": "error",
        "category": "MISSING_SCOPES",
        "message": "This app hasn't been granted all required scopes",
    }
    cdp_respx.post(GDPR).mock(return_value=httpx.Response(403, json=body))
    result = forgetter(tmp_path, cdp_http).forget(ForgetSubject(identifiers={"hubspot_contact_id": ["101"]}))
    assert result.state is ForgetState.failed
    assert result.answer.startswith("HubSpot 403") and "required scopes" in result.answer
    assert TOKEN not in result.answer
