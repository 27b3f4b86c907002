"""The README's connectors.toml, run by the real runner: HubSpot contacts into the profile store,
NPS answers joined to them, and nps_score / nps_category written back to HubSpot."""

from __future__ import annotations

from pathlib import Path

import respx
from cdp_core.config import load_config
from cdp_core.http import HttpFactory
from cdp_core.runinfo import RunInfo
from cdp_core.testing import RegisterPlugin, kit_plugin, run_graph, run_twice, to_toml
from hubspot_fake import TOKEN, FakeHubSpot, contact

import cdp_hubspot

ANSWERS = [
    {"token": "t1", "email": "PERSON1@example.com", "score": 10, "submitted_at": "2024-06-01T09:00:00Z"},
    {"token": "t2", "email": "person2@example.com", "score": 4, "submitted_at": "2024-06-02T09:00:00Z"},
    {"token": "t3", "email": "stranger@example.com", "score": 8, "submitted_at": "2024-06-03T09:00:00Z"},
]

CONFIG = f"""
[connectors.crm]
type = "hubspot"
access_token = "${{HUBSPOT_TOKEN}}"
page_size = 2

[connectors.store]
type = "profile_store"

[connectors.survey]
type = "list_source"
streams = {
    to_toml(
        {
            "answers": {
                "records": ANSWERS,
                "kind": "nps_response",
                "key_field": "token",
                "identifiers": {"email": "email"},
                "timestamp_field": "submitted_at",
            }
        }
    )
}

# HubSpot contacts -> rename -> normalize -> profile store
[syncs.crm.nodes.contacts]
source = "crm.contacts"

[syncs.crm.nodes.clean]
transform = "rename"
inputs = ["contacts"]
options = {{ fields = {{ firstname = "first_name", lastname = "last_name", lifecyclestage = "lifecycle_stage" }} }}

[syncs.crm.nodes.people]
transform = "normalize"
inputs = ["clean"]
options = {{ fields = {{ first_name = "name", last_name = "name", country = "country" }}, default_region = "DE", on_invalid = "null" }}

[syncs.crm.nodes.store]
destination = "store"
inputs = ["people"]

[syncs.survey.nodes.answers]
source = "survey.answers"

[syncs.survey.nodes.store]
destination = "store"
inputs = ["answers"]

# profile store -> HubSpot: the latest NPS answer of every known contact
[syncs.crm_writeback.nodes.profiles]
source = "store.profiles"

[syncs.crm_writeback.nodes.known]
transform = "filter"
inputs = ["profiles"]
options = {{ where = "identifiers.hubspot_contact_id != null and nps_score != null" }}

[syncs.crm_writeback.nodes.hubspot]
destination = "crm"
inputs = ["known"]
options = {{ properties = {{ nps_score = "nps_score", nps_category = "nps_category" }} }}
"""


def test_contacts_into_the_store_and_nps_back_to_hubspot(
    cdp_respx: respx.Router, cdp_http: HttpFactory, register_plugin: RegisterPlugin, tmp_path: Path
) -> None:
    hub = FakeHubSpot().install(cdp_respx)
    hub.objects["contacts"] = [contact(n, minutes=n, country="Germany") for n in (1, 2, 3)]
    plugins = register_plugin(cdp_hubspot, extra=[kit_plugin, "profiles"])
    env = {"HUBSPOT_TOKEN": TOKEN}

    def run(graph: str) -> RunInfo:
        info = run_graph(tmp_path, CONFIG, plugins, graph, services={"http": cdp_http}, env=env)
        assert info.status == "succeeded", info.error
        return info

    assert run("crm").nodes["contacts"].records_out == 3
    # The contacts' default trait mapping, carried through the rename, read after normalize: clean traits
    # (no ids, no modification dates; email and phone are identifiers).
    from cdp_core.store.engine import make_engine
    from cdp_core.testing.helpers import store_url_for
    from cdp_profiles.store import tables
    from sqlalchemy import select

    engine = make_engine(store_url_for(tmp_path))
    try:
        with engine.connect() as conn:
            traits = [dict(t) for t in conn.execute(select(tables.profiles.c.traits)).scalars()]
    finally:
        engine.dispose()
    assert {"first_name": "Person1", "last_name": "Example", "country": "DE"} in traits
    assert all(sorted(t) == ["country", "first_name", "last_name"] for t in traits)
    run("survey")
    run("crm_writeback")
    assert hub.updated == {
        "1": {"nps_score": "10", "nps_category": "promoter"},
        "2": {"nps_score": "4", "nps_category": "detractor"},
    }  # contact 3 gave no answer; the stranger is no HubSpot contact
    assert [len(b) for b in hub.batches] == [2]

    hub.batches.clear()
    assert (
        run("crm").nodes["contacts"].records_out == 0
    )  # nothing changed in HubSpot: the lookback window is re-read, nothing delivered twice
    assert run("crm_writeback").nodes["hubspot"].records_in == 0  # no profile changed since: nothing to send
    assert hub.batches == []


def test_the_readme_example_is_valid(register_plugin: RegisterPlugin, tmp_path: Path) -> None:
    """The example in README.md loads as connectors.toml (what `cdp validate` checks)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Example", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "connectors.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/store.sqlite"\n\n{example}', encoding="utf-8")
    config = load_config(path, register_plugin(cdp_hubspot, extra=["profiles"]), env={"HUBSPOT_TOKEN": "dummy"})
    assert set(config.graphs) >= {"crm", "crm_archived", "crm_writeback"}


def test_one_malformed_contact_is_quarantined_the_others_stored(
    cdp_respx: respx.Router, cdp_http: HttpFactory, register_plugin: RegisterPlugin, tmp_path: Path, store_url: str
) -> None:
    """One contact without its id in the middle of a page: the others reach the destination, that one
    is quarantined with its payload, the run succeeds, and the next run delivers nothing again."""
    hub = FakeHubSpot().install(cdp_respx)
    bad = contact(2, minutes=2)
    del bad["id"]
    hub.objects["contacts"] = [contact(1, minutes=1), bad, contact(3, minutes=3)]
    runs = run_twice(
        tmp_path, '[connectors.crm]\ntype = "hubspot"\naccess_token = "${HUBSPOT_TOKEN}"', "crm.contacts",
        register_plugin(cdp_hubspot, extra=[kit_plugin]), store_url,
        env={"HUBSPOT_TOKEN": TOKEN}, services={"http": cdp_http},
    )  # fmt: skip
    assert runs.delivered == ["1", "3"]
    assert (runs.first.nodes["contacts"].records_out, runs.first.nodes["contacts"].rejected) == (2, 1)
    [entry] = runs.quarantined  # the same bad contact, seen again in the lookback, is kept once
    assert entry["node"] == "contacts" and "id" not in entry["payload"]
    assert entry["payload"]["properties"]["email"] == "person2@example.com"  # the raw payload, as HubSpot sent it
    assert (
        "hubspot contacts: an item of POST /crm/v3/objects/contacts/search: does not match CrmObject" in entry["reason"]
    )
    assert runs.second.nodes["contacts"].records_out == 0 and runs.redelivered == []
