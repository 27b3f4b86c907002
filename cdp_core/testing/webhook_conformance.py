"""The conformance suite of a vendor webhook and the stream that reads what it logged, through ``cdp serve``.

A connector type whose plugin registers a :class:`~cdp_core.webhooks.Webhook` is tested one
webhook stream at a time: signed deliveries, in the vendor's documented shapes, are posted to
``/webhooks/CONNECTOR`` of ``cdp serve``'s real application (:func:`cdp_core.testing.serve.serve_config`),
then the stream reads the ingest log. Each :class:`Delivery` says which records the stream
makes of it (live ones, tombstones, or a quarantined entry); the suite signs every delivery
itself (:class:`HmacSignature`, or an overridden :meth:`WebhookConformance.sign`), so it can
also send what the vendor never sends: a tampered body, another secret's signature, none at
all, a connector without its secret. See docs/testing.md.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
import pytest

from cdp_core.base import Page, Source, Stream
from cdp_core.plugins import Plugins, Role
from cdp_core.records import JsonValue
from cdp_core.testing.conformance_base import PluginConformance, identifiers_problem, new_source
from cdp_core.testing.deletions import tombstone_problem
from cdp_core.testing.helpers import make_context, roundtrip, to_toml
from cdp_core.testing.serve import Served, serve_config
from cdp_core.webhooks import Webhook, hmac_sha256

__all__ = ["Delivery", "Handshake", "HmacSignature", "WebhookConformance"]


@dataclass(frozen=True)
class Delivery:
    """One request of the vendor, unsigned (the suite signs it), and what the stream under test makes of it."""

    body: bytes
    """The raw body, byte for byte as the vendor sends it: what the signature covers."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """The vendor's headers but the signature (topic, delivery id, ...); each delivery its own delivery id, but
    the vendor's retry of an earlier delivery (the same request again, with no keys: the stream reads it once)."""
    keys: tuple[str, ...] = ()
    """The keys of the live records the stream reads from it, in order (none: not for this stream)."""
    deleted: tuple[str, ...] = ()
    """The keys of the tombstones (``Record.deleted``) it reads from it, after the live ones."""
    rejected: bool = False
    """The stream quarantines the logged entry (it cannot become a record), with a reason."""


@dataclass(frozen=True)
class HmacSignature:
    """A signature that is the HMAC-SHA256 of the raw body keyed with a config option, in one header."""

    header: str
    """The header that carries it (``X-Shopify-Hmac-Sha256``)."""
    secret_option: str
    """The connector's option holding the key (``webhook_secret``)."""
    encoding: Literal["base64", "hex"] = "base64"
    prefix: str = ""
    """Written before the digest (``sha256=``)."""

    def sign(self, body: bytes, secret: str) -> dict[str, str]:
        digest = hmac_sha256(secret, body)
        text = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode("ascii")
        return {self.header: self.prefix + text}


@dataclass(frozen=True)
class Handshake:
    """A vendor's subscription check: a GET to the webhook's URL, whose query the webhook answers with a text.

    The hub style of Meta's Graph API webhooks (and WebSub, Strava): ``hub.mode=subscribe``,
    ``hub.verify_token`` (a token shared through the config) and ``hub.challenge``, answered as it came.
    """

    query: Mapping[str, str]
    """A check as the vendor sends it, the config's token in it."""
    answer: str
    """The text the vendor expects back (Meta: the ``hub.challenge`` value)."""
    token_param: str | None = None
    """The query parameter that carries the shared token: the suite also sends it wrong, and leaves it out."""
    refused: tuple[Mapping[str, str], ...] = ()
    """Other checks the webhook must refuse, though their token is right (another ``hub.mode``, no challenge)."""


def _without(headers: Mapping[str, str], names: list[str]) -> dict[str, str]:
    drop = {name.lower() for name in names}
    return {k: v for k, v in headers.items() if k.lower() not in drop}


def _check_secret_options(webhook_class: type[Webhook]) -> None:
    assert webhook_class.secret_options, (
        f"{webhook_class.__name__}.secret_options is empty: name the options it cannot verify a delivery without, "
        "so that cdp serve refuses every delivery when they are not set"
    )


