"""Trait mappings (cdp_core/traits.py): typed conversion, connectors.toml errors, and the mapping on its way
from a file source through rename and normalize to a destination."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from cdp_core.config import ConfigError, load_config
from cdp_core.plugins import load_plugins
from cdp_core.records import Record
from cdp_core.runinfo import RunStatus
from cdp_core.testing import kit_plugin, load_test_plugins
from cdp_core.testing.fakes import Collector
from cdp_core.testing.helpers import run_graph
from cdp_core.traits import TraitMap, TraitsByStream, trait_streams


def traits_of(spec: Any, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    traits, problems = TraitMap.of(spec).apply(data)
    return traits, [p.message() for p in problems]


@pytest.mark.parametrize(
    ("type_name", "value", "expected"),
    [
        ("string", "  Anna ", "Anna"),
        ("string", 42, "42"),
        ("string", True, "true"),
        ("number", "12.50", 12.5),
        ("number", " 7 ", 7),
        ("number", 3, 3),
        ("number", "-1e3", -1000.0),
        ("boolean", "Yes", True),
        ("boolean", "0", False),
        ("boolean", 1, True),
        ("boolean", False, False),
        ("timestamp", "2024-02-12T10:15:00+01:00", "2024-02-12T09:15:00+00:00"),
        ("timestamp", "2024-02-12", "2024-02-12T00:00:00+00:00"),
        ("timestamp", 1707732900, "2024-02-12T10:15:00+00:00"),
        ("list", "VIP, Abo,,Kunde ", ["VIP", "Abo", "Kunde"]),
        ("list", ["a", "", None, 2], ["a", 2]),
        ("list", 5, [5]),
        (None, {"nested": 1}, {"nested": 1}),
    ],
)
def test_each_type_converts(type_name: str | None, value: Any, expected: Any) -> None:
    spec = {"x": {"field": "v"} if type_name is None else {"field": "v", "type": type_name}}
    assert traits_of(spec, {"v": value}) == ({"x": expected}, [])


@pytest.mark.parametrize(
    ("type_name", "value", "why"),
    [
        ("number", "12,50", "text that is not a number"),
        ("number", "nan", "text that is not a number"),
        ("number", float("inf"), "not a finite number"),
        ("number", True, "a boolean, not a number"),
        ("number", [1], "a list, not a number"),
        ("boolean", "maybe", "text that is not true/false, yes/no or 1/0"),
        ("boolean", 2, "a number that is not true/false, yes/no or 1/0"),
        ("timestamp", "12/02/2024", "text that is not a timestamp"),
        ("string", {"a": 1}, "an object, not text"),
        ("list", {"a": 1}, "an object, not a list"),
    ],
)
def test_a_value_not_of_its_type_sets_no_trait_and_says_why(type_name: str, value: Any, why: str) -> None:
    traits, problems = traits_of({"x": {"field": "v", "type": type_name}, "y": "w"}, {"v": value, "w": "kept"})
    assert traits == {"y": "kept"}
    assert len(problems) == 1 and problems[0].startswith(f"trait 'x' not set: field 'v' is {why}")


def test_empty_values_set_no_trait_and_are_no_problem() -> None:
    spec = {"a": {"field": "a", "type": "number"}, "b": {"field": "b", "type": "list"}, "c": "c", "d": "missing"}
    assert traits_of(spec, {"a": " ", "b": " , ", "c": None}) == ({}, [])


def test_short_forms_and_dotted_paths() -> None:
    assert TraitMap.of(["city", "country"]) == TraitMap.of({"city": "city", "country": {"field": "country"}})
    assert TraitMap.of({"tags": {"type": "list"}}).fields["tags"].field == "tags"
    traits, _ = TraitMap.of({"city": "address.city", "flat": "utm.source"}).apply(
        {"address": {"city": "Köln"}, "utm.source": "ads"}
    )
    assert traits == {"city": "Köln", "flat": "ads"}
    assert traits_of({"t": {"type": "list", "separator": ";"}}, {"t": "a;b"}) == ({"t": ["a", "b"]}, [])


def test_the_mapping_is_one_shared_object_through_copies_and_never_dumped() -> None:
    mapping = TraitMap.of(["a"])
    record = Record(stream="s.t", key="1", data={"a": 1}, trait_map=mapping)
    assert record.model_copy(deep=True).trait_map is mapping
    assert copy.deepcopy(mapping) is mapping
    assert "trait_map" not in record.model_dump()
    # In quarantine, the payload keeps the mapping as it is at the node, and a retry reads it back.
    assert record.raw()["trait_map"] == {"a": {"field": "a"}}
    assert Record.model_validate(record.raw()).trait_map == mapping
    assert "trait_map" not in Record(stream="s.t", key="2").raw()


def test_rename_moves_the_fields_a_mapping_reads() -> None:
    mapping = TraitMap.of({"first_name": "firstname", "city": "address.city", "x": "a", "y": "b", "z": "other"})
    moved = mapping.renamed({"firstname": "first_name", "address": "addr", "a": "b", "b": "a"})
    assert {name: f.field for name, f in moved.fields.items()} == {
        "first_name": "first_name",
        "city": "addr.city",
        "x": "b",
        "y": "a",
        "z": "other",
    }
    assert mapping.renamed({"nothing": "here"}) is mapping


# -- connectors.toml ----------------------------------------------------------------------

BASE = """
[connectors.crm]
type = "csv"
[connectors.crm.streams.contacts]
path = "contacts.csv"
{traits}

