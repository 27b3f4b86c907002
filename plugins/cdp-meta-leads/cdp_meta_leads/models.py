"""The Graph API's lead shapes (``GET /{form_id}/leads``), as far as the plugin reads them.

A page's envelope is validated before anything of it is yielded: a malformed
envelope stops the read with a :class:`cdp_core.http.ResponseError` naming the
field, and the cursor stays at the last good page. Each lead is then validated on
its own: one of the wrong shape is quarantined with its payload, the others go on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FieldDatum(BaseModel):
    """One answer of the form: ``{"name": "email", "values": ["..."]}``."""

    model_config = ConfigDict(extra="ignore")

    name: str
    values: list[Any] = Field(default_factory=list)


class Lead(BaseModel):
    """A lead; fields asked for with ``extra_fields`` land in ``model_extra``."""

    model_config = ConfigDict(extra="allow")

    id: str
    created_time: datetime
    field_data: list[FieldDatum] = Field(default_factory=list)
    ad_id: str | None = None
    campaign_id: str | None = None


class Cursors(BaseModel):
    model_config = ConfigDict(extra="ignore")

    before: str | None = None
    after: str | None = None


class Paging(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cursors: Cursors | None = None
    next: str | None = None
    previous: str | None = None


class LeadsPage(BaseModel):
    """``{"data": [...], "paging": {"cursors": {"before", "after"}, "next": URL}}``; no ``next`` on the last page."""

    model_config = ConfigDict(extra="ignore")

    data: list[Any]
    """Each one validated on its own as a :class:`Lead`."""
    paging: Paging | None = None

    @model_validator(mode="after")
    def _next_has_a_cursor(self) -> LeadsPage:
        paging = self.paging
        if paging is not None and paging.next and not (paging.cursors and paging.cursors.after):
            raise ValueError("paging.next is set but paging.cursors.after is missing")
        return self

    @property
    def after(self) -> str | None:
        """The cursor of the next page, or None on the last page (no ``paging.next``)."""
        paging = self.paging
        if paging is None or not paging.next or paging.cursors is None:
            return None
        return paging.cursors.after


class GraphErrorBody(BaseModel):
    """``{"error": {"message", "type", "code", "error_subcode", "is_transient", "fbtrace_id"}}``."""

    model_config = ConfigDict(extra="ignore")

    message: str | None = None
    type: str | None = None
    code: int | None = None
    error_subcode: int | None = None
    is_transient: bool | None = None
    error_user_title: str | None = None
    fbtrace_id: str | None = None