class WebhookConformance(PluginConformance):
    """The contract of a connector type's webhook and one of the streams that read it (:attr:`stream`).

    Set ``plugin``, ``type_name`` (the connector type, whose source reads the log), ``config``,
    ``stream``, ``signature`` (or override :meth:`sign`) and implement :meth:`deliveries`.
    """

    role: ClassVar[Role] = "source"
    config: ClassVar[dict[str, Any]]
    """The connector's options (``[connectors.X]`` without ``type``), its webhook secret included."""
    stream: ClassVar[str]
    """The webhook stream under test (one of the webhook's ``streams``)."""
    connector_name: ClassVar[str] = "conformance"
    """The connector's name: deliveries go to ``/webhooks/conformance``."""
    signature: ClassVar[HmacSignature | None] = None
    unreadable_body: ClassVar[bytes] = b'{"not json'
    """A body the webhook cannot read: signed and sent with a delivery's headers, it must get 400."""
    handshake: ClassVar[Handshake | None] = None
    """The vendor's GET subscription check, for a webhook that answers one (none: GET gets 405)."""

    # -- hooks an integrator overrides ---------------------------------------------------
    def deliveries(self) -> list[Delivery]:
        """At least two deliveries, in the vendor's documented shapes, each with what :attr:`stream` reads of it."""
        return []

    def sign(self, body: bytes, secret: str) -> dict[str, str]:
        """The headers that sign ``body`` with ``secret`` (default: :attr:`signature`)."""
        assert self.signature is not None, (
            "set signature = HmacSignature(header=..., secret_option=...), or override sign(body, secret)"
        )
        return self.signature.sign(body, secret)

    def secret(self) -> str:
        """The secret the vendor signs with: the config's value of the signature's option."""
        assert self.signature is not None, "set signature, or override secret() along with sign()"
        return str(self.config[self.signature.secret_option])

    # -- fixtures ------------------------------------------------------------------------
    @pytest.fixture
    def webhook_store_url(self, cdp_store_url: str) -> str:
        """The store of the served application (override with the ``store_url`` fixture for both databases)."""
        return cdp_store_url

    @pytest.fixture
    def webhook_class(self, conformance_plugins: Plugins) -> type[Webhook]:
        found = conformance_plugins.webhooks.get(self.type_name)
        assert found is not None, (
            f"no webhook is registered for connector type {self.type_name!r} (cdp_register_webhooks); "
            f"webhook types: {sorted(conformance_plugins.webhooks)}"
        )
        return found

    def _serve(
        self, tmp_path: Path, plugins: Plugins, store_url: str, config: dict[str, Any]
    ) -> AbstractContextManager[Served]:
        lines = [f"[connectors.{self.connector_name}]", f"type = {to_toml(self.type_name)}"]
        lines += [f"{key} = {to_toml(value)}" for key, value in config.items() if value is not None]
        return serve_config(tmp_path, "\n".join(lines) + "\n", plugins, store_url=store_url)

    @pytest.fixture
    def served(self, tmp_path: Path, conformance_plugins: Plugins, webhook_store_url: str) -> Iterator[Served]:
        """``cdp serve``'s application of a connectors.toml with the connector (``config``)."""
        with self._serve(tmp_path, conformance_plugins, webhook_store_url, dict(self.config)) as served:
            yield served

    @pytest.fixture
    def read(
        self, plugin_class: type, tmp_path: Path, webhook_store_url: str
    ) -> Iterator[Callable[[JsonValue], list[Page]]]:
        """``read(cursor)``: every page of the stream from ``cursor``, by a new source on the served store."""
        built: list[Source] = []

        def read(cursor: JsonValue) -> list[Page]:
            source = self._source(plugin_class, tmp_path, webhook_store_url)
            built.append(source)
            return list(source.stream(self.stream).read(roundtrip(cursor)))

        yield read
        for source in built:
            source.close()

    # -- the suite's own steps ------------------------------------------------------------
    def _source(self, plugin_class: type, tmp_path: Path, store_url: str | None = None) -> Source:
        """A new source of ``config`` (building it does no I/O: the source suite checks that)."""
        return new_source(plugin_class, self.config, make_context(tmp_path, self.connector_name, store_url=store_url))

    def _deliveries(self) -> list[Delivery]:
        deliveries = self.deliveries()
        assert len(deliveries) >= 2, (
            "implement deliveries(): at least two deliveries in the vendor's documented shapes, each with the keys "
            f"of the records stream {self.stream!r} reads of it (Delivery(body, headers, keys=..., deleted=...))"
        )
        assert any(d.keys or d.deleted for d in deliveries), (
            f"deliveries(): none of them gives a record of stream {self.stream!r}"
        )
        return deliveries

    def _post(
        self,
        served: Served,
        delivery: Delivery,
        *,
        body: bytes | None = None,
        signed: bytes | None = None,
        secret: str | None = None,
        unsigned: bool = False,
    ) -> httpx.Response:
        """POST ``delivery`` (or ``body`` with its headers), signed as :meth:`sign` does unless told otherwise:
        the signature of ``signed`` (default: the body sent), with ``secret`` (default: :meth:`secret`), or none."""
        sent = delivery.body if body is None else body
        signature = self.sign(sent if signed is None else signed, self.secret() if secret is None else secret)
        headers = _without(delivery.headers, list(signature))
        if not unsigned:
            headers |= signature
        return served.client.post(f"/webhooks/{self.connector_name}", content=sent, headers=headers)

    def _deliver(self, served: Served, deliveries: list[Delivery]) -> tuple[int, int]:
        """Post each delivery; return how many entries the server logged, and how many it dropped as duplicates
        (a vendor's retry among the deliveries)."""
        accepted = duplicates = 0
        for number, delivery in enumerate(deliveries):
            answer = self._post(served, delivery)
            assert answer.status_code == 200, f"delivery {number}: answered {answer.status_code}: {answer.text}"
            accepted += answer.json()["accepted"]
            duplicates += answer.json()["duplicates"]
        return accepted, duplicates

    def _target(self, plugin_class: type, tmp_path: Path) -> Stream:
        """The stream whose records this one delivers (its ``records_of``, else itself)."""
        offered = {s.name: s for s in self._source(plugin_class, tmp_path).streams()}
        assert self.stream in offered, f"stream {self.stream!r} is not offered; streams: {sorted(offered)}"
        named = offered[self.stream].records_of or self.stream
        assert named in offered, f"stream {self.stream!r}: records_of = {named!r} is no stream of the source"
        return offered[named]

    def _check_read(self, pages: list[Page], deliveries: list[Delivery], target: Stream, what: str) -> None:
        """The pages hold exactly the deliveries' records, in order, each one the store can take."""
        expected = [pair for d in deliveries for pair in [(k, False) for k in d.keys] + [(k, True) for k in d.deleted]]
        got: list[tuple[str, bool]] = []
        rejects = 0
        for number, page in enumerate(pages):
            try:
                json.dumps(page.cursor)
            except (TypeError, ValueError) as exc:
                pytest.fail(f"{what}: page {number}: cursor {page.cursor!r} is not JSON-safe: {exc}")
            for record in page.records:
                got.append((record.key, record.deleted is True))
                if record.deleted:
                    problem = tombstone_problem(record, target, self.connector_name)
                    assert problem is None, f"{what}: tombstone {record.key!r}: {problem}"
                    continue
                assert record.stream in (target.name, f"{self.connector_name}.{target.name}"), (
                    f"{what}: record {record.key!r}: stream {record.stream!r}, expected "
                    f"{self.connector_name}.{target.name!r} (the store holds the records under that name)"
                )
                assert record.kind == target.kind, (
                    f"{what}: record {record.key!r}: kind {record.kind}, not {target.kind}"
                )
                problem = identifiers_problem(record)
                assert problem is None, f"{what}: record {record.key!r}: {problem}"
            for reject in page.rejects:
                assert reject.reason and reject.reason.strip(), f"{what}: a quarantined entry without a reason"
            rejects += len(page.rejects)
        assert got == expected, f"{what}: the stream read (key, deleted) {got}, expected {expected}"
        wanted = sum(1 for d in deliveries if d.rejected)
        assert rejects == wanted, f"{what}: {rejects} entries quarantined, expected {wanted}"

    # -- tests ---------------------------------------------------------------------------
    def test_webhook_registered(self, webhook_class: type[Webhook], plugin_class: type, tmp_path: Path) -> None:
        """The type has a webhook that names the stream, whose secret options exist and hold the signing key."""
        assert self.stream in webhook_class.streams, (
            f"{webhook_class.__name__}.streams is {webhook_class.streams!r}: it does not name stream {self.stream!r}"
        )
        fields = plugin_class.config_model.model_fields  # type: ignore[attr-defined]
        _check_secret_options(webhook_class)
        unknown = sorted(set(webhook_class.secret_options) - set(fields))
        assert not unknown, f"secret_options {unknown} are no options of {plugin_class.__name__}.config_model"
        if self.signature is not None:
            assert self.signature.secret_option in webhook_class.secret_options, (
                f"the signature's key {self.signature.secret_option!r} is not in secret_options"
            )
        self._target(plugin_class, tmp_path)

    def test_signed_deliveries_are_read(
        self, served: Served, read: Callable[[JsonValue], list[Page]], plugin_class: type, tmp_path: Path
    ) -> None:
        """Signed deliveries get 200; the stream reads their records in delivery order, then nothing more."""
        deliveries = self._deliveries()
        assert self._deliver(served, deliveries)[0] > 0, "the server logged none of the deliveries"
        pages = read(None)
        self._check_read(pages, deliveries, self._target(plugin_class, tmp_path), "read from the start")
        final = pages[-1].cursor if pages else None
        again = [(r.key, r.deleted) for page in read(final) for r in page.records]
        assert not again, f"read again from the final cursor {final!r}: {again}"

    def test_a_retry_is_stored_once(
        self, served: Served, read: Callable[[JsonValue], list[Page]], plugin_class: type, tmp_path: Path
    ) -> None:
        """The same deliveries sent again (the vendor's retries) are answered 200, logged as duplicates, read once."""
        deliveries = self._deliveries()
        first, repeated = self._deliver(served, deliveries)  # repeated: a retry listed among the deliveries
        answers = [self._post(served, d) for d in deliveries]
        assert [a.status_code for a in answers] == [200] * len(deliveries), [a.text for a in answers]
        accepted = sum(a.json()["accepted"] for a in answers)
        duplicates = sum(a.json()["duplicates"] for a in answers)
        assert (accepted, duplicates) == (0, first + repeated), (
            f"the retries were logged again: {accepted} accepted, {duplicates} duplicates (first time: {first} logged, "
            f"{repeated} duplicates); log each delivery under the vendor's id of it (the same on every retry)"
        )
        self._check_read(read(None), deliveries, self._target(plugin_class, tmp_path), "after the retries")

    def test_deliveries_after_the_cursor(
        self, served: Served, read: Callable[[JsonValue], list[Page]], plugin_class: type, tmp_path: Path
    ) -> None:
        """A read from the cursor the last read ended with gives exactly what was delivered since."""
        deliveries, target = self._deliveries(), self._target(plugin_class, tmp_path)
        self._deliver(served, deliveries[:1])
        pages = read(None)
        self._check_read(pages, deliveries[:1], target, "after the first delivery")
        cursor = next((p.cursor for p in reversed(pages) if p.cursor is not None), None)
        self._deliver(served, deliveries[1:])
        self._check_read(read(cursor), deliveries[1:], target, f"the next read, from cursor {cursor!r}")

    def test_bad_signatures_are_refused(self, served: Served) -> None:
        """A tampered body, another secret's signature, or none at all: 401, and nothing is logged."""
        for number, delivery in enumerate(self._deliveries()):
            bad = {
                "a tampered body": self._post(served, delivery, body=delivery.body + b" ", signed=delivery.body),
                "another secret's signature": self._post(served, delivery, secret=self.secret() + "-not-it"),
                "no signature": self._post(served, delivery, unsigned=True),
            }
            for what, answer in bad.items():
                assert answer.status_code == 401, f"delivery {number} with {what}: answered {answer.status_code}"
        logged = [row.message_id for row in served.logged(self.connector_name)]
        assert not logged, f"requests without a valid signature were logged: {logged}"

    def test_without_its_secret_every_delivery_is_refused(
        self, webhook_class: type[Webhook], conformance_plugins: Plugins, webhook_store_url: str, tmp_path: Path
    ) -> None:
        """A connector that sets none of the webhook's secret options answers 401 to a well-signed delivery."""
        _check_secret_options(webhook_class)
        config = {k: v for k, v in self.config.items() if k not in webhook_class.secret_options}
        with self._serve(tmp_path, conformance_plugins, webhook_store_url, config) as served:
            for number, delivery in enumerate(self._deliveries()):
                answer = self._post(served, delivery)
                assert answer.status_code == 401, f"delivery {number} without the secret: answered {answer.status_code}"
            assert not served.logged(self.connector_name), "a connector without its secret logged deliveries"

    def test_an_unreadable_body_is_refused(self, served: Served) -> None:
        """A signed body the webhook cannot read (``unreadable_body``) gets 400, and nothing is logged."""
        kept = next(d for d in self._deliveries() if d.keys or d.deleted or d.rejected)
        answer = self._post(served, kept, body=self.unreadable_body)
        assert answer.status_code == 400, f"an unreadable signed body: answered {answer.status_code}: {answer.text}"
        assert not served.logged(self.connector_name), "an unreadable body was logged"

    def test_declared_deletions(self, plugin_class: type, tmp_path: Path) -> None:
        """Tombstones are expected of a stream that declares ``emits_deletions``, and only of one."""
        stream = self._source(plugin_class, tmp_path).stream(self.stream)
        deleting = [n for n, d in enumerate(self._deliveries()) if d.deleted]
        if stream.emits_deletions:
            assert deleting, (
                f"stream {self.stream!r} declares emits_deletions: add a delivery of the vendor's deletion "
                "(Delivery(..., deleted=(KEY,))) so the suite sees its tombstone read and applicable"
            )
        else:
            assert not deleting, (
                f"deliveries {deleting} expect tombstones, but stream {self.stream!r} does not declare emits_deletions"
            )

    def test_subscription_handshake(
        self,
        served: Served,
        webhook_class: type[Webhook],
        conformance_plugins: Plugins,
        webhook_store_url: str,
        tmp_path: Path,
    ) -> None:
        """The vendor's GET check (``handshake``) gets its answer; a wrong one, or one to a connector without its
        secrets, 401; a webhook that declares no check answers GET with 405. Nothing is logged."""
        url = f"/webhooks/{self.connector_name}"
        check = self.handshake
        if check is None:
            assert not webhook_class.has_handshake(), (
                f"{webhook_class.__name__} answers GET subscription checks (it overrides Webhook.handshake): set "
                "handshake = Handshake(query=..., answer=..., token_param=...) so the suite sends them"
            )
            answer = served.client.get(url, params={"hub.mode": "subscribe", "hub.challenge": "1"})
            assert answer.status_code == 405, f"a GET to a webhook without a handshake: answered {answer.status_code}"
        else:
            assert webhook_class.has_handshake(), (
                f"handshake is set, but {webhook_class.__name__} does not override Webhook.handshake: "
                "cdp serve answers every GET with 405"
            )
            answer = served.client.get(url, params=dict(check.query))
            assert (answer.status_code, answer.text) == (200, check.answer), (
                f"the subscription check {dict(check.query)}: answered {answer.status_code}: {answer.text!r}"
            )
            wrong = list(check.refused)
            if check.token_param is not None:
                wrong += [
                    {**check.query, check.token_param: f"{check.query[check.token_param]}-not-it"},
                    {k: v for k, v in check.query.items() if k != check.token_param},
                ]
            for query in wrong:
                answer = served.client.get(url, params=dict(query))
                assert answer.status_code == 401, (
                    f"the subscription check {dict(query)}: answered {answer.status_code}: {answer.text!r}"
                )
            config = {k: v for k, v in self.config.items() if k not in webhook_class.secret_options}
            apart = tmp_path / "secretless"  # its own connectors.toml, on the same store
            apart.mkdir()
            with self._serve(apart, conformance_plugins, webhook_store_url, config) as secretless:
                answer = secretless.client.get(url, params=dict(check.query))
                assert answer.status_code == 401, f"the check without the secrets: answered {answer.status_code}"
        logged = [row.message_id for row in served.logged(self.connector_name)]
        assert not logged, f"subscription checks were logged: {logged}"
