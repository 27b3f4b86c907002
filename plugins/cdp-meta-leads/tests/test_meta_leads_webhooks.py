"""Meta lead ads webhooks: the subscription handshake, X-Hub-Signature-256, what is logged, and each lead read later
(once per run, however many webhook streams the run reads)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from cdp_core import Record
from cdp_core.http import AuthError, HttpFactory
from cdp_core.ingest import IngestEntry, append
from cdp_core.plugins import Plugins, load_plugins
from cdp_core.runinfo import RunInfo
from cdp_core.store import SystemStore
from cdp_core.testing import Collector, RegisterPlugin, kit_plugin, make_context, run_graph
from cdp_core.webhooks import EntryRejected, WebhookPayloadError
from meta_fake import (
    APP_SECRET,
    FORM_A,
    FORM_B,
    TOKEN,
    FakeLead,
    FakeLeads,
    event,
    graph_error,
    lead,
    leads_url,
    raw,
    route,
    sign,
)

import cdp_meta_leads
from cdp_meta_leads import MetaLeadsConfig, MetaLeadsSource, MetaLeadsWebhook, fetch_lead, leadgen_records
from cdp_meta_leads.mapping import lead_event, lead_profile
from cdp_meta_leads.webhooks import WebhookLeadsStream

VERIFY_TOKEN = "my-verify-token-4242"
AT = datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC)
LEAD = lead(7, "2024-05-01T09:59:58+0000")
LEAD_ID = LEAD["id"]


def config(**options: Any) -> MetaLeadsConfig:
    return MetaLeadsConfig.model_validate(
        {"access_token": TOKEN, "form_ids": [FORM_A], "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, **options}
    )


def webhook(**options: Any) -> MetaLeadsWebhook:
    return MetaLeadsWebhook(config(**options), make_context(Path("."), "meta"))


def source(tmp_path: Path, http: HttpFactory, **options: Any) -> MetaLeadsSource:
    return MetaLeadsSource(config(**options), make_context(tmp_path, "meta", services={"http": http}))


def logged(lead_id: str = LEAD_ID, form_id: str = FORM_A) -> IngestEntry:
    body = raw(event((lead_id, form_id)))
    [entry] = webhook().entries({"X-Hub-Signature-256": sign(body)}, body, AT)
    return entry


def test_the_plugin_registers_its_webhook() -> None:
    assert load_plugins().webhooks["meta_leads"] is MetaLeadsWebhook


# -- the subscription handshake ---------------------------------------------------------------------


def test_the_handshake_answers_the_challenge() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    assert webhook().handshake(query) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong-token", "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN[:-1], "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {},
    ],
)
def test_a_bad_handshake_is_refused(query: dict[str, str]) -> None:
    assert webhook().handshake(query) is None


def test_without_a_verify_token_no_handshake_passes() -> None:
    hook = webhook(verify_token=None)
    assert hook.handshake({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}) is None
    assert hook.unavailable() == "[connectors.meta] sets no verify_token"
    assert webhook(app_secret=None, verify_token=None).unavailable() == (
        "[connectors.meta] sets no app_secret and no verify_token"
    )
    assert webhook().unavailable() is None


def test_the_verify_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    webhook().handshake({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert compared == [(b"guess", VERIFY_TOKEN.encode())]


# -- the signature ----------------------------------------------------------------------------------


def test_a_good_signature_verifies() -> None:
    body = raw(event((LEAD_ID, FORM_A)))
    assert webhook().verify({"X-Hub-Signature-256": sign(body)}, body)
    assert webhook().verify({"x-hub-signature-256": sign(body)}, body)


@pytest.mark.parametrize(
    "signature",
    [
        sign(raw(event((LEAD_ID, FORM_A))), "another-app-secret"),
        sign(raw(event((LEAD_ID, FORM_A)))).removeprefix("sha256="),  # no algorithm prefix
        "sha1=" + sign(raw(event((LEAD_ID, FORM_A)))).removeprefix("sha256="),  # X-Hub-Signature's algorithm
        "sha256=",
        "",
    ],
)
def test_a_bad_signature_does_not_verify(signature: str) -> None:
    body = raw(event((LEAD_ID, FORM_A)))
    assert not webhook().verify({"X-Hub-Signature-256": signature}, body)


def test_a_missing_signature_a_tampered_body_or_no_app_secret_do_not_verify() -> None:
    body = raw(event((LEAD_ID, FORM_A)))
    assert not webhook().verify({}, body)
    assert not webhook().verify({"X-Hub-Signature": sign(body)}, body)  # the SHA-1 header's name
    assert not webhook().verify({"X-Hub-Signature-256": sign(body)}, raw(event(("99999", FORM_A))))
    assert not webhook(app_secret=None).verify({"X-Hub-Signature-256": sign(body)}, body)


def test_the_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    body = raw(event((LEAD_ID, FORM_A)))
    assert webhook().verify({"X-Hub-Signature-256": sign(body)}, body)
    digest = sign(body).removeprefix("sha256=").encode()
    assert compared == [(digest, digest)]


# -- what is logged ---------------------------------------------------------------------------------


def test_each_leadgen_change_is_logged_under_its_leadgen_id() -> None:
    body = raw(event((LEAD_ID, FORM_A), ("b00001", FORM_B)))
    entries = webhook().entries({}, body, AT)
    assert [(e.source, e.message_id, e.kind, e.received_at) for e in entries] == [
        ("meta", LEAD_ID, "leadgen", AT),
        ("meta", "b00001", "leadgen", AT),
    ]
    assert entries[0].body == event((LEAD_ID, FORM_A))["entry"][0]["changes"][0]["value"]


def test_other_fields_and_objects_are_not_kept() -> None:
    feed = {"object": "page", "entry": [{"id": "1", "time": 1, "changes": [{"field": "feed", "value": {"item": "x"}}]}]}
    assert webhook().entries({}, raw(feed), AT) == []
    assert webhook().entries({}, raw({"object": "instagram", "entry": []}), AT) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"object": "page", "entry": {}}, "'entry' is not a list"),
        ({"object": "page", "entry": [{"id": "1"}]}, "entry[0].changes is not a list"),
        (
            {"object": "page", "entry": [{"changes": [{"field": "leadgen", "value": {"form_id": FORM_A}}]}]},
            "entry[0].changes[0].value has no leadgen_id",
        ),
    ],
)
def test_a_body_of_another_shape_is_a_payload_error(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=rf"meta leadgen webhook: {message}".replace("[", r"\[")) as caught:
        webhook().entries({}, raw(payload), AT)
    assert APP_SECRET not in str(caught.value) and VERIFY_TOKEN not in str(caught.value)


# -- each logged lead read with GET /{leadgen_id}: the pull streams' records ---------------------------


def test_a_logged_lead_gives_the_records_the_pull_streams_make(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    cdp_respx.get(leads_url(FORM_A)).mock(side_effect=FakeLeads(FORM_A, [LEAD]))
    fake = FakeLead(LEAD)
    route(cdp_respx, fake)
    src = source(tmp_path, cdp_http)
    for pull, live in (("leads", "webhook_leads"), ("submissions", "webhook_submissions")):
        pulled = [r for page in src.stream(pull).read(None) for r in page.records]
        pushed = src.stream(live).records(logged())
        assert pushed == pulled and [(r.stream, r.key) for r in pushed] == [(f"meta.{pull}", LEAD_ID)]
    assert dict(fake.requests[0].url.params) == {"fields": "id,created_time,field_data,ad_id,campaign_id"}
    assert fake.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert src.stream("webhook_leads").traits == src.stream("leads").traits


def test_the_lead_is_read_with_the_extra_fields_too(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake = FakeLead(LEAD)
    route(cdp_respx, fake)
    src = source(tmp_path, cdp_http, extra_fields=["ad_name", "platform"])
    [record] = leadgen_records(logged(), src.graph, src.config, lead_profile, "leads")
    assert record.data["ad_name"] == "Spring campaign ad" and record.data["platform"] == "fb"
    assert record.identifiers == {"meta_lead_id": LEAD_ID, "email": "lead7@example.com", "phone": "+491710000007"}


def test_a_5xx_is_retried_then_the_lead_is_read(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLead(LEAD)
    answers = iter([httpx.Response(503, json={"error": {"message": "Service unavailable", "code": 2}})])
    seen: list[httpx.Request] = []

    def flaky(request: httpx.Request, lead_id: str) -> httpx.Response:
        seen.append(request)
        return next(answers, None) or fake(request, lead_id)

    route(cdp_respx, flaky)
    src = source(tmp_path, cdp_http)
    [record] = leadgen_records(logged(), src.graph, src.config, lead_event, "submissions")
    assert len(seen) == 2 and record.key == LEAD_ID and record.data["event"] == "lead_form_submitted"


def test_a_lead_meta_no_longer_has_is_rejected_with_metas_reason(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    route(cdp_respx, FakeLead())
    src = source(tmp_path, cdp_http)
    with pytest.raises(
        EntryRejected, match=rf"meta leadgen {LEAD_ID}: .*code 100, subcode 33.*does not exist"
    ) as caught:
        src.stream("webhook_leads").records(logged())
    assert TOKEN not in str(caught.value) and APP_SECRET not in str(caught.value)


def test_a_token_error_stops_the_read(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    route(cdp_respx, FakeLead(LEAD))
    src = source(tmp_path, cdp_http, access_token="EAAexpired")
    with pytest.raises(AuthError) as caught:
        fetch_lead(src.graph, LEAD_ID, src.config.fields)
    assert "EAAexpired" not in str(caught.value)


def test_a_lead_of_another_form_is_skipped_without_a_call(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cdp.meta_leads")
    lead_route = route(cdp_respx, FakeLead(LEAD))
    src = source(tmp_path, cdp_http)
    assert src.stream("webhook_leads").records(logged(form_id=FORM_B)) == []
    assert not lead_route.called and f"is of form {FORM_B}, not in form_ids; skipped" in caplog.text


def test_a_lead_of_the_wrong_shape_is_rejected(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    route(cdp_respx, FakeLead(LEAD | {"created_time": "yesterday"}))
    src = source(tmp_path, cdp_http)
    with pytest.raises(
        EntryRejected, match=rf"meta leadgen {LEAD_ID}: GET /{LEAD_ID}: does not match Lead: created_time"
    ):
        src.stream("webhook_leads").records(logged())


# -- a run of both webhook streams fetches each logged lead once ---------------------------------------

LIVE = f"""
[connectors.meta]
type = "meta_leads"
access_token = "${{META_ACCESS_TOKEN}}"
form_ids = ["{FORM_A}"]