[connectors.out]
type = "jsonl_file"
path = "out.jsonl"

[syncs.g.nodes.crm]
source = "crm.contacts"
[syncs.g.nodes.out]
destination = "out"
inputs = ["crm"]
"""


def _issues(tmp_path: Path, traits: str) -> dict[str, str]:
    path = tmp_path / "connectors.toml"
    path.write_text(BASE.replace("{traits}", traits))
    with pytest.raises(ConfigError) as info:
        load_config(path, load_plugins(entry_points=False), env={})
    return {issue.path: issue.message for issue in info.value.issues}


def test_unknown_type_names_the_exact_key_with_a_did_you_mean(tmp_path: Path) -> None:
    issues = _issues(tmp_path, 'traits = { tags = { field = "tags", type = "lsit" } }')
    message = issues["connectors.crm.streams.contacts.traits.tags.type"]
    assert "unknown trait type 'lsit' (did you mean 'list'?)" in message


def test_bad_field_path_and_unknown_key_name_the_exact_key(tmp_path: Path) -> None:
    issues = _issues(tmp_path, 'traits = { city = "address..city", tags = { field = "tags", typ = "list" } }')
    assert "not a field path: 'address..city'" in issues["connectors.crm.streams.contacts.traits.city.field"]
    assert issues["connectors.crm.streams.contacts.traits.tags.typ"].startswith("unknown key (did you mean 'type'?)")


def test_bad_trait_name_and_traits_on_a_stream_that_is_not_of_profiles(tmp_path: Path) -> None:
    issues = _issues(tmp_path, 'traits = { "first name" = "firstname" }')
    assert "trait name 'first name' is not allowed" in issues["connectors.crm.streams.contacts.traits"]
    issues = _issues(tmp_path, 'kind = "order"\ntraits = ["total"]')
    assert "traits are for streams of kind 'profile'" in issues["connectors.crm.streams.contacts"]


# -- through a graph ----------------------------------------------------------------------

GRAPH = """
[connectors.crm]
type = "csv"
[connectors.crm.streams.contacts]
path = "contacts.csv"
identifiers = { email = "email" }
traits = { first_name = "firstname", country = "country", tags = { field = "tags", type = "list" } }

[connectors.out]
type = "collect"

[syncs.main.nodes.crm]
source = "crm.contacts"
[syncs.main.nodes.rename]
transform = "rename"
inputs = ["crm"]
options = { fields = { firstname = "first_name" } }
[syncs.main.nodes.clean]
transform = "normalize"
inputs = ["rename"]
options = { fields = { first_name = "name", country = "country" } }
[syncs.main.nodes.out]
destination = "out"
inputs = ["clean"]
[syncs.main.nodes.copy]
destination = "out"
inputs = ["crm"]
"""


def test_the_mapping_reaches_the_destination_renamed_with_the_data_and_reads_normalized_values(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text(
        "id,email,firstname,country,tags\n1,a@x.de,  Anna ,Deutschland,\"VIP, Abo\"\n2,b@x.de,BEN,Austria,\n"
    )
    collector = Collector()
    run = run_graph(tmp_path, GRAPH, load_test_plugins(kit_plugin), collector=collector)
    assert run.status is RunStatus.succeeded, run.error
    cleaned, raw = collector.destinations["out"]
    first = cleaned.batches[0][0]
    assert first.trait_map is not None and first.trait_map is cleaned.batches[0][1].trait_map
    assert first.trait_map.apply(first.data)[0] == {"first_name": "Anna", "country": "DE", "tags": ["VIP", "Abo"]}
    # The branch without the rename keeps the mapping as the stream declared it.
    untouched = raw.batches[0][0]
    assert untouched.trait_map is not None and untouched.trait_map.fields["first_name"].field == "firstname"
    assert untouched.trait_map.apply(untouched.data)[0]["first_name"] == "  Anna "


def test_without_a_mapping_records_carry_none(tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text("id,email,firstname,country,tags\n1,a@x.de,anna,DE,\n")
    text = GRAPH.replace('traits = { first_name = "firstname", country = "country", tags = { field = "tags", type = "list" } }\n', "")
    collector = Collector()
    run = run_graph(tmp_path, text, load_test_plugins(kit_plugin), collector=collector)
    assert run.status is RunStatus.succeeded, run.error
    assert all(r.trait_map is None for d in collector.destinations["out"] for b in d.batches for r in b)


def test_a_mapping_cannot_be_built_from_a_bad_spec() -> None:
    with pytest.raises(ValidationError):
        TraitMap.of({"x": {"field": "", "type": "number"}})


def test_a_vendor_traits_option_names_only_its_streams() -> None:
    """``Annotated[TraitsByStream, trait_streams(...)]``: what a type checker reads is the plain mapping type;
    pydantic refuses a stream the connector does not map, naming the ones it does."""
    class Options(BaseModel):
        traits: Annotated[TraitsByStream, trait_streams("contacts", "companies")] = Field(default_factory=dict)

    assert Options(traits={"contacts": {"city": "address.city"}}).traits["contacts"]["city"].field == "address.city"
    with pytest.raises(ValidationError, match="no stream 'contact'.*streams with traits: contacts, companies"):
        Options(traits={"contact": {"city": "city"}})
