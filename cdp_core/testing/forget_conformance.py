"""The conformance of a destination's forget operation (``supports_forget``, cdp_core/forget.py).

Mix :class:`ForgetConformance` into a destination's :class:`DestinationConformance`
subclass (it uses its ``plugin_class``, ``config`` and ``make_context``), set
``forget_subject`` and implement :meth:`ForgetConformance.mock_forget`::

    class TestShopDestination(DestinationConformance, ForgetConformance):
        ...
        forget_subject = ForgetSubject(identifiers={"email": ["ana@example.com"]})

        def mock_forget(self, router, failure):
            route = router.post("https://api.shop.example/privacy/erase")
            route.mock(return_value=failure or httpx.Response(204))

Every test builds the destination as the privacy product does (no node options,
``open()``, ``forget``, ``close()``) and checks the mapping of the vendor's answers:
erased -> ``done``; 429 (its ``Retry-After`` kept), 5xx and no answer -> ``retry``; a
refusal (400) -> ``failed`` with a short answer that holds no identifier and no secret;
and that ``forget`` never raises for any of them. See docs/testing.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from cdp_core.base import ConnectorContext, Destination
from cdp_core.forget import ForgetResult, ForgetState, ForgetSubject

if TYPE_CHECKING:
    import respx

__all__ = ["ForgetConformance"]


def secret_values(model: BaseModel) -> list[str]:
    """Every ``SecretStr`` value a (validated) config holds."""
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found.extend(secret_values(value))
    return [v for v in found if v]


class ForgetConformance:
    """What every destination with ``supports_forget = True`` must do; mix into its DestinationConformance."""

    forget_subject: ClassVar[ForgetSubject]
    """The person to forget, with the identifiers the destination asks the vendor with."""
    config: ClassVar[dict[str, Any]]
    connector_name: ClassVar[str]

    def mock_forget(self, router: respx.Router, failure: httpx.Response | Exception | None) -> None:
        """Mock the vendor: answer every request as when it erases the person, but answer the request
        that asks it to erase with ``failure`` when one is given (a response, or an exception to raise)."""
        raise NotImplementedError("implement mock_forget(router, failure): mock the vendor's forget call(s)")

    def make_context(self, tmp_path: Path) -> ConnectorContext:  # DestinationConformance's
        raise NotImplementedError

    @pytest.fixture
    def forget_with(
        self, plugin_class: type, tmp_path: Path, cdp_respx: respx.Router
    ) -> Callable[[httpx.Response | Exception | None], ForgetResult]:
        """``forget_with(failure)``: mock the vendor, then build, open, forget, close as the privacy product does."""

        def run(failure: httpx.Response | Exception | None) -> ForgetResult:
            self.mock_forget(cdp_respx, failure)
            config = plugin_class.config_model.model_validate(self.config)  # type: ignore[attr-defined]
            destination = plugin_class(config, self.make_context(tmp_path), None)
            assert isinstance(destination, Destination)
            destination.open()
            try:
                result = destination.forget(self.forget_subject.model_copy(deep=True))
            finally:
                destination.close()
            assert isinstance(result, ForgetResult), f"forget() returned {type(result).__name__}, not a ForgetResult"
            return result

        return run

    def _check_answer(self, plugin_class: type, result: ForgetResult) -> None:
        config = plugin_class.config_model.model_validate(self.config)  # type: ignore[attr-defined]
        answer = result.answer.lower()
        for value in secret_values(config):
            assert value.lower() not in answer, f"the answer holds a secret of the config: {result.answer!r}"
        for values in self.forget_subject.identifiers.values():
            for value in values:
                assert value.lower() not in answer, f"the answer holds the identifier {value!r}: {result.answer!r}"
        assert len(result.answer) <= 300, f"the answer is too long ({len(result.answer)} characters)"

    def _refusal(self, plugin_class: type) -> httpx.Response:
        """A 400 whose body quotes the person and the config's secrets in every field vendors use for a message."""
        config = plugin_class.config_model.model_validate(self.config)  # type: ignore[attr-defined]
        quoted = " ".join([*(v for vs in self.forget_subject.identifiers.values() for v in vs), *secret_values(config)])
        text = f"refused: {quoted}"
        body = {
            "status": "error", "category": "VALIDATION_ERROR", "message": text, "title": "Invalid Resource",
            "detail": text, "error": {"message": text, "type": "OAuthException", "code": 100, "status": "INVALID_ARGUMENT"},
        }  # fmt: skip
        return httpx.Response(400, json=body)

    def test_forget_declared(self, plugin_class: type) -> None:
        """``supports_forget`` is True and ``forget`` is the class's own."""
        assert plugin_class.supports_forget is True, "set supports_forget = True to use ForgetConformance"  # type: ignore[attr-defined]
        assert plugin_class.forget is not Destination.forget, "supports_forget is True but forget() is not implemented"  # type: ignore[attr-defined]

    def test_forget_done(self, forget_with: Callable[..., ForgetResult], plugin_class: type) -> None:
        """The vendor erases the person: ``done``."""
        assert self.forget_subject.identifiers, "set forget_subject: a person with the identifiers the vendor needs"
        result = forget_with(None)
        assert result.state is ForgetState.done, f"the vendor erased the person, yet forget() said {result!r}"
        self._check_answer(plugin_class, result)

    def test_forget_throttled(self, forget_with: Callable[..., ForgetResult], plugin_class: type) -> None:
        """429 with ``Retry-After``: ``retry``, with the wait the vendor asked for."""
        result = forget_with(httpx.Response(429, headers={"Retry-After": "120"}, json={"message": "slow down"}))
        assert result.state is ForgetState.retry, f"a 429 must be retried later, forget() said {result!r}"
        assert result.retry_after == 120, f"the 429's Retry-After (120 s) was not kept: {result.retry_after!r}"
        self._check_answer(plugin_class, result)

    def test_forget_server_error(self, forget_with: Callable[..., ForgetResult], plugin_class: type) -> None:
        """5xx: ``retry``."""
        result = forget_with(httpx.Response(503, json={"message": "unavailable"}))
        assert result.state is ForgetState.retry, f"a 503 must be retried later, forget() said {result!r}"
        self._check_answer(plugin_class, result)

    def test_forget_network_error(self, forget_with: Callable[..., ForgetResult], plugin_class: type) -> None:
        """No answer at all (the connection reset): ``retry``, not an exception."""
        result = forget_with(httpx.RemoteProtocolError("connection reset by peer"))
        assert result.state is ForgetState.retry, (
            f"a request without an answer must be retried, forget() said {result!r}"
        )
        self._check_answer(plugin_class, result)

    def test_forget_refused(self, forget_with: Callable[..., ForgetResult], plugin_class: type) -> None:
        """A 400 is ``failed``, with the status in a short answer holding no identifier and no secret."""
        result = forget_with(self._refusal(plugin_class))
        assert result.state is ForgetState.failed, f"a 400 is a refusal for good, forget() said {result!r}"
        assert "400" in result.answer, f"the answer does not give the vendor's status: {result.answer!r}"
        self._check_answer(plugin_class, result)