[connectors.out]
type = "collect"

[syncs.live.nodes.leads]
source = "meta.webhook_leads"

[syncs.live.nodes.submissions]
source = "meta.webhook_submissions"

[syncs.live.nodes.out]
destination = "out"
inputs = ["leads", "submissions"]

[syncs.events.nodes.submissions]
source = "meta.webhook_submissions"

[syncs.events.nodes.out]
destination = "out"
inputs = ["submissions"]
"""
LEADS = [lead(n, f"2024-05-01T09:59:{50 + n}+0000") for n in range(1, 6)]


def log_leads(store: SystemStore, *lead_ids: str) -> list[IngestEntry]:
    """The leadgen events of ``lead_ids`` (form A), logged as ``cdp serve`` logs them."""
    body = raw(event(*((lead_id, FORM_A) for lead_id in lead_ids)))
    entries = webhook().entries({}, body, AT)
    assert append(store.engine, entries).accepted == len(lead_ids)
    return entries


def run_live(tmp_path: Path, plugins: Plugins, http: HttpFactory, graph: str = "live") -> tuple[RunInfo, Collector]:
    collector = Collector()
    run = run_graph(
        tmp_path, LIVE, plugins, graph, collector=collector, services={"http": http}, env={"META_ACCESS_TOKEN": TOKEN}
    )
    return run, collector


def one_by_one(
    tmp_path: Path, http: HttpFactory, entries: list[IngestEntry], make: Callable[..., Record], pull: str
) -> list[Record]:
    """The records a stream made of ``entries`` when each stream fetched each lead itself."""
    src = source(tmp_path, http)
    try:
        return [r for entry in entries for r in leadgen_records(entry, src.graph, src.config, make, pull)]
    finally:
        src.close()


def fields(records: list[Record]) -> list[tuple[Any, ...]]:
    return [(r.stream, r.kind, r.key, r.data, r.identifiers, r.occurred_at) for r in records]


@pytest.fixture
def plugins(register_plugin: RegisterPlugin) -> Plugins:
    return register_plugin(cdp_meta_leads, extra=[kit_plugin])


@pytest.fixture
def five(cdp_respx: respx.Router, cdp_store: SystemStore) -> tuple[FakeLead, list[IngestEntry]]:
    """``LEADS`` logged, and Meta's lead endpoint that has them."""
    fake = FakeLead(*LEADS)
    route(cdp_respx, fake)
    return fake, log_leads(cdp_store, *(item["id"] for item in LEADS))


