"""Webhooks (`cdp_register_webhooks`, cdp_core/webhooks.py): registered per source type, listed, checked; the signature helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from cdp_core import ConnectorContext, NoOptions, hookimpl
from cdp_core.cli import app, common
from cdp_core.ingest import IngestEntry
from cdp_core.plugins import load_plugins
from cdp_core.testing.fakes import ListSource
from cdp_core.webhooks import (
    Webhook,
    WebhookPayloadError,
    body_digest,
    header,
    json_body,
    signature_matches,
)

SECRET = SecretStr("s3cret-webhook-key")
BODY = b'{"id": 1, "email": "ada@example.com"}'


class AcmeHook(Webhook):
    streams = ("live",)

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        return signature_matches(SECRET, body, header(headers, "X-Acme-Signature"), encoding="hex", prefix="sha256=")

    def entries(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[IngestEntry]:
        return [IngestEntry(self.context.name, body_digest(body), "acme", json_body(body, "acme"), received_at)]


class AcmePlugin:
    @hookimpl
    def cdp_register_sources(self, register: Any) -> None:
        register("acme", ListSource)

    @hookimpl
    def cdp_register_webhooks(self, register: Any) -> None:
        register("acme", AcmeHook)


class NotAWebhook:
    @hookimpl
    def cdp_register_webhooks(self, register: Any) -> None:
        register("acme", dict)


class NoStreams:
    @hookimpl
    def cdp_register_webhooks(self, register: Any) -> None:
        register("acme", type("Hook", (AcmeHook,), {"streams": ()}))


class Orphan:
    @hookimpl
    def cdp_register_webhooks(self, register: Any) -> None:
        register("nobody", AcmeHook)


def test_a_plugins_webhook_is_registered_and_listed() -> None:
    plugins = load_plugins(entry_points=False, extra=[("acme", AcmePlugin())])
    assert plugins.info["acme"].registered["webhooks"] == ["acme"]
    assert plugins.webhooks == {"acme": AcmeHook}


def test_cdp_plugins_lists_the_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    plugins = load_plugins(entry_points=False, extra=[("acme", AcmePlugin()), ("lost", Orphan())])
    monkeypatch.setattr(common, "plugins", lambda: plugins)
    shown = {p["name"]: p["registered"] for p in json.loads(CliRunner().invoke(app, ["plugins", "--json"]).stdout)}
    assert shown["acme"] == {"sources": ["acme"], "webhooks": ["acme"]}
    assert shown["lost"] == {"webhooks": ["nobody (no such source type)"]}
    table = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["plugins"]).stdout
    assert "sources: acme; webhooks: acme" in table
    assert "webhooks: nobody (no such source type)" in table


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [(NotAWebhook(), "subclass of cdp_core.webhooks.Webhook"), (NoStreams(), "streams must name")],
)
def test_a_bad_webhook_marks_the_plugin_broken(plugin: object, expected: str) -> None:
    plugins = load_plugins(entry_points=False, extra=[("acme", plugin)])
    info = plugins.info["acme"]
    assert info.status == "broken" and expected in (info.error or "")
    assert plugins.webhooks == {}


def test_a_webhook_of_a_type_no_source_registers_is_left_out_and_shown() -> None:
    plugins = load_plugins(entry_points=False, extra=[("acme", Orphan())])
    assert plugins.webhooks == {}
    assert plugins.info["acme"].registered["webhooks"] == ["nobody (no such source type)"]


def test_two_plugins_registering_one_type_conflict() -> None:
    plugins = load_plugins(entry_points=False, extra=[("acme", AcmePlugin()), ("other", Orphan())])
    assert plugins.webhooks == {"acme": AcmeHook}
    twice = type("Twice", (), {"cdp_register_webhooks": hookimpl(lambda self, register: register("acme", AcmeHook))})
    plugins = load_plugins(entry_points=False, extra=[("acme", AcmePlugin()), ("twice", twice())])
    assert plugins.webhooks == {}
    message = plugins.registry.conflict_message("webhook", "acme") or ""
    assert "webhook 'acme' is registered by more than one plugin" in message
    assert "acme" in message.split(":")[-1] and "twice" in message.split(":")[-1]
    assert plugins.info["twice"].registered["webhooks"] == ["acme (conflict)"]


def test_the_base_class_is_built_with_config_and_context_and_knows_no_handshake() -> None:
    hook = AcmeHook(NoOptions(), ConnectorContext(name="shop"))
    assert hook.handshake({"hub.mode": "subscribe"}) is None and hook.unavailable() is None
    at = datetime(2024, 5, 1, tzinfo=UTC)
    signature = "sha256=" + hmac.new(SECRET.get_secret_value().encode(), BODY, hashlib.sha256).hexdigest()
    assert hook.verify({"x-acme-signature": signature}, BODY)
    [entry] = hook.entries({}, BODY, at)
    assert entry == IngestEntry("shop", body_digest(BODY), "acme", {"id": 1, "email": "ada@example.com"}, at)


def _hex(body: bytes, secret: str = SECRET.get_secret_value()) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _b64(body: bytes, secret: str = SECRET.get_secret_value()) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize(
    ("given", "encoding", "prefix", "ok"),
    [
        (_b64(BODY), "base64", "", True),
        ("sha256=" + _b64(BODY), "base64", "sha256=", True),
        ("sha256=" + _hex(BODY), "hex", "sha256=", True),
        ("sha256=" + _hex(BODY).upper(), "hex", "sha256=", True),
        (_hex(BODY), "hex", "sha256=", False),  # no prefix
        ("sha1=" + _hex(BODY), "hex", "sha256=", False),  # another algorithm
        ("sha256=" + _hex(BODY + b" "), "hex", "sha256=", False),  # another body
        (_b64(BODY, "other-secret"), "base64", "", False),
        ("", "base64", "", False),
        (None, "base64", "", False),
        ("sha256=é" + _hex(BODY)[1:], "hex", "sha256=", False),  # not ASCII: False, not TypeError
    ],
)
def test_signature_matches(given: str | None, encoding: Any, prefix: str, ok: bool) -> None:
    assert signature_matches(SECRET, BODY, given, encoding=encoding, prefix=prefix) is ok


def test_no_secret_verifies_nothing() -> None:
    assert not signature_matches(None, BODY, _b64(BODY), encoding="base64")
    assert not signature_matches(SecretStr(""), BODY, _b64(BODY, ""), encoding="base64")


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert signature_matches(SECRET, BODY, _b64(BODY), encoding="base64")
    assert calls == [(_b64(BODY).encode(), _b64(BODY).encode())]


def test_header_is_case_insensitive() -> None:
    assert header({"X-Shopify-Topic": "orders/create"}, "x-shopify-topic") == "orders/create"
    assert header({"x-shopify-topic": "orders/create"}, "X-Shopify-Topic") == "orders/create"
    assert header({}, "X-Shopify-Topic") is None


def test_json_body_says_what_is_wrong() -> None:
    with pytest.raises(WebhookPayloadError, match="acme: the body is not JSON"):
        json_body(b"{nope", "acme")
    with pytest.raises(WebhookPayloadError, match="acme: the body is a JSON list, not an object"):
        json_body(b"[1]", "acme")
    assert body_digest(BODY) == body_digest(BODY) != body_digest(BODY + b" ")


def test_entry_item_names_the_fields_never_their_values() -> None:
    from pydantic import BaseModel

    from cdp_core.webhooks import EntryRejected, entry_item

    class Thing(BaseModel):
        id: int

    assert entry_item({"id": 3}, Thing, where="acme orders/create").id == 3
    with pytest.raises(EntryRejected, match=r"acme orders/create: does not match Thing: id: ") as caught:
        entry_item({"id": "ada@example.com"}, Thing, where="acme orders/create")
    assert "ada@example.com" not in str(caught.value)


def test_unavailable_names_the_secret_options_not_set() -> None:
    from pydantic import SecretStr as Secret

    from cdp_core import PluginConfig

    class Options(PluginConfig):
        secret: Secret | None = None
        token: Secret | None = None

    class Guarded(AcmeHook):
        secret_options = ("secret", "token")

    context = ConnectorContext(name="acme")
    assert Guarded(Options(), context).unavailable() == "[connectors.acme] sets no secret and no token"
    assert Guarded(Options(secret=Secret("s")), context).unavailable() == "[connectors.acme] sets no token"
    assert (
        Guarded(Options(secret=Secret(""), token=Secret("t")), context).unavailable()
        == "[connectors.acme] sets no secret"
    )
    assert Guarded(Options(secret=Secret("s"), token=Secret("t")), context).unavailable() is None
