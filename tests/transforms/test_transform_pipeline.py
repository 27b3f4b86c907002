"""The transforms as the core meets them: registered by the builtin plugin, configured from
connectors.toml (bad options are config issues at their key path), run by the Runner."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest

from cdp_core.base import Transform
from cdp_core.config import ConfigError, load_config
from cdp_core.plugins import load_plugins
from cdp_core.runner import Runner
from cdp_core.transforms import TRANSFORMS

EXPECTED = {
    "derive",
    "discretize",
    "filter",
    "generalize",
    "hash",
    "identify",
    "map",
    "normalize",
    "rename",
    "select",
    "validate",
}


def test_every_transform_is_registered_by_the_builtin_plugin() -> None:
    plugins = load_plugins()
    info = plugins.info["cdp.transforms"]
    assert info.status == "ok", info.error
    assert set(info.registered["transforms"]) == EXPECTED == set(TRANSFORMS)
    for name in EXPECTED:
        registration = plugins.registry.get("transform", name)
        assert registration is not None and registration.plugin == "cdp.transforms"
        assert issubclass(registration.cls, Transform)
        assert registration.cls.config_model.model_config.get("extra") == "forbid"


def test_every_option_has_a_description() -> None:
    for name, cls in TRANSFORMS.items():
        for option, field in cls.config_model.model_fields.items():
            assert field.description, f"{name}.{option} has no description"


def test_docs_cover_every_transform() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "transforms.md").read_text()
    for name, cls in TRANSFORMS.items():
        assert f"## `{name}`" in docs, name
        for option in cls.config_model.model_fields:
            assert f"`{option}`" in docs, f"{name}.{option} is not documented"
        assert f'transform = "{name}"' in docs, f"{name} has no connectors.toml example"


def test_docs_examples_are_valid_options() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "transforms.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", docs, re.DOTALL)
    checked = set()
    for block in blocks:
        for graph in tomllib.loads(block)["syncs"].values():
            for node in graph["nodes"].values():
                TRANSFORMS[node["transform"]].config_model.model_validate(node.get("options", {}))
                checked.add(node["transform"])
    assert checked == EXPECTED


HEAD = """
[store]
url = "sqlite:///store.sqlite"

[connectors.files]
type = "jsonl"
streams.people = { path = "people.jsonl" }

[connectors.out]
type = "jsonl_file"
path = "out.jsonl"

[syncs.g.nodes.src]
source = "files.people"
"""


def write(tmp_path: Path, nodes: str, rows: list[dict[str, object]] | None = None) -> Path:
    (tmp_path / "people.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows or []), encoding="utf-8")
    path = tmp_path / "connectors.toml"
    path.write_text(HEAD + nodes, encoding="utf-8")
    return path


def test_bad_options_are_reported_at_their_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[syncs.g.nodes.calc]
transform = "derive"
inputs = ["src"]
options = { fields = { full_name = "concat(first_name, ' ', last_name" } }

[syncs.g.nodes.keep]
transform = "filter"
inputs = ["calc"]
options = { where = "__import__('os')" }

[syncs.g.nodes.clean]
transform = "normalize"
inputs = ["keep"]
options = { fields = { phone = "telephone" }, default_region = "XX", on_invalid = "drop" }

[syncs.g.nodes.dest]
destination = "out"
inputs = ["clean"]
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, load_plugins())
    issues = {issue.path: issue.message for issue in info.value.issues}
    assert "full_name: syntax error at the end" in issues["syncs.g.nodes.calc.options.fields"]
    assert "unknown function '__import__'" in issues["syncs.g.nodes.keep.options.where"]
    assert "Input should be 'email', 'phone'" in issues["syncs.g.nodes.clean.options.fields.phone"]
    assert "unknown phone region 'XX'" in issues["syncs.g.nodes.clean.options.default_region"]
    assert "Input should be 'reject', 'null' or 'keep'" in issues["syncs.g.nodes.clean.options.on_invalid"]


def test_a_graph_of_transforms_runs_end_to_end(tmp_path: Path) -> None:
    rows = [
        {
            "id": 1,
            "mail": " John.Doe@Example.com ",
            "tel": "+49 (0)171 1234567",
            "first_name": "John",
            "last_name": "Doe",
            "land": "Deutschland",
            "spent": "1500",
            "orders": 4,
            "birthday": "17.05.1990",
        },
        {
            "id": 2,
            "mail": "bad-address",
            "tel": "0171 7654321",
            "first_name": "Ann",
            "last_name": "Lee",
            "land": "AT",
            "spent": "10",
            "orders": 1,
            "birthday": "01.01.2000",
        },
        {
            "id": 3,
            "mail": "zoe@example.de",
            "tel": "",
            "first_name": "Zoë",
            "last_name": "X",
            "land": "Schweiz",
            "spent": "50",
            "orders": 0,
            "birthday": "01.01.1970",
        },
    ]
    path = write(
        tmp_path,
        """
[syncs.g.nodes.ids]
transform = "identify"
inputs = ["src"]
options = { identifiers = { email = "mail", phone = "tel", shop_customer_id = "id" } }

[syncs.g.nodes.clean]
transform = "normalize"
inputs = ["ids"]
options = { fields = { mail = "email", tel = "phone", land = "country", birthday = "date" } }

[syncs.g.nodes.calc]
transform = "derive"
inputs = ["clean"]
options = { fields = { full_name = "concat(first_name, ' ', last_name)", is_vip = "spent > 1000 and orders >= 3" } }

[syncs.g.nodes.buyers]
transform = "filter"
inputs = ["calc"]
options = { where = "orders >= 1" }

[syncs.g.nodes.coarse]
transform = "generalize"
inputs = ["buyers"]
options = { rules = [ { kind = "age", field = "birthday", target = "age_band", drop_source = true } ], as_of = "2025-01-01" }

[syncs.g.nodes.hash]
transform = "hash"
inputs = ["coarse"]
options = { fields = ["mail", "tel"], salt = "${CDP_TEST_SALT}" }

[syncs.g.nodes.dest]
destination = "out"
inputs = ["hash"]
""",
        rows,
    )
    plugins = load_plugins()
    config = load_config(path, plugins, env={"CDP_TEST_SALT": "pepper"})
    run = Runner(config, plugins).run("g")
    assert run.status == "succeeded", run.error
    assert (run.nodes["clean"].rejected, run.nodes["buyers"].records_out) == (1, 1)
    (line,) = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    written = json.loads(line)
    assert written["identifiers"] == {
        "email": "john.doe@example.com",
        "phone": "+491711234567",
        "shop_customer_id": "1",
    }
    assert written["data"]["mail"] == hashlib.sha256(b"pepperjohn.doe@example.com").hexdigest()
    assert written["data"]["tel"] == hashlib.sha256(b"pepper+491711234567").hexdigest()
    assert {k: written["data"][k] for k in ("land", "full_name", "is_vip", "age_band")} == {
        "land": "DE",
        "full_name": "John Doe",
        "is_vip": True,
        "age_band": "25-34",
    }
    assert "birthday" not in written["data"]
