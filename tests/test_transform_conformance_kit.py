"""The kit's transform conformance suite (cdp_core.testing.transform_conformance): it passes a good transform
and fails each deliberately broken one on the case that names the break (run with pytester)."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("cdp_core.testing")

from kit_outcomes import failing, suite_outcomes

pytest_plugins = ["pytester"]


TRANSFORMS = """
import random

from cdp_core import Record, Register, Transform, hookimpl
from cdp_core.testing import TransformConformance, make_records

pytest_plugins = ["cdp_core.testing"]


class Lower(Transform):
    def process(self, batch, ctx):
        out = []
        for record in batch:
            if record.key == "2":
                ctx.reject(record, "no consent")
                continue
            record.data["email"] = record.data["email"].strip().lower()
            out.append(record)
        return out


class Dicts(Transform):
    def process(self, batch, ctx):
        return [r.data for r in batch]


class Mute(Transform):
    def process(self, batch, ctx):
        for record in batch:
            ctx.reject(record, "")
        return []


class Dice(Transform):
    def process(self, batch, ctx):
        for record in batch:
            record.data["roll"] = random.random()
        return batch


class Echo(Transform):
    def process(self, batch, ctx):
        return batch or [Record(stream="x", key="invented")]


class Plugin:
    def __init__(self, type_name, cls):
        self.type_name, self.cls = type_name, cls

    @hookimpl
    def cdp_register_transforms(self, register: Register) -> None:
        register(self.type_name, self.cls)


class TestLower(TransformConformance):
    plugin = Plugin("lower", Lower)
    type_name = "lower"


class TestDicts(TransformConformance):
    plugin = Plugin("dicts", Dicts)
    type_name = "dicts"


class TestMute(TransformConformance):
    plugin = Plugin("mute", Mute)
    type_name = "mute"


class TestDice(TransformConformance):
    plugin = Plugin("dice", Dice)
    type_name = "dice"


class TestEcho(TransformConformance):
    plugin = Plugin("echo", Echo)
    type_name = "echo"
"""


def test_transform_suite_fails_broken_transforms(pytester: pytest.Pytester) -> None:
    results = suite_outcomes(pytester, TRANSFORMS)
    assert failing(results, "TestLower") == set()
    assert failing(results, "TestDicts") == {"test_returns_records"}
    assert failing(results, "TestMute") == {"test_rejects_carry_a_reason"}
    assert failing(results, "TestDice") == {"test_deterministic"}
    assert failing(results, "TestEcho") == {"test_empty_batch"}
