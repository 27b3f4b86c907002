"""cdp-mailchimp: a Mailchimp audience as a cdp source and destination (type ``mailchimp``).

- Source streams ``members`` (``profile`` records: merge fields, tags, status) and
  ``consents`` (``consent`` records for the purpose ``email``), both incremental by
  ``last_changed`` (:mod:`cdp_mailchimp.source`).
- Destination: upserts members with merge fields and tags, 500 per request; the
  members Mailchimp refuses go to quarantine (:mod:`cdp_mailchimp.destination`).

Both share one config model, :class:`MailchimpConfig` (API key with its data center,
audience id). README.md shows a connectors.toml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp_core import Register, hookimpl
from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_mailchimp.api import TYPE_NAME, MailchimpConfig, subscriber_hash
    from cdp_mailchimp.destination import MailchimpDestination, MailchimpWriteOptions
    from cdp_mailchimp.source import CONSENT_STATUS, ConsentsStream, MailchimpSource, MembersStream

# Imported on first use, not with the package: cdp imports every plugin's package to list its
# commands, and `cdp --help` should not pay for the HTTP client (docs/writing-plugins.md).
__getattr__ = lazy_exports(
    __name__,
    {
        "TYPE_NAME": "cdp_mailchimp.api",
        "MailchimpConfig": "cdp_mailchimp.api",
        "subscriber_hash": "cdp_mailchimp.api",
        "MailchimpDestination": "cdp_mailchimp.destination",
        "MailchimpWriteOptions": "cdp_mailchimp.destination",
        "CONSENT_STATUS": "cdp_mailchimp.source",
        "ConsentsStream": "cdp_mailchimp.source",
        "MailchimpSource": "cdp_mailchimp.source",
        "MembersStream": "cdp_mailchimp.source",
    },
)

__version__ = "0.1.0"

__all__ = [
    "CONSENT_STATUS",
    "TYPE_NAME",
    "ConsentsStream",
    "MailchimpConfig",
    "MailchimpDestination",
    "MailchimpSource",
    "MailchimpWriteOptions",
    "MembersStream",
    "subscriber_hash",
]


@hookimpl
def cdp_register_sources(register: Register) -> None:
    from cdp_mailchimp.api import TYPE_NAME
    from cdp_mailchimp.source import MailchimpSource

    register(TYPE_NAME, MailchimpSource)


@hookimpl
def cdp_register_destinations(register: Register) -> None:
    from cdp_mailchimp.api import TYPE_NAME
    from cdp_mailchimp.destination import MailchimpDestination

    register(TYPE_NAME, MailchimpDestination)
