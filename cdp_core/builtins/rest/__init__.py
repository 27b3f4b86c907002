"""The declarative REST source (``type = "rest"``): a vendor's list endpoints as configuration, no code.

See docs/rest-source.md. The options are the models of :mod:`.config`; each stream
(:mod:`.stream`) pages with the kernel's paging helpers, resumes with
:class:`~cdp_core.incremental.Incremental`, and maps items to records (:mod:`.mapping`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import httpx

from cdp_core import Register, hookimpl
from cdp_core.base import ConnectorContext, Source, Stream
from cdp_core.builtins.rest.config import (
    ApiKeyAuthConfig,
    BasicAuthConfig,
    BearerAuthConfig,
    OAuth2RefreshConfig,
    RestSourceConfig,
)
from cdp_core.builtins.rest.stream import RestStream
from cdp_core.http import (
    ApiKeyHeader,
    ApiKeyQuery,
    BasicAuth,
    BearerAuth,
    FileTokenStore,
    HttpClient,
    OAuth2RefreshAuth,
    RateLimit,
    client_for,
)


class RestSource(Source):
    """A REST API read as configured in ``[connectors.NAME]`` (``type = "rest"``)."""

    config_model = RestSourceConfig
    config: RestSourceConfig

    def __init__(self, config: RestSourceConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._streams = [RestStream(self, name, stream) for name, stream in config.streams.items()]

    @cached_property
    def client(self) -> HttpClient:
        """Made on first use: an OAuth2 source reads its saved tokens then, never in ``streams()``."""
        config = self.config
        rate = config.rate_limit
        return client_for(
            self.context,
            base_url=config.base_url,
            auth=self._auth(),
            headers=config.headers,
            params=config.params or None,
            rate_limit=RateLimit(rate.requests, per=rate.per) if rate is not None else None,
            max_concurrency=config.max_concurrency,
        )

    def _auth(self) -> httpx.Auth | None:
        auth = self.config.auth
        if isinstance(auth, BearerAuthConfig):
            return BearerAuth(auth.token)
        if isinstance(auth, BasicAuthConfig):
            return BasicAuth(auth.username, auth.password)
        if isinstance(auth, ApiKeyAuthConfig):
            if auth.location == "query":
                return ApiKeyQuery(auth.name, auth.api_key)
            return ApiKeyHeader(auth.name, auth.api_key, prefix=auth.prefix)
        if isinstance(auth, OAuth2RefreshConfig):
            store = FileTokenStore(self.context.resolve(f".cdp/tokens/{self.context.name}.json"))
            return OAuth2RefreshAuth(
                auth.token_url, client_id=auth.client_id, client_secret=auth.client_secret,
                refresh_token=auth.refresh_token, store=store, scope=auth.scope, client_auth=auth.client_auth,
            )  # fmt: skip
        return None

    def streams(self) -> Sequence[Stream]:
        return self._streams

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()


@hookimpl
def cdp_register_sources(register: Register) -> None:
    register("rest", RestSource)


__all__ = ["RestSource", "RestSourceConfig", "RestStream"]
