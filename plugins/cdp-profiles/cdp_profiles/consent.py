"""Consent purposes and their policies: who may be sent where (docs/consent.md).

A person's consent for a purpose is their latest decision for it, from any source
(a Mailchimp status, a Shopify marketing flag, a form answer): the ``consents`` row
of their profile with the latest ``occurred_at`` (rows without a time count as
oldest; ties by stream, then key, the later wins). A purpose's policy says what no
decision means:

- ``opt_in``: only people whose latest decision is ``granted``;
- ``opt_out``: everyone whose latest decision is not ``denied`` or ``revoked``.

This module is the one definition of "may this person be used for this purpose":
export gates, segment rules (``consent('ads')``, ``has_consent('ads')``) and the 360°
view all read :func:`latest_consents` and :func:`allowed`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Any

from cdp_core.base import PluginConfig
from pydantic import Field, field_validator
from sqlalchemy import Select, func, select

from cdp_profiles.store import tables
from cdp_profiles.store.owners import owned


class Policy(StrEnum):
    opt_in = "opt_in"
    """Only people who granted it (email marketing, ads in the EU)."""
    opt_out = "opt_out"
    """Everyone who has not denied or revoked it."""


class Purpose(PluginConfig):
    policy: Policy = Policy.opt_in
    description: str = ""


DEFAULT_PURPOSES: dict[str, Purpose] = {
    "email": Purpose(policy=Policy.opt_in, description="email marketing"),
    "ads": Purpose(policy=Policy.opt_in, description="ad platforms: custom audiences, customer match"),
    "analytics": Purpose(policy=Policy.opt_out, description="analysis and reporting"),
    "personalization": Purpose(policy=Policy.opt_out, description="personalized content and offers"),
    "crm": Purpose(policy=Policy.opt_out, description="writing back to the CRM for sales and service"),
}

GRANTED = "granted"
WITHDRAWN = frozenset({"denied", "revoked"})


class ConsentConfig(PluginConfig):
    """``[consent]`` in connectors.toml: the purposes exports may serve, each with its policy.

    ``[consent.purposes.NAME]`` adds or overrides a purpose; the defaults stay unless
    ``replace_defaults = true``.
    """

    purposes: dict[str, Purpose] = Field(default_factory=dict)
    replace_defaults: bool = False

    @field_validator("purposes")
    @classmethod
    def _names(cls, value: dict[str, Purpose]) -> dict[str, Purpose]:
        for name in value:
            if not name or not name.replace("_", "").isalnum() or not name[0].isalpha():
                raise ValueError(f"purpose names are letters, digits and '_', starting with a letter: {name!r}")
        return value

    def all_purposes(self) -> dict[str, Purpose]:
        """Every purpose in force: the defaults (unless replaced) overlaid with the configured ones."""
        merged = {} if self.replace_defaults else dict(DEFAULT_PURPOSES)
        merged.update(self.purposes)
        return dict(sorted(merged.items()))

    def policy(self, purpose: str) -> Policy:
        """Raises KeyError for a purpose that is not configured."""
        return self.all_purposes()[purpose].policy


def consent_of(sections: Mapping[str, Any]) -> ConsentConfig:
    """``[consent]`` from a config's or a connector context's ``sections`` (its defaults where absent)."""
    section = sections.get("consent")
    return section if isinstance(section, ConsentConfig) else ConsentConfig()


def allowed(status: str | None, policy: Policy) -> bool:
    """May a person whose latest decision is ``status`` (None: none) be used under ``policy``?"""
    if policy is Policy.opt_in:
        return status == GRANTED
    return status not in WITHDRAWN


_consents = tables.consents


def latest_consents(purposes: list[str] | None = None, profiles: Collection[str] | None = None) -> Select[Any]:
    """One row per (live profile, purpose): ``profile_id, purpose, status, source, stream, key, occurred_at``, the latest decision.

    Set-based (a window over every consent row, one query whatever the number of people),
    the same on SQLite and PostgreSQL. ``profiles`` restricts it to those live profiles
    (before the window, so only their rows are ranked, found through their indexes; keep the list to a few
    thousand). A record's person (cdp_profiles/store/owners.py) always names the live profile (merges move a
    merged profile's sets to the survivor), so no merge chain is followed.
    """
    order = (
        _consents.c.occurred_at.desc().nulls_last(),  # explicit: PostgreSQL sorts NULLs first in DESC
        _consents.c.stream.desc(),
        _consents.c.key.desc(),
    )
    joined, owner = owned(_consents, None if profiles is None else list(profiles))
    rank = func.row_number().over(partition_by=(owner, _consents.c.purpose), order_by=order)
    ranked = select(
        owner.label("profile_id"),
        _consents.c.purpose,
        _consents.c.status,
        _consents.c.source,
        _consents.c.stream,
        _consents.c.key,
        _consents.c.occurred_at,
        rank.label("rank"),
    ).select_from(joined)
    if profiles is None:
        ranked = ranked.where(owner.is_not(None))
    if purposes is not None:
        ranked = ranked.where(_consents.c.purpose.in_(purposes))
    sub = ranked.subquery("ranked_consents")
    columns = (sub.c.profile_id, sub.c.purpose, sub.c.status, sub.c.source, sub.c.stream, sub.c.key, sub.c.occurred_at)
    return select(*columns).where(sub.c.rank == 1)