def test_a_run_of_both_streams_fetches_each_lead_once(
    five: tuple[FakeLead, list[IngestEntry]], cdp_http: HttpFactory, plugins: Plugins, tmp_path: Path
) -> None:
    fake, entries = five
    run, collector = run_live(tmp_path, plugins, cdp_http)
    assert run.status == "succeeded", run.error
    assert len(fake.requests) == len(LEADS), "GET /{leadgen_id} calls"
    assert sorted(r.url.path for r in fake.requests) == sorted(f"/v21.0/{item['id']}" for item in LEADS)
    # the records each stream made when it fetched every lead itself
    fake.requests.clear()
    expected = one_by_one(tmp_path, cdp_http, entries, lead_profile, "leads") + one_by_one(
        tmp_path, cdp_http, entries, lead_event, "submissions"
    )
    assert len(fake.requests) == 2 * len(LEADS)
    assert fields(collector.records("out")) == fields(expected)
    assert (run.nodes["leads"].records_out, run.nodes["submissions"].records_out) == (len(LEADS), len(LEADS))


def test_a_run_of_one_webhook_stream_fetches_and_delivers_each_lead(
    five: tuple[FakeLead, list[IngestEntry]], cdp_http: HttpFactory, plugins: Plugins, tmp_path: Path
) -> None:
    fake, entries = five
    run, collector = run_live(tmp_path, plugins, cdp_http, "events")
    assert run.status == "succeeded", run.error
    assert len(fake.requests) == len(LEADS)
    expected = one_by_one(tmp_path, cdp_http, entries, lead_event, "submissions")
    assert fields(collector.records("out")) == fields(expected)


