"""The one HTTP layer every plugin uses (docs/http.md).

A plugin asks for a client with :func:`client_for` (or
``context.services["http"].client(...)`` inside the runner)::

    from cdp_core.http import BearerAuth, RateLimit, client_for

    client = client_for(
        context,
        base_url="https://api.hubapi.com",
        auth=BearerAuth(config.token),
        rate_limit=RateLimit(190, per=10),
        max_concurrency=4,
    )
    body = client.get_json("/crm/v3/objects/contacts", params={"limit": 100})

Every request waits for the connector's rate limit and concurrency slot, is
retried on 429, 5xx and connection failures with backoff (``Retry-After``
honoured), is logged at DEBUG with secrets redacted, and fails with an
:class:`HttpError` that names the connector.
"""

from cdp_core.http.auth import (
    ApiKeyHeader,
    ApiKeyQuery,
    BasicAuth,
    BearerAuth,
    FileTokenStore,
    MemoryTokenStore,
    OAuth2RefreshAuth,
    OAuthTokens,
    SecretAuth,
    TokenStore,
    reveal,
)
from cdp_core.http.client import HttpClient, RetryPolicy, Timeouts, retry_after, server_time
from cdp_core.http.errors import (
    SENSITIVE_PARAMS,
    AuthError,
    ClientError,
    HttpError,
    NetworkError,
    RateLimited,
    ResponseError,
    ServerError,
    check_base_url,
    describe_validation,
    error_body,
    error_url,
    log_url,
    response_json,
)
from cdp_core.http.factory import HttpFactory, client_for, default_factory, set_default_factory
from cdp_core.http.limits import FakeClock, LeakyBucketHeader, Limiter, RateLimit, RatePolicy
from cdp_core.http.paging import (
    BodyPath,
    CursorPage,
    cursor_pages,
    json_path,
    link_pages,
    next_link,
    next_url_pages,
    offset_pages,
    page_number_pages,
)

__all__ = [
    "SENSITIVE_PARAMS",
    "check_base_url",
    "error_body",
    "ApiKeyHeader",
    "ApiKeyQuery",
    "AuthError",
    "BasicAuth",
    "BearerAuth",
    "BodyPath",
    "ClientError",
    "CursorPage",
    "FakeClock",
    "FileTokenStore",
    "HttpClient",
    "HttpError",
    "HttpFactory",
    "LeakyBucketHeader",
    "Limiter",
    "MemoryTokenStore",
    "NetworkError",
    "OAuth2RefreshAuth",
    "OAuthTokens",
    "RateLimit",
    "RateLimited",
    "RatePolicy",
    "ResponseError",
    "RetryPolicy",
    "SecretAuth",
    "ServerError",
    "Timeouts",
    "TokenStore",
    "client_for",
    "cursor_pages",
    "default_factory",
    "describe_validation",
    "error_url",
    "json_path",
    "link_pages",
    "log_url",
    "next_link",
    "next_url_pages",
    "offset_pages",
    "page_number_pages",
    "response_json",
    "retry_after",
    "reveal",
    "server_time",
    "set_default_factory",
]
