"""The tracking_api connector's records: what each logged Segment call becomes, and the continuous worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from cdp_core.cli import build_app
from cdp_core.config import load_config
from cdp_core.ingest import IngestEntry, append
from cdp_core.ingest.tracking import check_message, occurred_at
from cdp_core.ingest.tracking_source import TrackingApiConfig, message_records
from cdp_core.plugins import load_plugins
from cdp_core.records import RecordKind
from cdp_core.serve.runtime import ServeConfigError, build_serving
from cdp_core.store import SystemStore

RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = TrackingApiConfig(write_key=SecretStr("wk"))


def records(kind: str, **message: object) -> list:  # type: ignore[type-arg]
    body = check_message({"messageId": "m1", **message}, kind)
    return message_records(IngestEntry("web", "m1", kind, body, RECEIVED), CONFIG, "messages")


def test_identify_is_a_profile_record_with_traits_and_identifiers() -> None:
    [record] = records("identify", userId="u1", anonymousId="a1", traits={"email": "jo@example.com", "phone": "+49 30 1", "plan": "pro"})
    assert record.kind is RecordKind.profile and record.key == "m1"
    assert record.data == {"email": "jo@example.com", "phone": "+49 30 1", "plan": "pro"}
    assert record.identifiers == {"user_id": "u1", "anonymous_id": "a1", "email": "jo@example.com", "phone": "+49 30 1"}


def test_identifier_types_are_configurable() -> None:
    config = TrackingApiConfig(write_key=SecretStr("wk"), user_id_type="customer_id", anonymous_id_type="device_id")
    body = check_message({"messageId": "m", "userId": 42, "anonymousId": "d"}, "identify")
    [record] = message_records(IngestEntry("web", "m", "identify", body, RECEIVED), config, "messages")
    assert record.identifiers == {"customer_id": "42", "device_id": "d"}


def test_alias_links_previous_id_and_user_id_without_traits() -> None:
    [record] = records("alias", userId="u1", previousId="a9")
    assert record.kind is RecordKind.profile and record.data == {}
    assert record.identifiers == {"user_id": "u1", "anonymous_id": "a9"}


@pytest.mark.parametrize(
    ("kind", "message", "name", "data"),
    [
        ("track", {"event": "Order Completed", "properties": {"revenue": 9}}, "Order Completed", {"revenue": 9}),
        ("page", {"name": "Pricing", "category": "Docs", "properties": {"path": "/p"}}, "Page Viewed",
         {"path": "/p", "name": "Pricing", "category": "Docs"}),
        ("screen", {"name": "Home"}, "Screen Viewed", {"name": "Home"}),
        ("group", {"groupId": "g1", "traits": {"name": "Acme"}}, "Group Identified",
         {"group_id": "g1", "group_traits": {"name": "Acme"}}),
    ],
)
def test_track_page_screen_and_group_are_events(kind: str, message: dict, name: str, data: dict) -> None:  # type: ignore[type-arg]
    [record] = records(kind, userId="u1", **message)
    assert record.kind is RecordKind.event and record.key == "m1"
    assert record.data == {**data, "event": name}
    assert record.identifiers == {"user_id": "u1"}


def test_consent_in_the_context_is_one_record_per_purpose() -> None:
    context = {"consent": {"categoryPreferences": {"ads": True, "email": False, "odd": "yes"}}}
    found = records("track", anonymousId="a1", event="Consent Given", context=context)
    consents = [r for r in found if r.kind is RecordKind.consent]
    assert [(r.key, r.data["purpose"], r.data["status"]) for r in consents] == [
        ("m1:consent:ads", "ads", "granted"),
        ("m1:consent:email", "email", "denied"),
    ]
    assert all(r.identifiers == {"anonymous_id": "a1"} and r.data["source"] == "web" for r in consents)


def test_occurred_at_corrects_the_senders_clock_skew() -> None:
    # the sender's clock is 10 minutes fast: it stamped 12:05 and sent at 12:10, received at 12:00
    message = {"timestamp": "2024-05-01T12:05:00Z", "sentAt": "2024-05-01T12:10:00+00:00"}
    assert occurred_at(message, RECEIVED) == RECEIVED - timedelta(minutes=5)
    assert occurred_at({"timestamp": "2024-05-01T11:00:00Z"}, RECEIVED) == RECEIVED - timedelta(hours=1)
    assert occurred_at({}, RECEIVED) == RECEIVED


# -- the continuous worker and the serve configuration ------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "connectors.toml"
    path.write_text(
        """
[store]
url = "sqlite:///cdp.sqlite"

[connectors.web]
type = "tracking_api"
write_key = "${WEB_KEY}"
rate_limit = { per_second = 50, burst = 100 }

[connectors.out]
type = "jsonl_file"
path = "out/events.jsonl"

[syncs.live]
continuous = true

[syncs.live.nodes.web]
source = "web.messages"

[syncs.live.nodes.out]
destination = "out"
inputs = ["web"]
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def system(config_file: Path) -> Iterator[SystemStore]:
    store = SystemStore(f"sqlite:///{config_file.parent / 'cdp.sqlite'}").create()
    yield store
    store.engine.dispose()


def test_the_worker_runs_a_continuous_graph_only_when_the_log_has_news(config_file: Path, system: SystemStore) -> None:
    plugins = load_plugins()
    config = load_config(config_file, plugins, env={"WEB_KEY": "wk_1"})
    serving = build_serving(config, plugins, system)
    worker = serving.worker
    try:
        assert [s.name for s in serving.state.sources] == ["web"] and serving.state.sources[0].bucket is not None
        assert worker.run_once() == []  # nothing logged: no run, no empty run in the history
        body = check_message({"messageId": "t1", "userId": "u1", "event": "Paid"}, "track")
        append(system.engine, [IngestEntry("web", "t1", "track", body, RECEIVED)])
        assert worker.run_once() == ["live"]
        assert worker.run_once() == []  # read to the end: nothing new
    finally:
        worker.close()
    lines = (config_file.parent / "out" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["t1"]
    assert [run.graph for run in system.runs("live", 10)] == ["live"]


def test_a_continuous_graph_without_an_ingest_source_is_refused(config_file: Path, system: SystemStore) -> None:
    (config_file.parent / "in.jsonl").write_text('{"id": 1}\n')
    text = config_file.read_text().replace('source = "web.messages"', 'source = "files.items"')
    config_file.write_text(text + '\n[connectors.files]\ntype = "jsonl"\n[connectors.files.streams.items]\npath = "in.jsonl"\n')
    plugins = load_plugins()
    config = load_config(config_file, plugins, env={"WEB_KEY": "wk_1"})
    with pytest.raises(ServeConfigError, match="syncs.live: continuous, but none of its sources reads the ingest log"):
        build_serving(config, plugins, system)


def test_cdp_serve_without_its_write_key_exits_2_naming_it(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_KEY", raising=False)
    result = CliRunner().invoke(build_app(), ["serve", "-c", str(config_file), "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "connectors.web" in result.output and "WEB_KEY" in result.output
