"""The kit's destination conformance suite (cdp_core.testing.destination_conformance): it passes good
destinations and fails each deliberately broken one on the case that names the break (run with pytester)."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("cdp_core.testing")

from kit_outcomes import failing, suite_outcomes

pytest_plugins = ["pytester"]


DESTINATIONS = """
from cdp_core import Destination, Register, WriteMode, hookimpl
from cdp_core.store import SystemStore
from cdp_core.testing import DestinationConformance

pytest_plugins = ["cdp_core.testing"]


class Memory(Destination):
    def __init__(self, *args):
        super().__init__(*args)
        self.held = []

    def write(self, batch, checkpoint=None):
        self.held.extend(r.key for r in batch)


class LyingUpsert(Memory):
    write_mode = WriteMode.upsert


class ChokesOnEmpty(Memory):
    def write(self, batch, checkpoint=None):
        if not batch:
            raise ValueError("empty batch")
        super().write(batch, checkpoint)


class Committer(Memory):
    commits_checkpoint = True

    def write(self, batch, checkpoint=None):
        super().write(batch, checkpoint)
        engine = SystemStore(self.context.store_url).engine
        with engine.begin() as conn:
            checkpoint.write(conn)
        engine.dispose()


class Forgets(Memory):
    commits_checkpoint = True


class Plugin:
    def __init__(self, type_name, cls):
        self.type_name, self.cls = type_name, cls

    @hookimpl
    def cdp_register_destinations(self, register: Register) -> None:
        register(self.type_name, self.cls)


class Base(DestinationConformance):
    def read_back(self, destination, tmp_path):
        return destination.held


class TestMemory(Base):
    plugin = Plugin("memory", Memory)
    type_name = "memory"


class TestLyingUpsert(Base):
    plugin = Plugin("lying", LyingUpsert)
    type_name = "lying"


class TestChokesOnEmpty(Base):
    plugin = Plugin("choke", ChokesOnEmpty)
    type_name = "choke"


class TestCommitter(Base):
    plugin = Plugin("committer", Committer)
    type_name = "committer"


class TestForgets(Base):
    plugin = Plugin("forgets", Forgets)
    type_name = "forgets"
"""


def test_destination_suite_fails_broken_destinations(pytester: pytest.Pytester) -> None:
    results = suite_outcomes(pytester, DESTINATIONS)
    assert failing(results, "TestMemory") == set()
    assert results["TestMemory::test_commits_checkpoint"][0] == "passed"
    assert failing(results, "TestCommitter") == set()
    assert results["TestCommitter::test_commits_checkpoint"][0] == "passed"
    assert failing(results, "TestLyingUpsert") == {"test_write_mode_semantics"}
    assert failing(results, "TestChokesOnEmpty") == {"test_empty_batch_is_harmless"}
    forgets = failing(results, "TestForgets")
    assert {"test_commits_checkpoint", "test_open_write_close"} <= forgets
    assert "did not commit" in results["TestForgets::test_commits_checkpoint"][1]
