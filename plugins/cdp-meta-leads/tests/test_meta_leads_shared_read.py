"""A run of both pull streams reads each page of a form once (cdp_meta_leads.fetched.FetchedPages): through
the runner, on SQLite and PostgreSQL, with each stream's cursor as it would be alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import meta_fake
import pytest
import respx
from cdp_core import Record
from cdp_core.http import HttpFactory
from cdp_core.plugins import Plugins
from cdp_core.runinfo import RunInfo
from cdp_core.store import SystemStore
from cdp_core.testing import Collector, RegisterPlugin, kit_plugin, make_context, roundtrip, run_graph
from meta_fake import FORM_A, FORM_B, TOKEN, FakeLeads, graph_error, lead, leads_url

import cdp_meta_leads
from cdp_meta_leads import MetaLeadsConfig, MetaLeadsSource

BOTH = ("leads", "submissions")
Responder = Callable[[httpx.Request], httpx.Response]


def five() -> list[dict[str, Any]]:
    return [lead(n, f"2024-05-0{n}T10:00:00+0000") for n in range(1, 6)]


class Meta:
    """Forms A (five leads: three pages of two) and B (one lead), counting the requests of each."""

    def __init__(self, router: respx.Router) -> None:
        self.a = FakeLeads(FORM_A, five())
        self.b = FakeLeads(FORM_B, [lead(1, "2024-04-01T10:00:00+0000", form=FORM_B)])
        self.broken: dict[str, Responder] = {}
        """Paging cursor -> what Meta answers for that page of form A instead of the page."""
        router.get(leads_url(FORM_A)).mock(side_effect=self._form_a)
        router.get(leads_url(FORM_B)).mock(side_effect=self.b)

    def _form_a(self, request: httpx.Request) -> httpx.Response:
        answer = self.broken.get(request.url.params.get("after", ""))
        if answer is None:
            return self.a(request)
        self.a.requests.append(request)
        return answer(request)

    @property
    def calls(self) -> int:
        return len(self.a.requests) + len(self.b.requests)

    def clear(self) -> None:
        self.a.requests.clear()
        self.b.requests.clear()


def toml(store_url: str, **graphs: tuple[str, ...]) -> str:
    """connectors.toml with graph NAME reading ``meta.STREAM`` for each of its streams into ``out``."""
    text = f"""
[store]
url = "{store_url}"

[connectors.meta]
type = "meta_leads"
access_token = "${{META_ACCESS_TOKEN}}"
form_ids = ["{FORM_A}", "{FORM_B}"]
page_size = 2

