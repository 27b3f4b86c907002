"""The kit's source conformance suite (cdp_core.testing.source_conformance): it passes a good source and fails
each deliberately broken one on the case that names the break (run with pytester)."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("cdp_core.testing")

from kit_outcomes import failing, suite_outcomes

pytest_plugins = ["pytester"]


SOURCES = """
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
from pydantic import ConfigDict

from cdp_core import Page, PluginConfig, Record, Register, Source, Stream, hookimpl
from cdp_core.testing import SourceConformance

pytest_plugins = ["cdp_core.testing"]


class CountConfig(PluginConfig):
    count: int = 6
    page_size: int = 2


class Numbers(Stream):
    name = "n"
    cursor_field = "n"

    def __init__(self, source: "Good") -> None:
        self.source = source

    def read(self, cursor: Any) -> Iterator[Page]:
        config = self.source.config
        for first in range(self.source.start(cursor), config.count, config.page_size):
            last = min(first + config.page_size, config.count)
            records = [Record(stream=f"{self.source.context.name}.n", key=str(i)) for i in range(first, last)]
            yield Page(records, cursor=last)


class Good(Source):
    config_model = CountConfig

    def streams(self):
        return [Numbers(self)]

    def start(self, cursor: Any) -> int:
        return cursor or 0


class Forgetful(Good):
    def start(self, cursor: Any) -> int:
        return 0


class OffByOne(Good):
    def start(self, cursor: Any) -> int:
        return cursor + 1 if cursor else 0


class EndsWithNone(Numbers):
    def read(self, cursor: Any) -> Iterator[Page]:
        pages = list(super().read(cursor)) or [Page([], None)]
        yield from pages[:-1]
        yield Page(pages[-1].records, None)


class AllNumbers(EndsWithNone):
    cursor_field = None


class FullRefresh(Good):
    def streams(self):
        return [AllNumbers(self)]


class Unmarked(Good):
    # Incremental (cursor_field "n") but ends its read with cursor None.

    def streams(self):
        return [EndsWithNone(self)]


class LooseConfig(CountConfig):
    model_config = ConfigDict(extra="allow")


class Loose(Good):
    config_model = LooseConfig


class Peeking(Good):
    def streams(self):
        open(self.context.resolve("probe.txt"), "a").close()
        return super().streams()


class ChattyNumbers(Numbers):
    def read(self, cursor: Any) -> Iterator[Page]:
        httpx.get("https://api.example.com/unmocked")
        yield from super().read(cursor)


class Chatty(Good):
    def streams(self):
        return [ChattyNumbers(self)]


class EmptyKeys(Good):
    def streams(self):
        class Blank(Numbers):
            def read(self, cursor):
                for page in super().read(cursor):
                    yield Page([r.model_copy(update={"key": " "}) for r in page.records], page.cursor)
        return [Blank(self)]


class Plugin:
    def __init__(self, type_name, cls):
        self.type_name, self.cls = type_name, cls

    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        register(self.type_name, self.cls)


# A contact list sorted by updated_at, read incrementally from a mark; changed by the tests.
CONTACTS: list[dict[str, Any]] = []


class Contacts(Stream):
    name = "c"
    cursor_field = "updated"

    def __init__(self, source: "ByOffset") -> None:
        self.source = source

    def read(self, cursor: Any) -> Iterator[Page]:
        state = cursor or {"mark": -1, "offset": 0}
        mark, offset, size = state["mark"], state.get("offset", 0), self.source.config.page_size
        while True:
            rows = sorted((r for r in CONTACTS if r["updated"] > mark), key=lambda r: r["updated"])
            page = rows[offset : offset + size]
            records = [Record(stream=f"{self.source.context.name}.c", key=r["id"]) for r in page]
            if offset + size >= len(rows):
                newest = max([mark, *(r["updated"] for r in rows)])
                yield Page(records, {"mark": newest})
                return
            offset += size
            yield Page(records, {"mark": mark, "offset": offset})


class ByOffset(Good):
    def streams(self):
        return [Contacts(self)]


