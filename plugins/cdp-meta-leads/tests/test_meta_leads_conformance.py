"""The core's contract of a source (SourceConformance), on both streams, over two lead forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import respx
from cdp_core.testing import SourceConformance
from meta_fake import FORM_A, FORM_B, TOKEN, FakeLeads, lead, leads_url

import cdp_meta_leads

CONFIG: dict[str, Any] = {"access_token": TOKEN, "graph_version": "v21.0", "form_ids": [FORM_A, FORM_B], "page_size": 2}


def form_a() -> list[dict[str, Any]]:
    return [
        lead(1, "2024-05-01T10:00:00+0000"),
        lead(2, "2024-05-02T10:00:00+0000"),
        lead(3, "2024-05-02T10:00:00+0000"),  # the same second as lead 2
    ]


def form_b() -> list[dict[str, Any]]:
    return [lead(1, "2024-05-03T10:00:00+0000", form=FORM_B), lead(2, "2024-05-04T10:00:00+0000", form=FORM_B)]


class _Meta(SourceConformance):
    plugin = cdp_meta_leads
    type_name = "meta_leads"
    config: ClassVar[dict[str, Any]] = CONFIG

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.a, self.b = FakeLeads(FORM_A, form_a()), FakeLeads(FORM_B, form_b())
        respx_mock.get(leads_url(FORM_A)).mock(side_effect=self.a)
        respx_mock.get(leads_url(FORM_B)).mock(side_effect=self.b)

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        respx_mock.get(leads_url(FORM_A)).mock(side_effect=FakeLeads(FORM_A, []))
        respx_mock.get(leads_url(FORM_B)).mock(side_effect=FakeLeads(FORM_B, []))

    # The changing-data case moves a record of the first page to the end; a lead does not move:
    # test_meta_leads_http.py::test_a_lead_created_during_the_read_comes_next_run reads what does happen.
    pages_never_change = (
        "a lead never changes after it is submitted (created_time is fixed), and Meta pages by keyset cursors "
        "over the leads newest first: a lead created during the read lands before the pages read, past the mark"
    )

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.a.leads.append(lead(4, "2024-06-01T08:00:00+0000"))
        self.a.leads.append(lead(5, "2024-05-02T10:00:00+0000"))  # late, in the boundary second of form A
        self.b.leads.append(lead(3, "2024-06-02T08:00:00+0000", form=FORM_B))
        return ["100004", "100005", "200003"]


class TestLeads(_Meta):
    stream = "leads"


class TestSubmissions(_Meta):
    stream = "submissions"
