"""`cdp serve` never logs a suppressed person's messages: answered as accepted, counted, not stored.

A Tracking API call is judged by the records it would become (its userId, anonymousId and
traits' email and phone); the list is read again while the server runs, so a person
suppressed (or forgotten) meanwhile is screened within the screens' time to live.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cdp_core.testing import kit_plugin, load_test_plugins
from cdp_core.testing.serve import serve_config
from typer.testing import CliRunner

KEY = "k" * 40
WRITE_KEY = "wk_test_0123456789"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
CONFIG = """
[store]
url = "{url}"

[privacy]
key = "${{CDP_PRIVACY_KEY}}"

[connectors.web]
type = "tracking_api"
write_key = "${{WEB_WRITE_KEY}}"
"""


def identify(user: str, email: str, message_id: str) -> dict[str, object]:
    return {"type": "identify", "userId": user, "traits": {"email": email}, "messageId": message_id}


def test_a_suppressed_person_is_answered_but_never_logged(tmp_path: Path, store_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from cdp_core.cli import build_app
    from cdp_core.serve import screening

    monkeypatch.setenv("CDP_PRIVACY_KEY", KEY)
    monkeypatch.setattr(screening, "TTL", 0.0)  # read the list again before every request
    plugins = load_test_plugins(kit_plugin, "profiles")
    env = {"CDP_PRIVACY_KEY": KEY, "WEB_WRITE_KEY": WRITE_KEY}
    text = CONFIG.format(url=store_url)
    with serve_config(tmp_path, text, plugins, env=env, store_url=store_url) as served:
        screens = served.serving.state.screens
        assert screens is not None
        monkeypatch.setattr(screens, "_ttl", 0.0)
        first = served.client.post("/v1/identify", json=identify("u1", "anna@example.org", "m1"), headers=AUTH)
        assert first.status_code == 200 and [r.message_id for r in served.logged()] == ["m1"]

        config = tmp_path / "connectors.toml"
        done = CliRunner().invoke(build_app(), ["privacy", "suppress", "email:Anna@Example.org", "-c", str(config)])
        assert done.exit_code == 0, done.output

        batch = {"batch": [identify("u1", "ANNA@example.org", "m2"), identify("u2", "bob@example.org", "m3"),
                           {"type": "track", "userId": "u9", "event": "x", "messageId": "m4",
                            "context": {"traits": {}}, "properties": {"email": "anna@example.org"}}]}  # fmt: skip
        answer = served.client.post("/v1/batch", json=batch, headers=AUTH)
        assert answer.status_code == 200 and answer.json()["success"] is True
        assert [r.message_id for r in served.logged()] == ["m1", "m3", "m4"]  # an event names her only in its data
        alone = served.client.post("/v1/identify", json=identify("u1", "anna@example.org", "m5"), headers=AUTH)
        assert alone.status_code == 200 and alone.json()["accepted"] == 1  # nobody learns who is suppressed
        assert [r.message_id for r in served.logged()] == ["m1", "m3", "m4"]
        metrics = served.client.get("/metrics").text
        assert 'cdp_ingest_suppressed_total{source="web"} 2' in metrics
