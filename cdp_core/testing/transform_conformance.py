"""The transform conformance suite: the contract of a transform (base.Transform), pure and deterministic.

Subclass :class:`TransformConformance` in a module pytest collects (see
:mod:`cdp_core.testing.conformance`). See docs/testing.md.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from cdp_core.base import Transform, TransformContext
from cdp_core.plugins import Role
from cdp_core.records import Record, Rejected
from cdp_core.testing.conformance_base import PluginConformance
from cdp_core.testing.helpers import make_records

__all__ = ["TransformConformance"]


class TransformConformance(PluginConformance):
    """The contract of a transform (base.Transform): pure, deterministic, batch in / batch out.

    Set ``plugin``, ``type_name``, ``options`` and ``sample_records`` (records the
    transform passes and, ideally, some it rejects).
    """

    role: ClassVar[Role] = "transform"
    options: ClassVar[dict[str, Any]] = {}
    """The node's options (``[syncs.G.nodes.N] options = {...}``)."""
    sample_records: ClassVar[list[Record]] = make_records(3)

    def _config_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def _process(self, plugin_class: type, batch: list[Record]) -> tuple[Any, TransformContext]:
        options = plugin_class.config_model.model_validate(self.options)  # type: ignore[attr-defined]
        transform = plugin_class(options)
        assert isinstance(transform, Transform), f"{plugin_class.__name__} is not a cdp_core.Transform"
        ctx = TransformContext("conformance")
        return transform.process(copy.deepcopy(batch), ctx), ctx

    def test_sample_records(self) -> None:
        """The suite has records to work on."""
        assert self.sample_records, "set sample_records: the suite needs records to process"
        assert all(isinstance(r, Record) for r in self.sample_records), "sample_records must be cdp_core.Record"

    def test_empty_batch(self, plugin_class: type) -> None:
        """Processing an empty batch returns [] and rejects nothing."""
        out, ctx = self._process(plugin_class, [])
        assert out == [], f"an empty batch gave {out!r}"
        assert not ctx.rejected, f"an empty batch rejected {ctx.rejected!r}"

    def test_returns_records(self, plugin_class: type) -> None:
        """The result is a list of Records with non-empty keys."""
        out, _ = self._process(plugin_class, self.sample_records)
        assert isinstance(out, list), f"process() returned {type(out).__name__}, not a list"
        for item in out:
            assert isinstance(item, Record), f"process() returned {item!r}, not a cdp_core.Record"
            assert item.key, "process() returned a record with an empty key"

    def test_rejects_carry_a_reason(self, plugin_class: type) -> None:
        """Every rejected record has a reason and is one of the input records."""
        _, ctx = self._process(plugin_class, self.sample_records)
        keys = {r.key for r in self.sample_records}
        for rejected in ctx.rejected:
            assert isinstance(rejected, Rejected), f"rejected {rejected!r} is not a cdp_core.Rejected"
            assert rejected.reason and rejected.reason.strip(), f"record {rejected.key!r} rejected without a reason"
            assert rejected.key in keys, f"rejected key {rejected.key!r} is not an input record's key"

    def test_deterministic(self, plugin_class: type) -> None:
        """The same batch gives the same output and rejections, every time."""
        first, ctx1 = self._process(plugin_class, self.sample_records)
        second, ctx2 = self._process(plugin_class, self.sample_records)
        assert _dumps(first) == _dumps(second), "two runs gave different output"
        assert [r.model_dump() for r in ctx1.rejected] == [r.model_dump() for r in ctx2.rejected], (
            "two runs rejected differently"
        )


def _dumps(items: Any) -> list[Any]:
    return [item.model_dump() if isinstance(item, Record) else item for item in items]