class Base(SourceConformance):
    config: ClassVar[dict[str, Any]] = {}
    stream = "n"
    empty_config: ClassVar[dict[str, Any] | None] = {"count": 0}
    pages_never_change = "numbers: a record never changes"

    def add_more(self, source_env, tmp_path):
        self.config = {"count": 9}  # three more numbers: 6, 7, 8
        return ["6", "7", "8"]


class TestGood(Base):
    plugin = Plugin("good", Good)
    type_name = "good"


class TestForgetful(Base):
    plugin = Plugin("forgetful", Forgetful)
    type_name = "forgetful"


class TestOffByOne(Base):
    plugin = Plugin("offbyone", OffByOne)
    type_name = "offbyone"


class TestLoose(Base):
    plugin = Plugin("loose", Loose)
    type_name = "loose"


class TestPeeking(Base):
    plugin = Plugin("peeking", Peeking)
    type_name = "peeking"


class TestNoChangeHook(Base):
    # Incremental, with neither change_between_pages nor a reason its pages cannot change.

    plugin = Plugin("nohook", Good)
    type_name = "nohook"
    pages_never_change = None


class TestBlankReason(Base):
    plugin = Plugin("blank", Good)
    type_name = "blank"
    pages_never_change = " "


class TestByOffset(Base):
    # Offsets over data sorted by updated: the update moves contact 1 to the end and 3 slips by.

    plugin = Plugin("byoffset", ByOffset)
    type_name = "byoffset"
    stream = "c"
    pages_never_change = None

    def setup_source(self, respx_mock, tmp_path):
        CONTACTS[:] = [{"id": str(n), "updated": n} for n in range(1, 7)]

    def setup_empty(self, respx_mock, tmp_path):
        CONTACTS[:] = []

    def add_more(self, source_env, tmp_path):
        CONTACTS.append({"id": "7", "updated": 7})
        return ["7"]

    def change_between_pages(self, respx_mock, tmp_path):
        CONTACTS[0]["updated"] = 10
        return "1"


class TestFullRefreshWithoutHook(Base):
    # A full-refresh stream passes by what makes it safe: the next run reads everything again.

    plugin = Plugin("fullrefresh", FullRefresh)
    type_name = "fullrefresh"
    pages_never_change = None


class TestUnmarked(Base):
    # Ends with cursor None, as a full refresh does, but has a cursor field: the next run reads all again.

    plugin = Plugin("unmarked", Unmarked)
    type_name = "unmarked"
    pages_never_change = None


class TestChatty(Base):
    plugin = Plugin("chatty", Chatty)
    type_name = "chatty"


class TestEmptyKeys(Base):
    plugin = Plugin("emptykeys", EmptyKeys)
    type_name = "emptykeys"


class TestWrongTypeName(Base):
    plugin = Plugin("good", Good)
    type_name = "goood"
