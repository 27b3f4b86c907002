"""The kit's webhook conformance suite (cdp_core.testing.webhook_conformance): it passes a webhook that keeps its
contract and fails each deliberately broken one on the case that names the break (run with pytester)."""

from __future__ import annotations

import pytest
from kit_outcomes import failing, suite_outcomes

from cdp_core.testing.webhook_conformance import HmacSignature

pytest_plugins = ["pytester"]

WEBHOOKS = """
import hashlib
import uuid
from typing import Any, ClassVar

from pydantic import SecretStr

from cdp_core import PluginConfig, Record, RecordKind, Register, Source, hookimpl
from cdp_core.ingest import IngestEntry, IngestLogStream
from cdp_core.testing.webhook_conformance import Delivery, Handshake, HmacSignature, WebhookConformance
from cdp_core.webhooks import EntryRejected, Webhook, header, json_body, signature_matches

pytest_plugins = ["cdp_core.testing"]


class ShopConfig(PluginConfig):
    secret: SecretStr | None = None
    verify_token: SecretStr | None = None


class Items(IngestLogStream):
    # {"id": K} upserts item K, {"id": K, "gone": true} deletes it, {"id": null} gives no record.
    name = "webhook_items"
    emits_deletions = True

    def __init__(self, source):
        super().__init__(self.name, source=source.context.name, store_url=source.context.store_url,
                         kind=RecordKind.profile)

    def records(self, entry):
        key = entry.body.get("id")
        if key is None:
            raise EntryRejected("no id")
        if entry.body.get("gone"):
            return [Record(stream=f"{entry.source}.webhook_items", key=str(key), deleted=True)]
        return [Record(stream=f"{entry.source}.webhook_items", key=str(key), data=entry.body,
                       identifiers={"email": f"{key}@example.com"})]


class Shop(Source):
    config_model = ShopConfig

    def streams(self):
        return [Items(self)]


class Good(Webhook):
    streams = ("webhook_items",)
    secret_options = ("secret",)

    def verify(self, headers, body):
        return signature_matches(self.config.secret, body, header(headers, "X-Sig"), encoding="hex", prefix="sha256=")

    def message_id(self, headers, body):
        return header(headers, "X-Delivery") or ""

    def entries(self, headers, body, received_at):
        payload = json_body(body, "shop webhook")
        if payload.get("ignore"):
            return []
        return [IngestEntry(self.context.name, self.message_id(headers, body), "item", payload, received_at)]


class Unchecked(Good):
    def verify(self, headers, body):
        return True


class NewIdEachTime(Good):
    def message_id(self, headers, body):
        return str(uuid.uuid4())


class Lenient(Good):
    def entries(self, headers, body, received_at):
        try:
            return super().entries(headers, body, received_at)
        except ValueError:
            return []


class Secretless(Good):
    secret_options = ()


class Hub(Good):
    # the hub style: hub.mode=subscribe, the shared token, the challenge answered as it came
    secret_options = ("secret", "verify_token")

    def handshake(self, query):
        token = self.config.verify_token
        if query.get("hub.mode") != "subscribe" or token is None:
            return None
        if not self.token_matches(query.get("hub.verify_token"), token.get_secret_value()):
            return None
        return query.get("hub.challenge") or None

    def token_matches(self, given, token):
        return given == token


class HubAnyToken(Hub):
    def token_matches(self, given, token):
        return True


class HubSecretless(Hub):
    secret_options = ()


class Undeclared(Items):
    emits_deletions = False


class Plugin:
    def __init__(self, type_name, webhook, stream=Items):
        self.type_name, self.webhook, self.stream = type_name, webhook, stream

    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        stream = self.stream

        class Connector(Shop):
            def streams(self):
                return [stream(self)]

        register(self.type_name, Connector)

    @hookimpl
    def cdp_register_webhooks(self, register: Register) -> None:
        register(self.type_name, self.webhook)


def delivery(n, payload, **expected):
    import json
    return Delivery(json.dumps(payload).encode(), {"X-Delivery": f"d{n}", "Content-Type": "application/json"},
                    **expected)


class Base(WebhookConformance):
    config: ClassVar[dict[str, Any]] = {"secret": "s3cret"}
    stream = "webhook_items"
    signature = HmacSignature(header="X-Sig", secret_option="secret", encoding="hex", prefix="sha256=")

    def deliveries(self):
        return [
            delivery(1, {"id": 1}, keys=("1",)),
            delivery(2, {"id": 2, "ignore": True}),
            delivery(3, {"id": None}, rejected=True),
            delivery(4, {"id": 3}, keys=("3",)),
            delivery(5, {"id": 1, "gone": True}, deleted=("1",)),
        ]


class TestGood(Base):
    plugin = Plugin("good", Good)
    type_name = "good"


class TestRetryAmongDeliveries(Base):
    # the vendor's retry of delivery 1 listed with the others: logged once, read once
    plugin = Plugin("retried", Good)
    type_name = "retried"

    def deliveries(self):
        first = delivery(1, {"id": 1}, keys=("1",))
        retry = Delivery(first.body, first.headers)
        return [first, delivery(4, {"id": 3}, keys=("3",)), retry, delivery(5, {"id": 3, "gone": True}, deleted=("3",))]


class TestUnchecked(Base):
    plugin = Plugin("unchecked", Unchecked)
    type_name = "unchecked"


class TestNewIdEachTime(Base):
    plugin = Plugin("newid", NewIdEachTime)
    type_name = "newid"


class TestLenient(Base):
    plugin = Plugin("lenient", Lenient)
    type_name = "lenient"


class TestSecretless(Base):
    plugin = Plugin("secretless", Secretless)
    type_name = "secretless"


class TestUndeclared(Base):
    plugin = Plugin("undeclared", Good, Undeclared)
    type_name = "undeclared"


class TestWrongExpectations(Base):
    plugin = Plugin("wrong", Good)
    type_name = "wrong"

    def deliveries(self):
        return [delivery(1, {"id": 1}, keys=("1",)), delivery(2, {"id": 2}, keys=("3",))]


class HubBase(Base):
    config: ClassVar[dict[str, Any]] = {"secret": "s3cret", "verify_token": "tok-42"}
    handshake = Handshake(
        query={"hub.mode": "subscribe", "hub.verify_token": "tok-42", "hub.challenge": "1158201444"},
        answer="1158201444",
        token_param="hub.verify_token",
        refused=({"hub.mode": "unsubscribe", "hub.verify_token": "tok-42", "hub.challenge": "1158201444"},),
    )


class TestHub(HubBase):
    plugin = Plugin("hub", Hub)
    type_name = "hub"


class TestHubAnyToken(HubBase):
    plugin = Plugin("hubany", HubAnyToken)
    type_name = "hubany"


class TestHubSecretless(HubBase):
    plugin = Plugin("hubsecretless", HubSecretless)
    type_name = "hubsecretless"


class TestHubUndeclared(Base):
    plugin = Plugin("hubundeclared", Hub)
    type_name = "hubundeclared"
    config: ClassVar[dict[str, Any]] = {"secret": "s3cret", "verify_token": "tok-42"}


class TestHandshakeWithoutOne(HubBase):
    plugin = Plugin("nohub", Good)
    type_name = "nohub"


class TestNoDeliveries(Base):
    plugin = Plugin("none", Good)
    type_name = "none"

    def deliveries(self):
        return []
"""