[connectors.out]
type = "collect"
"""
    for graph, streams in graphs.items():
        for stream in streams:
            text += f'\n[syncs.{graph}.nodes.{stream}]\nsource = "meta.{stream}"\n'
        text += f"\n[syncs.{graph}.nodes.out]\ndestination = \"out\"\ninputs = {list(streams)!r}\n".replace("'", '"')
    return text


@pytest.fixture
def plugins(register_plugin: RegisterPlugin) -> Plugins:
    return register_plugin(cdp_meta_leads, extra=[kit_plugin])


@pytest.fixture
def system(store_url: str) -> Iterator[SystemStore]:
    store = SystemStore(store_url)
    yield store
    store.engine.dispose()


@pytest.fixture
def sync(
    tmp_path: Path, plugins: Plugins, cdp_http: HttpFactory, store_url: str
) -> Callable[..., tuple[RunInfo, Collector]]:
    def run(graph: str = "both", streams: tuple[str, ...] = BOTH) -> tuple[RunInfo, Collector]:
        collector = Collector()
        info = run_graph(
            tmp_path, toml(store_url, **{graph: streams}), plugins, graph, collector=collector,
            services={"http": cdp_http}, env={"META_ACCESS_TOKEN": TOKEN},
        )  # fmt: skip
        return info, collector

    return run


def alone(tmp_path: Path, http: HttpFactory, stream: str, cursor: Any = None) -> tuple[list[Record], Any]:
    """What ``stream`` delivers read on its own, on a source of its own, and its final cursor."""
    config = MetaLeadsConfig.model_validate({"access_token": TOKEN, "form_ids": [FORM_A, FORM_B], "page_size": 2})
    source = MetaLeadsSource(config, make_context(tmp_path, "meta", services={"http": http}))
    records: list[Record] = []
    final = cursor
    try:
        for page in source.stream(stream).read(roundtrip(cursor) if cursor is not None else None):
            records += page.records
            final = page.cursor
    finally:
        source.close()
    return records, final


def fields(records: list[Record]) -> list[tuple[Any, ...]]:
    return [(r.stream, r.kind, r.key, r.data, r.identifiers, r.occurred_at) for r in records]


def delivered(collector: Collector, stream: str) -> list[str]:
    return [r.key for r in collector.records("out") if r.stream == f"meta.{stream}"]


ALL = ["100005", "100004", "100003", "100002", "100001", "200001"]


def test_a_run_of_both_streams_reads_each_page_once(
    cdp_respx: respx.Router, cdp_http: HttpFactory, sync: Any, system: SystemStore, tmp_path: Path
) -> None:
    meta = Meta(cdp_respx)
    expected = {stream: alone(tmp_path, cdp_http, stream) for stream in BOTH}
    assert meta.calls == 2 * 4  # each stream alone: three pages of form A, one of form B
    meta.clear()

    run, collector = sync()
    assert run.status == "succeeded", run.error
    assert meta.calls == 4
    for stream in BOTH:
        records, cursor = expected[stream]
        assert fields([r for r in collector.records("out") if r.stream == f"meta.{stream}"]) == fields(records)
        assert system.cursor("both", stream) == cursor  # as if it had been read alone
        assert delivered(collector, stream) == ALL


def test_a_run_of_one_stream_reads_as_before(
    cdp_respx: respx.Router, cdp_http: HttpFactory, sync: Any, system: SystemStore, tmp_path: Path
) -> None:
    """Unchanged: one call per page, and the same requests as a read of that stream on its own."""
    meta = Meta(cdp_respx)
    for stream in BOTH:
        meta.clear()
        _, cursor = alone(tmp_path, cdp_http, stream)
        wanted = [str(r.url) for r in [*meta.a.requests, *meta.b.requests]]
        meta.clear()
        run, collector = sync(stream, (stream,))
        assert run.status == "succeeded", run.error
        assert [str(r.url) for r in [*meta.a.requests, *meta.b.requests]] == wanted and meta.calls == 4
        assert delivered(collector, stream) == ALL and system.cursor(stream, stream) == cursor


def test_a_rerun_asks_meta_again_once_for_both_streams(
    cdp_respx: respx.Router, sync: Any, system: SystemStore
) -> None:
    meta = Meta(cdp_respx)
    sync()
    meta.clear()
    meta.a.leads.append(lead(6, "2024-05-06T10:00:00+0000"))
    meta.b.leads.append(lead(2, "2024-04-02T10:00:00+0000", form=FORM_B))
    run, collector = sync()  # a new source: what the first run was answered is gone
    assert run.status == "succeeded", run.error
    assert meta.calls == 2  # one page per form, from each form's mark
    assert all("filtering" in r.url.params for r in [*meta.a.requests, *meta.b.requests])
    for stream in BOTH:
        assert delivered(collector, stream) == ["100006", "200002"]
    assert system.cursor("both", "leads") == system.cursor("both", "submissions")


def test_streams_at_different_marks_each_read_their_own_then_one_read(
    cdp_respx: respx.Router, cdp_http: HttpFactory, sync: Any, system: SystemStore, tmp_path: Path
) -> None:
    """``submissions`` added to a graph that read ``leads`` before: each stream reads from its own cursor
    (leads from its mark, submissions from the beginning), and the next run shares one read."""
    meta = Meta(cdp_respx)
    sync("pull", ("leads",))
    leads_cursor = system.cursor("pull", "leads")
    meta.a.leads.append(lead(6, "2024-05-06T10:00:00+0000"))
    meta.clear()

    run, collector = sync("pull", BOTH)
    assert run.status == "succeeded", run.error
    assert delivered(collector, "leads") == ["100006"]
    assert delivered(collector, "submissions") == ["100006", *ALL]
    assert meta.calls == 2 + 4  # leads: one page per form from its marks; submissions: every page (six leads of A)
    _, cursor = alone(tmp_path, cdp_http, "leads", leads_cursor)
    assert system.cursor("pull", "leads") == system.cursor("pull", "submissions") == cursor

    meta.clear()
    meta.a.leads.append(lead(7, "2024-05-07T10:00:00+0000"))
    run, collector = sync("pull", BOTH)
    assert run.status == "succeeded", run.error
    assert meta.calls == 2
    assert delivered(collector, "leads") == delivered(collector, "submissions") == ["100007"]


def _server_error(request: httpx.Request) -> httpx.Response:
    return graph_error(2, "Service temporarily unavailable", status=503)


def _expired_token(request: httpx.Request) -> httpx.Response:
    return graph_error(190, "Error validating access token: Session has expired.", status=401, subcode=463)


def _malformed(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"data": {"id": "100002"}})


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


@pytest.mark.parametrize("answer", [_server_error, _expired_token, _malformed, _timeout])
def test_an_error_mid_paging_stops_both_streams_at_their_last_page(
    answer: Responder, cdp_respx: respx.Router, cdp_http: HttpFactory, sync: Any, system: SystemStore, tmp_path: Path
) -> None:
    meta = Meta(cdp_respx)
    third = meta_fake._cursor("100002")  # the paging cursor of form A's third page
    meta.broken[third] = answer
    alone_run, _ = sync("alone", ("leads",))
    attempts = sum(r.url.params.get("after") == third for r in meta.a.requests)  # what one stream sends
    assert alone_run.status == "failed" and attempts >= 1
    meta.clear()

    run, collector = sync()
    assert run.status == "failed"
    # the shared read failed once, and both streams with what the stream alone failed with
    assert sum(r.url.params.get("after") == third for r in meta.a.requests) == attempts
    assert meta.calls == 2 + attempts
    for stream in BOTH:
        assert run.nodes[stream].error == alone_run.nodes["leads"].error
        assert delivered(collector, stream) == ["100005", "100004", "100003", "100002"]
        cursor = system.cursor("both", stream)
        assert cursor["forms"] == {} and cursor["reading"]["after"] == third  # its last committed page

    del meta.broken[third]
    meta.clear()
    run, collector = sync()
    assert run.status == "succeeded", run.error
    assert meta.calls == 2  # form A's third page, form B's only one: once for both streams
    for stream in BOTH:
        assert delivered(collector, stream) == ["100001", "200001"]
    _, whole = alone(tmp_path, cdp_http, "leads")  # the cursor of a read without the failure
    assert system.cursor("both", "leads") == system.cursor("both", "submissions") == whole


def test_a_throttled_page_is_waited_for_once(
    cdp_respx: respx.Router, cdp_http: HttpFactory, sync: Any, system: SystemStore
) -> None:
    """HTTP 429 with Retry-After on the shared read: the core waits and retries it; both streams get the page."""
    meta = Meta(cdp_respx)
    second = meta_fake._cursor("100004")

    def throttled_once(request: httpx.Request) -> httpx.Response:
        del meta.broken[second]
        return httpx.Response(429, headers={"Retry-After": "7"})

    meta.broken[second] = throttled_once
    run, collector = sync()
    assert run.status == "succeeded", run.error
    assert meta.calls == 4 + 1
    assert cdp_http.clock.sleeps.count(7.0) == 1  # type: ignore[attr-defined]
    for stream in BOTH:
        assert delivered(collector, stream) == ALL


def test_a_refused_saved_cursor_costs_each_stream_one_call(
    cdp_respx: respx.Router, sync: Any, system: SystemStore
) -> None:
    """Both streams stopped mid-form; next run Meta refuses the saved paging cursor once. ``leads`` reads the
    form again from its mark (asking for that cursor afresh, which Meta now answers); ``submissions`` resumes
    at the same cursor and gets that fresh answer: a refusal is not kept for the rest of the run."""
    meta = Meta(cdp_respx)
    third = meta_fake._cursor("100002")
    meta.broken[third] = _server_error
    assert sync()[0].status == "failed"

    def refused_once(request: httpx.Request) -> httpx.Response:
        del meta.broken[third]
        return graph_error(100, "(#100) Invalid cursor")

    meta.broken[third] = refused_once
    meta.clear()
    run, collector = sync()
    assert run.status == "succeeded", run.error
    assert meta.calls == 1 + 3 + 1  # the refusal, form A again from its start, form B
    # leads of the interrupted read older than its newest minus the lookback come again (README, "Paging")
    assert delivered(collector, "leads") == ["100004", "100003", "100002", "100001", "200001"]
    assert delivered(collector, "submissions") == ["100001", "200001"]
    assert system.cursor("both", "leads") == system.cursor("both", "submissions")