"""


def test_source_suite_passes_a_good_source_and_fails_broken_ones(pytester: pytest.Pytester) -> None:
    results = suite_outcomes(pytester, SOURCES)
    assert failing(results, "TestGood") == set()
    assert not [n for n, (o, _) in results.items() if o == "skipped"]  # the suite never skips: it asserts
    assert failing(results, "TestForgetful") == {
        "test_resume_after_every_page",
        "test_reread_from_final_cursor",
        "test_new_records_after_final_cursor",
    }
    assert "repeated or unexpected ['0', '1']" in results["TestForgetful::test_resume_after_every_page"][1]
    assert failing(results, "TestOffByOne") == {"test_resume_after_every_page", "test_new_records_after_final_cursor"}
    assert "lost ['2']" in results["TestOffByOne::test_resume_after_every_page"][1]
    loose = failing(results, "TestLoose")
    assert {"test_registered", "test_config_model", "test_full_read"} <= loose
    assert "extra='forbid'" in results["TestLoose::test_registered"][1]
    assert failing(results, "TestPeeking") == {"test_streams_do_no_io"}
    assert "I/O is not allowed here: open(" in results["TestPeeking::test_streams_do_no_io"][1]
    assert "probe.txt" in results["TestPeeking::test_streams_do_no_io"][1]
    assert "test_full_read" in failing(results, "TestChatty")
    assert "AllMockedAssertionError" in results["TestChatty::test_full_read"][1]
    assert failing(results, "TestEmptyKeys") == {"test_full_read", "test_keys_unique", "test_new_records_after_final_cursor"}
    # the changing-data case: an incremental harness says how the data changes, or why it cannot
    assert failing(results, "TestNoChangeHook") == {"test_data_changes_between_pages"}
    assert "implement change_between_pages(" in results["TestNoChangeHook::test_data_changes_between_pages"][1]
    assert "pages_never_change" in results["TestNoChangeHook::test_data_changes_between_pages"][1]
    assert failing(results, "TestBlankReason") == {"test_data_changes_between_pages"}
    assert "pages_never_change is blank" in results["TestBlankReason::test_data_changes_between_pages"][1]
    assert failing(results, "TestByOffset") == {"test_data_changes_between_pages"}
    assert "records lost while the data changed between pages: ['3']" in (
        results["TestByOffset::test_data_changes_between_pages"][1]
    )
    assert failing(results, "TestFullRefreshWithoutHook") == set()
    assert "test_data_changes_between_pages" in failing(results, "TestUnmarked")
    assert "has cursor_field 'n'" in results["TestUnmarked::test_data_changes_between_pages"][1]
    wrong = failing(results, "TestWrongTypeName")
    assert "test_registered" in wrong
    assert "no source type 'goood' is registered" in results["TestWrongTypeName::test_registered"][1]


def test_pages_never_change_passes_with_its_reason_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SOURCES)
    only = "(TestGood or TestFullRefreshWithoutHook) and between"
    recorder = pytester.inline_run("-p", "no:cacheprovider", "-k", only)
    recorder.assertoutcome(passed=2)
    reports = [r for r in recorder.getreports("pytest_runtest_logreport") if r.when == "call"]
    reasons = {r.nodeid.split("::")[1]: dict(r.user_properties).get("pages_never_change") for r in reports}
    assert reasons == {
        "TestGood": "numbers: a record never changes",
        "TestFullRefreshWithoutHook": "full refresh: the next run reads every record again",
    }



# -- the deletion check (SourceConformance.test_declared_deletions) ----------------------------

DELETIONS = """
from collections.abc import Iterator
from typing import Any, ClassVar

from cdp_core import Page, PluginConfig, Record, RecordKind, Register, Source, Stream, hookimpl
from cdp_core.testing import SourceConformance

pytest_plugins = ["cdp_core.testing"]


class LogConfig(PluginConfig):
    log: list[str] = ["1", "2", "3", "-9", "4"]
    \"\"\"A change log: "K" writes record K, "-K" deletes it (9: written before the log starts).\"\"\"


class Changes(Stream):
    name = "n"
    cursor_field = "position"
    emits_deletions = True

    def __init__(self, source: Source) -> None:
        self.source = source

    def tombstone(self, key: str) -> Record:
        return Record(stream=f"{self.source.context.name}.n", key=key, deleted=True)

    def read(self, cursor: Any) -> Iterator[Page]:
        log = self.source.config.log
        for first in range(cursor or 0, len(log), 2):
            entries = log[first : first + 2]
            records = [
                self.tombstone(e[1:]) if e.startswith("-") else Record(stream=f"{self.source.context.name}.n", key=e)
                for e in entries
            ]
            yield Page(records, cursor=first + len(entries))


class Undeclared(Changes):
    emits_deletions = False


class Stuffed(Changes):
    def tombstone(self, key: str) -> Record:
        return Record(stream=f"{self.source.context.name}.n", key=key, deleted=True, data={"email": "x@y.de"})


class WrongKind(Changes):
    def tombstone(self, key: str) -> Record:
        return Record(stream=f"{self.source.context.name}.n", kind=RecordKind.order, key=key, deleted=True)