CASES = {
    "test_registered",
    "test_config_model",
    "test_config_validates",
    "test_webhook_registered",
    "test_signed_deliveries_are_read",
    "test_a_retry_is_stored_once",
    "test_deliveries_after_the_cursor",
    "test_bad_signatures_are_refused",
    "test_without_its_secret_every_delivery_is_refused",
    "test_an_unreadable_body_is_refused",
    "test_declared_deletions",
    "test_subscription_handshake",
}


def test_the_webhook_suite_passes_a_good_webhook_and_fails_broken_ones(pytester: pytest.Pytester) -> None:
    results = suite_outcomes(pytester, WEBHOOKS)
    assert not [n for n, (o, _) in results.items() if o == "skipped"], "the suite never skips"
    assert {n.split("::")[1] for n in results if n.startswith("TestGood::")} == CASES
    assert failing(results, "TestGood") == set()
    assert failing(results, "TestRetryAmongDeliveries") == set()
    failure = {name: text for name, (outcome, text) in results.items() if outcome == "failed"}
    assert failing(results, "TestUnchecked") == {"test_bad_signatures_are_refused"}
    assert "delivery 0 with a tampered body: answered 200" in failure["TestUnchecked::test_bad_signatures_are_refused"]
    assert failing(results, "TestNewIdEachTime") == {"test_a_retry_is_stored_once"}
    assert "the retries were logged again: 4 accepted" in failure["TestNewIdEachTime::test_a_retry_is_stored_once"]
    assert failing(results, "TestLenient") == {"test_an_unreadable_body_is_refused"}
    assert "answered 200" in failure["TestLenient::test_an_unreadable_body_is_refused"]
    assert failing(results, "TestSecretless") == {
        "test_webhook_registered",
        "test_without_its_secret_every_delivery_is_refused",
    }
    assert "Secretless.secret_options is empty" in failure["TestSecretless::test_webhook_registered"]
    assert failing(results, "TestUndeclared") == {"test_declared_deletions"}
    assert (
        "deliveries [4] expect tombstones, but stream 'webhook_items' does not declare emits_deletions"
        in failure["TestUndeclared::test_declared_deletions"]
    )
    wrong = failing(results, "TestWrongExpectations")
    assert wrong == {"test_signed_deliveries_are_read", "test_a_retry_is_stored_once", "test_deliveries_after_the_cursor",
                     "test_declared_deletions"}  # fmt: skip
    assert (
        "declares emits_deletions: add a delivery of the vendor's deletion"
        in failure["TestWrongExpectations::test_declared_deletions"]
    )
    assert (
        "the stream read (key, deleted) [('1', False), ('2', False)], expected [('1', False), ('3', False)]"
        in failure["TestWrongExpectations::test_signed_deliveries_are_read"]
    )
    assert "implement deliveries()" in failure["TestNoDeliveries::test_signed_deliveries_are_read"]
    _check_handshake_cases(results, failure)


