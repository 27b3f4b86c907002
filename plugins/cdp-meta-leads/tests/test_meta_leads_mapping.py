"""field_data -> identifiers and traits; the event record; a graph into the profile store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import respx
import sqlalchemy as sa
from cdp_core import RecordKind
from cdp_core.http import HttpFactory
from cdp_core.testing import make_context, run_graph
from cdp_profiles.store.kinds import row_for
from meta_fake import FORM_A, FORM_B, TOKEN, FakeLeads, lead, leads_url

import cdp_meta_leads
from cdp_meta_leads import MetaLeadsConfig, MetaLeadsSource
from cdp_meta_leads.models import Lead


def test_field_data_to_identifiers_and_traits() -> None:
    raw = lead(
        1,
        "2024-05-01T10:00:00+0000",
        first_name="Lea",
        last_name="Number",
        zip_code="20095",
        interests=["solar", "storage"],
        empty_question=[""],
        form_id="a question named form_id",
    )
    record = cdp_meta_leads.lead_profile(Lead.model_validate(raw), FORM_A, "meta.leads")
    assert record.kind is RecordKind.profile and record.key == "100001" and record.stream == "meta.leads"
    assert record.identifiers == {"meta_lead_id": "100001", "email": "lead1@example.com", "phone": "+491710000001"}
    data = record.data
    assert data["full_name"] == "Lead Number1"
    assert (data["first_name"], data["last_name"], data["city"], data["zip_code"]) == (
        "Lea",
        "Number",
        "Hamburg",
        "20095",
    )
    assert data["which_product_are_you_interested_in?"] == "solar_panels"  # a custom question
    assert data["interests"] == ["solar", "storage"]  # several values: a list
    assert "empty_question" not in data
    assert data["field_form_id"] == "a question named form_id" and data["form_id"] == FORM_A
    assert "email" not in data and "phone_number" not in data  # identifiers, not traits
    assert (data["lead_id"], data["ad_id"], data["campaign_id"]) == ("100001", "23850000000000001", "23850000000000002")
    assert data["created_time"] == "2024-05-01T10:00:00+00:00"
    assert record.occurred_at is not None and record.occurred_at.isoformat() == "2024-05-01T10:00:00+00:00"
    assert row_for(record)["data"] is data


def test_the_leads_default_trait_mapping_and_its_override(tmp_path: Path) -> None:
    raw = lead(1, "2024-05-01T10:00:00+0000", first_name="Lea", zip_code="20095", company_name="Solar GmbH", state="HH")
    record = cdp_meta_leads.lead_profile(Lead.model_validate(raw), FORM_A, "meta.leads")
    config = {"access_token": TOKEN, "form_ids": [FORM_A]}
    source = MetaLeadsSource(MetaLeadsConfig.model_validate(config), make_context(tmp_path, "meta"))
    mapping = source.stream("leads").traits
    assert mapping is not None and source.stream("submissions").traits is None
    assert mapping.apply(record.data) == (
        {
            "full_name": "Lead Number1",
            "first_name": "Lea",
            "company": "Solar GmbH",
            "city": "Hamburg",
            "state": "HH",
            "zip": "20095",
        },
        [],
    )  # not the lead, form, ad or campaign ids, not the time, not the custom question
    custom = {**config, "traits": {"leads": {"first_name": "first_name", "product": "which_product_are_you_interested_in?"}}}
    override = MetaLeadsSource(MetaLeadsConfig.model_validate(custom), make_context(tmp_path, "meta")).stream("leads").traits
    assert override is not None
    assert override.apply(record.data)[0] == {"first_name": "Lea", "product": "solar_panels"}


def test_work_contacts_stand_in_for_missing_ones() -> None:
    raw = lead(
        2,
        "2024-05-01T10:00:00+0000",
        email=None,
        phone_number=None,
        work_email="lea@firm.example",
        work_phone_number="+4940123",
    )
    record = cdp_meta_leads.lead_profile(Lead.model_validate(raw), FORM_A, "meta.leads")
    assert record.identifiers == {"meta_lead_id": "100002", "email": "lea@firm.example", "phone": "+4940123"}
    assert "work_email" not in record.data and "work_phone_number" not in record.data


def test_work_email_is_a_trait_next_to_a_private_one() -> None:
    raw = lead(3, "2024-05-01T10:00:00+0000", work_email="lea@firm.example")
    record = cdp_meta_leads.lead_profile(Lead.model_validate(raw), FORM_A, "meta.leads")
    assert record.identifiers["email"] == "lead3@example.com" and record.data["work_email"] == "lea@firm.example"


def test_a_lead_without_contact_fields() -> None:
    raw = lead(4, "2024-05-01T10:00:00+0000", email=None, phone_number=None)
    record = cdp_meta_leads.lead_profile(Lead.model_validate(raw), FORM_A, "meta.leads")
    assert record.identifiers == {"meta_lead_id": "100004"}


def test_submission_event() -> None:
    asked = {"id", "created_time", "field_data", "ad_id", "campaign_id"}  # the default fields
    raw = {k: v for k, v in lead(1, "2024-05-01T10:00:00+0000").items() if k in asked}
    record = cdp_meta_leads.lead_event(Lead.model_validate(raw), FORM_A, "meta.submissions")
    assert record.kind is RecordKind.event and record.key == "100001"
    assert record.data == {
        "event": "lead_form_submitted",
        "lead_id": "100001",
        "form_id": FORM_A,
        "ad_id": "23850000000000001",
        "campaign_id": "23850000000000002",
        "created_time": "2024-05-01T10:00:00+00:00",
    }
    assert record.identifiers["email"] == "lead1@example.com"
    row = row_for(record)
    assert row["name"] == "lead_form_submitted" and row["properties"]["form_id"] == FORM_A


def test_extra_fields_are_asked_for_and_kept(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLeads(FORM_A, [lead(1, "2024-05-01T10:00:00+0000")])
    cdp_respx.get(leads_url(FORM_A)).mock(side_effect=fake)
    config = MetaLeadsConfig.model_validate(
        {"access_token": TOKEN, "form_ids": [FORM_A], "extra_fields": ["ad_name", "is_organic", "platform"]}
    )
    source = MetaLeadsSource(config, make_context(tmp_path, "meta", services={"http": cdp_http}))
    [page] = list(source.stream("submissions").read(None))
    assert fake.params_of(0)["fields"] == "id,created_time,field_data,ad_id,campaign_id,ad_name,is_organic,platform"
    data = page.records[0].data
    assert (data["ad_name"], data["is_organic"], data["platform"]) == ("Spring campaign ad", False, "fb")


def test_meta_leads_graph_into_the_profile_store(register_plugin: Any, tmp_path: Path, cdp_respx: respx.Router) -> None:
    """The README's connectors.toml snippet, run by the real runner into the profile store."""
    cdp_respx.get(leads_url(FORM_A)).mock(
        side_effect=FakeLeads(FORM_A, [lead(1, "2024-05-01T10:00:00+0000"), lead(2, "2024-05-02T10:00:00+0000")])
    )
    cdp_respx.get(leads_url(FORM_B)).mock(
        side_effect=FakeLeads(FORM_B, [lead(1, "2024-05-03T10:00:00+0000", form=FORM_B)])
    )  # form B's lead 1 has the same email as form A's lead 1: one person
    run = run_graph(
        tmp_path,
        f"""
[connectors.meta]
type = "meta_leads"
access_token = "${{META_ACCESS_TOKEN}}"
graph_version = "v21.0"
form_ids = ["{FORM_A}", "{FORM_B}"]

[connectors.store]
type = "profile_store"

[syncs.main.nodes.leads]
source = "meta.leads"

[syncs.main.nodes.submissions]
source = "meta.submissions"

[syncs.main.nodes.store]
destination = "store"
inputs = ["leads", "submissions"]
""",
        register_plugin(cdp_meta_leads, extra=["profiles"]),
        env={"META_ACCESS_TOKEN": TOKEN},
    )
    assert run.status == "succeeded", run.error
    store = run.nodes["store"]
    assert (store.records_in, store.records_out, store.rejected) == (6, 6, 0)
    engine = sa.create_engine(f"sqlite:///{tmp_path}/store.sqlite")
    with engine.connect() as db:
        live = db.execute(sa.text("SELECT COUNT(*) FROM profiles WHERE merged_into IS NULL")).scalar()
    engine.dispose()
    assert live == 2
    engine = sa.create_engine(f"sqlite:///{tmp_path}/store.sqlite")
    with engine.connect() as db:
        names = {name for (doc,) in db.execute(sa.text("SELECT traits FROM profiles")) for name in json.loads(doc)}
    engine.dispose()
    assert names and not names & {"lead_id", "form_id", "ad_id", "campaign_id", "created_time"}  # the default mapping


def test_an_identifier_field_with_several_values_gives_each() -> None:
    raw = lead(2, "2024-05-01T10:00:00+0000", email=["a@example.com", " b@example.com", "a@example.com"])
    record = cdp_meta_leads.lead_profile(Lead.model_validate(raw), FORM_A, "meta.leads")
    assert record.identifiers["email"] == ["a@example.com", "b@example.com"]
    assert record.identifiers["phone"] == "+491710000002", "one value: a text, as before"