def test_a_stream_that_stops_resumes_at_its_lead_the_other_still_reads_every_lead(
    cdp_respx: respx.Router,
    cdp_http: HttpFactory,
    cdp_store: SystemStore,
    plugins: Plugins,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pages of two logged leads, so that the stream that stops has a committed page behind it
    init = WebhookLeadsStream.__init__

    def small_pages(self: WebhookLeadsStream, src: MetaLeadsSource) -> None:
        init(self, src)
        self.page_size = 2

    monkeypatch.setattr(WebhookLeadsStream, "__init__", small_pages)
    fake = FakeLead(*LEADS)
    failing = LEADS[3]["id"]  # on the second page
    refused: list[str] = []

    def token_expires_once(request: httpx.Request, lead_id: str) -> httpx.Response:
        if lead_id == failing and not refused:
            refused.append(lead_id)
            fake.requests.append(request)
            return graph_error(190, "Error validating access token: Session has expired", subcode=463)
        return fake(request, lead_id)

    route(cdp_respx, token_expires_once)
    ids = [item["id"] for item in LEADS]
    log_leads(cdp_store, *ids)

    first, collector = run_live(tmp_path, plugins, cdp_http)
    assert first.status == "failed" and "Meta refused the access token" in (first.nodes["leads"].error or "")
    assert first.nodes["submissions"].error is None
    # the refusal is not kept: the second stream asks for that lead again, and only for that one
    assert [r.url.path.rsplit("/", 1)[1] for r in fake.requests] == [*ids[:4], failing, ids[4]]
    assert [r.key for r in collector.records("out") if r.stream == "meta.leads"] == ids[:2]
    assert [r.key for r in collector.records("out") if r.stream == "meta.submissions"] == ids

    fake.requests.clear()
    second, collector = run_live(tmp_path, plugins, cdp_http)
    assert second.status == "succeeded", second.error
    # the leads stream resumes at the page of the lead it stopped at; submissions has nothing new
    assert [r.url.path.rsplit("/", 1)[1] for r in fake.requests] == ids[2:]
    assert [r.key for r in collector.records("out") if r.stream == "meta.leads"] == ids[2:]
    assert [r.key for r in collector.records("out") if r.stream == "meta.submissions"] == []


def test_a_lead_meta_no_longer_has_is_quarantined_by_each_stream_after_one_call(
    cdp_respx: respx.Router, cdp_http: HttpFactory, cdp_store: SystemStore, plugins: Plugins, tmp_path: Path
) -> None:
    fake = FakeLead(LEADS[0], LEADS[1])
    route(cdp_respx, fake)
    log_leads(cdp_store, LEADS[0]["id"], "700042", LEADS[1]["id"])
    run, collector = run_live(tmp_path, plugins, cdp_http)
    assert run.status == "succeeded", run.error
    assert [r.url.path.rsplit("/", 1)[1] for r in fake.requests] == [LEADS[0]["id"], "700042", LEADS[1]["id"]]
    assert [r.key for r in collector.records("out")] == [LEADS[0]["id"], LEADS[1]["id"]] * 2
    for node in ("leads", "submissions"):
        assert run.nodes[node].rejected == 1
        [entry] = cdp_store.quarantine("live", node)
        assert entry["payload"]["message_id"] == "700042"
        assert entry["reason"].startswith("meta leadgen 700042: ") and "code 100, subcode 33" in entry["reason"]
        assert "does not exist" in entry["reason"]


def test_the_runs_answers_go_with_the_source(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLead(LEAD)
    route(cdp_respx, fake)
    src = source(tmp_path, cdp_http)
    src.stream("webhook_leads").records(logged())
    src.stream("webhook_submissions").records(logged())
    assert len(fake.requests) == 1
    src.close()
    src = source(tmp_path, cdp_http)  # the next run asks Meta again: a lead may have changed since
    src.stream("webhook_submissions").records(logged())
    src.close()
    assert len(fake.requests) == 2
