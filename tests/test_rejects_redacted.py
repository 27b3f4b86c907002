"""A reject reason a plugin writes never carries a secret into the quarantine table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from cdp_core import PluginConfig, Record, Register, Transform, TransformContext, hookimpl
from cdp_core.runinfo import RunStatus
from cdp_core.store import SystemStore
from cdp_core.testing import kit_plugin, run_graph, store_url_for, to_toml

SECRET = "s3cr3t-Token/42"


class EchoOptions(PluginConfig):
    token: SecretStr


class EchoToken(Transform):
    """Rejects every record with a reason that quotes its token, as a careless plugin might."""

    config_model = EchoOptions

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        token = self.config.token.get_secret_value()  # type: ignore[attr-defined]
        for record in batch:
            ctx.reject(record, f"the vendor refused token={token} for this record")
        return []


class Plugin:
    @hookimpl
    def cdp_register_transforms(self, register: Register) -> None:
        register("echo_token", EchoToken)


def test_a_transforms_reject_reason_is_redacted_in_quarantine(register_plugin: Any, tmp_path: Path) -> None:
    graph = f"""
[connectors.src]
type = "list_source"
streams = {to_toml({"items": {"records": [{"id": "1"}, {"id": "2"}]}})}

[connectors.sink]
type = "collect"

[syncs.main.nodes.items]
source = "src.items"

[syncs.main.nodes.echo]
transform = "echo_token"
inputs = ["items"]
options = {{ token = "${{ECHO_TOKEN}}" }}

[syncs.main.nodes.sink]
destination = "sink"
inputs = ["echo"]
"""
    plugins = register_plugin(Plugin(), extra=[kit_plugin])
    run = run_graph(tmp_path, graph, plugins, env={"ECHO_TOKEN": SECRET})
    assert run.status is RunStatus.succeeded, run.error
    system = SystemStore(store_url_for(tmp_path))
    try:
        rows = system.quarantine("main", None, None, 10)
    finally:
        system.engine.dispose()
    assert [r["node"] for r in rows] == ["echo", "echo"]
    assert all(r["reason"] == "the vendor refused token=*** for this record" for r in rows), rows
    assert SECRET not in repr(rows)