def _check_handshake_cases(results: dict[str, tuple[str, str]], failure: dict[str, str]) -> None:
    """test_subscription_handshake passes a hub-style check and fails each broken one (same pytester run)."""
    assert {n.split("::")[1] for n in results if n.startswith("TestHub::")} == CASES
    assert failing(results, "TestHub") == set()
    assert failing(results, "TestHubAnyToken") == {"test_subscription_handshake"}
    assert (
        "the subscription check {'hub.mode': 'subscribe', 'hub.verify_token': 'tok-42-not-it', "
        "'hub.challenge': '1158201444'}: answered 200" in failure["TestHubAnyToken::test_subscription_handshake"]
    )
    assert failing(results, "TestHubSecretless") == {
        "test_webhook_registered",
        "test_without_its_secret_every_delivery_is_refused",
        "test_subscription_handshake",
    }
    assert "the check without the secrets: answered 200" in failure["TestHubSecretless::test_subscription_handshake"]
    assert failing(results, "TestHubUndeclared") == {"test_subscription_handshake"}
    assert (
        "Hub answers GET subscription checks (it overrides Webhook.handshake): set handshake = Handshake("
        in failure["TestHubUndeclared::test_subscription_handshake"]
    )
    assert failing(results, "TestHandshakeWithoutOne") == {"test_subscription_handshake"}
    assert (
        "handshake is set, but Good does not override Webhook.handshake"
        in failure["TestHandshakeWithoutOne::test_subscription_handshake"]
    )


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        (HmacSignature("X-Shopify-Hmac-Sha256", "webhook_secret"), "A971iWIMgT8Zj9A9eWfikrFj7wQ16/Qwcc4OlRl2PLc="),
        (
            HmacSignature("X-Hub-Signature-256", "app_secret", encoding="hex", prefix="sha256="),
            "sha256=03def589620c813f198fd03d7967e292b163ef0435ebf43071ce0e9519763cb7",
        ),
    ],
)
def test_hmac_signature_signs_the_raw_body(signature: HmacSignature, expected: str) -> None:
    assert signature.sign(b'{"id":1}', "secret") == {signature.header: expected}