class Gone(Changes):
    \"\"\"A stream of deletions only, of stream n's records.\"\"\"

    name = "gone"
    records_of = "n"

    def read(self, cursor: Any) -> Iterator[Page]:
        for page in super().read(cursor):
            yield Page([r for r in page.records if r.deleted], page.cursor)


class Nowhere(Gone):
    records_of = "missing"


def source_of(*stream_classes: type) -> type:
    class Log(Source):
        config_model = LogConfig

        def streams(self):
            return [cls(self) for cls in stream_classes]

    return Log


class Plugin:
    def __init__(self, type_name, cls):
        self.type_name, self.cls = type_name, cls

    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        register(self.type_name, self.cls)


class Base(SourceConformance):
    config: ClassVar[dict[str, Any]] = {}
    stream = "n"
    empty_config: ClassVar[dict[str, Any] | None] = {"log": []}
    min_pages = 1
    pages_never_change = "a log given whole in the config: nothing changes while it is read"

    def add_more(self, source_env, tmp_path):
        self.config = {"log": [*LogConfig().log, "5"]}
        return ["5"]

    def delete_records(self, source_env, tmp_path):
        self.config = {"log": [*LogConfig().log, "-1", "-4"]}
        return ["1", "4"]


class TestDeclared(Base):
    plugin = Plugin("declared", source_of(Changes))
    type_name = "declared"


class TestUndeclared(Base):
    plugin = Plugin("undeclared", source_of(Undeclared))
    type_name = "undeclared"


class TestNoHook(Base):
    plugin = Plugin("nohook", source_of(Changes))
    type_name = "nohook"
    delete_records = SourceConformance.delete_records


class TestStuffed(Base):
    plugin = Plugin("stuffed", source_of(Stuffed))
    type_name = "stuffed"


class TestWrongKind(Base):
    plugin = Plugin("wrongkind", source_of(WrongKind))
    type_name = "wrongkind"


class TestDeletionsOnly(Base):
    plugin = Plugin("gone", source_of(Changes, Gone))
    type_name = "gone"
    stream = "gone"

    def add_more(self, source_env, tmp_path):
        self.config = {"log": [*LogConfig().log, "-3"]}
        return ["3"]


class TestDeletionsOfNowhere(TestDeletionsOnly):
    plugin = Plugin("nowhere", source_of(Changes, Nowhere))
    type_name = "nowhere"
"""


def test_source_suite_checks_declared_deletions(pytester: pytest.Pytester) -> None:
    results = suite_outcomes(pytester, DELETIONS)
    assert results["TestDeclared::test_declared_deletions"] == ("passed", "")
    assert failing(results, "TestDeclared") == set()
    assert failing(results, "TestDeletionsOnly") == set()
    failure = {name: text for name, (outcome, text) in results.items() if outcome == "failed"}
    assert failing(results, "TestUndeclared") == {"test_declared_deletions"}
    undeclared = failure["TestUndeclared::test_declared_deletions"]
    assert "does not declare emits_deletions, yet its read yielded tombstones of ['9']" in undeclared
    assert failing(results, "TestNoHook") == {"test_declared_deletions"}
    assert "implement delete_records(source_env, tmp_path)" in failure["TestNoHook::test_declared_deletions"]
    assert failing(results, "TestStuffed") == {"test_declared_deletions"}
    assert "tombstone '9' of stream 'n': data ['email']" in failure["TestStuffed::test_declared_deletions"]
    assert failing(results, "TestWrongKind") == {"test_declared_deletions", "test_full_read"}
    wrong_kind = failure["TestWrongKind::test_declared_deletions"]
    assert "kind order, but the records of stream 'n' it deletes are profile" in wrong_kind
    assert failing(results, "TestDeletionsOfNowhere") == {"test_declared_deletions", "test_full_read"}
    nowhere = failure["TestDeletionsOfNowhere::test_declared_deletions"]
    assert "records_of = 'missing' is no stream of the source" in nowhere
    assert not [n for n, (o, _) in results.items() if o == "skipped" and "deletions" in n]
