"""cdp-typeform: Typeform NPS survey answers as a cdp source (type ``typeform``).

Stream ``responses`` of one form: ``nps_response`` records (score from the NPS or
opinion-scale question chosen by ``score_field``, comment, survey, channel), the
respondent's email as identifier, incremental by Typeform's ``after`` token
(:mod:`cdp_typeform.source`). Typeform's webhook (``cdp serve``'s
``/webhooks/CONNECTOR``, :mod:`cdp_typeform.webhooks`) feeds stream
``webhook_responses`` with the same records. README.md shows a connectors.toml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp_core import Register, hookimpl
from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_typeform.api import TYPE_NAME, TypeformConfig
    from cdp_typeform.mapping import response_record
    from cdp_typeform.source import ResponsesStream, TypeformSource
    from cdp_typeform.webhooks import TypeformWebhook, WebhookResponses, response_records

# Imported on first use, not with the package: cdp imports every plugin's package to list its
# commands, and `cdp --help` should not pay for the HTTP client (docs/writing-plugins.md).
__getattr__ = lazy_exports(
    __name__,
    {
        "TYPE_NAME": "cdp_typeform.api",
        "TypeformConfig": "cdp_typeform.api",
        "response_record": "cdp_typeform.mapping",
        "ResponsesStream": "cdp_typeform.source",
        "TypeformSource": "cdp_typeform.source",
        "TypeformWebhook": "cdp_typeform.webhooks",
        "WebhookResponses": "cdp_typeform.webhooks",
        "response_records": "cdp_typeform.webhooks",
    },
)

__version__ = "0.1.0"

__all__ = [
    "TYPE_NAME",
    "ResponsesStream",
    "TypeformConfig",
    "TypeformSource",
    "TypeformWebhook",
    "WebhookResponses",
    "cdp_register_sources",
    "cdp_register_webhooks",
    "response_record",
    "response_records",
]


@hookimpl
def cdp_register_sources(register: Register) -> None:
    from cdp_typeform.api import TYPE_NAME
    from cdp_typeform.source import TypeformSource

    register(TYPE_NAME, TypeformSource)


@hookimpl
def cdp_register_webhooks(register: Register) -> None:
    from cdp_typeform.api import TYPE_NAME
    from cdp_typeform.webhooks import TypeformWebhook

    register(TYPE_NAME, TypeformWebhook)
