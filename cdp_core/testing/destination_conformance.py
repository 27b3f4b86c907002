"""The destination conformance suite: the contract of a destination (base.Destination).

Subclass :class:`DestinationConformance` in a module pytest collects (see
:mod:`cdp_core.testing.conformance`); mix :class:`~cdp_core.testing.forget_conformance.ForgetConformance`
into it for a destination that ``supports_forget``. See docs/testing.md.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from cdp_core.base import ConnectorContext, Destination, WriteMode
from cdp_core.plugins import Role
from cdp_core.records import Record, RecordKind, Rejected
from cdp_core.store import Checkpoint, SystemStore
from cdp_core.testing.conformance_base import UNKNOWN_KEY, PluginConformance, check_config_model
from cdp_core.testing.forget_conformance import ForgetConformance
from cdp_core.testing.helpers import make_context, make_records

__all__ = ["DestinationConformance"]


class DestinationConformance(PluginConformance):
    """The contract of a destination (base.Destination).

    Set ``plugin``, ``type_name``, ``config`` (and ``options``, ``sample_records``);
    override :meth:`read_back` so the suite can check what was written and the
    declared ``write_mode``.
    """

    role: ClassVar[Role] = "destination"
    config: ClassVar[dict[str, Any]] = {}
    options: ClassVar[dict[str, Any]] = {}
    """Per-node options for ``options_model``."""
    connector_name: ClassVar[str] = "conformance"
    sample_records: ClassVar[list[Record]] = make_records(3)
    """Records with distinct keys, of kinds the destination accepts."""

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str] | None:
        """The keys the destination now holds, one per stored record (None: not checked)."""
        return None

    def make_context(self, tmp_path: Path) -> ConnectorContext:
        return make_context(tmp_path, self.connector_name)

    @pytest.fixture
    def build_destination(self, plugin_class: type, tmp_path: Path) -> Callable[[], Destination]:
        def build() -> Destination:
            config = plugin_class.config_model.model_validate(self.config)  # type: ignore[attr-defined]
            options = plugin_class.options_model.model_validate(self.options)  # type: ignore[attr-defined]
            destination = plugin_class(config, self.make_context(tmp_path), options)
            assert isinstance(destination, Destination), f"{plugin_class.__name__} is not a cdp_core.Destination"
            return destination

        return build

    def _batch(self) -> list[Record]:
        return copy.deepcopy(self.sample_records)

    def _checkpoint(self, commit: bool) -> Checkpoint:
        """A checkpoint as the runner hands it: owned by this node only if it commits checkpoints."""
        checkpoint = Checkpoint("conformance", "run-1", {"conformance.source": {"position": 3}})
        checkpoint.node = "conformance.node"  # type: ignore[attr-defined, unused-ignore]
        checkpoint.commit_by = "conformance.node" if commit else None  # type: ignore[attr-defined, unused-ignore]
        return checkpoint

    def _write(self, destination: Destination, batch: list[Record]) -> list[str]:
        """Write ``batch`` with a fresh checkpoint; return the keys it should now hold (minus those it rejected)."""
        checkpoint = self._checkpoint(commit=destination.commits_checkpoint)
        destination.write(batch, checkpoint)
        keys = [r.key for r in batch]
        refused: list[str] = []
        for _node, rejected in checkpoint.rejected:
            assert rejected.reason and rejected.reason.strip(), f"record {rejected.key!r} rejected without a reason"
            assert rejected.key in keys, f"rejected key {rejected.key!r} is not in the batch written"
            refused.append(str(rejected.key))
        if destination.commits_checkpoint:
            assert checkpoint.committed, "commits_checkpoint is True but write() did not commit the checkpoint"
        else:
            assert not checkpoint.committed, "commits_checkpoint is False but write() committed the checkpoint"
        return list((Counter(keys) - Counter(refused)).elements())

    def _check_read_back(self, destination: Destination, tmp_path: Path, expected: list[str], what: str) -> None:
        held = self.read_back(destination, tmp_path)
        if held is not None:
            assert Counter(held) == Counter(expected), (
                f"{what}: destination holds {sorted(held)}, expected {sorted(expected)}"
            )

    @pytest.fixture
    def system_store(self, tmp_path: Path) -> Iterator[SystemStore]:
        """The system tables (sync state, quarantine) at the context's store URL, where a checkpoint goes."""
        store = SystemStore(self.make_context(tmp_path).store_url).create()
        yield store
        store.engine.dispose()

    def test_options_model(self, plugin_class: type) -> None:
        """``options_model`` subclasses PluginConfig, refuses unknown keys and accepts ``options``."""
        model = plugin_class.options_model  # type: ignore[attr-defined]
        check_config_model(model, f"{plugin_class.__name__}.options_model")
        model.model_validate(self.options)
        with pytest.raises(ValidationError):
            model.model_validate({**self.options, UNKNOWN_KEY: 1})

    def test_forget_default(self, plugin_class: type) -> None:
        """``supports_forget`` is a bool; a class without it keeps the default ``forget`` (ForgetConformance tests one with it)."""
        supports = plugin_class.supports_forget  # type: ignore[attr-defined]
        assert isinstance(supports, bool), f"supports_forget must be a bool, got {supports!r}"
        if supports:
            assert isinstance(self, ForgetConformance), "supports_forget is True: mix ForgetConformance into this suite"
        else:
            assert plugin_class.forget is Destination.forget, "forget() is implemented but supports_forget is False"  # type: ignore[attr-defined]

    def test_write_mode_declared(self, plugin_class: type) -> None:
        """``write_mode`` is a WriteMode, ``accepts`` None or a set of kinds, and the samples are accepted."""
        write_mode = plugin_class.write_mode  # type: ignore[attr-defined]
        assert isinstance(write_mode, WriteMode), "write_mode must be a cdp_core.WriteMode"
        accepts = plugin_class.accepts  # type: ignore[attr-defined]
        if accepts is not None:
            assert all(isinstance(k, RecordKind) for k in accepts), f"accepts must hold RecordKinds: {accepts!r}"
            refused = sorted({r.kind for r in self.sample_records} - set(accepts))
            assert not refused, f"sample_records hold kinds the destination does not accept: {refused}"
        assert isinstance(plugin_class.commits_checkpoint, bool)  # type: ignore[attr-defined]

    def test_open_write_close(
        self, build_destination: Callable[[], Destination], tmp_path: Path, system_store: SystemStore
    ) -> None:
        """open, write a batch, close: the batch is held (but for records rejected with a reason)."""
        assert self.sample_records, "set sample_records: the suite needs records to write"
        destination = build_destination()
        destination.open()
        try:
            expected = self._write(destination, self._batch())
        finally:
            destination.close()
        self._check_read_back(destination, tmp_path, expected, "after one batch")

    def test_empty_batch_is_harmless(
        self, build_destination: Callable[[], Destination], tmp_path: Path, system_store: SystemStore
    ) -> None:
        """Writing an empty batch stores nothing and breaks nothing."""
        destination = build_destination()
        destination.open()
        try:
            self._write(destination, [])
            self._check_read_back(destination, tmp_path, [], "after an empty batch")
            expected = self._write(destination, self._batch())
            self._write(destination, [])
        finally:
            destination.close()
        self._check_read_back(destination, tmp_path, expected, "empty, full, empty batch")

    def test_write_mode_semantics(
        self, build_destination: Callable[[], Destination], tmp_path: Path, system_store: SystemStore
    ) -> None:
        """The same batch written twice: append holds it twice, upsert once."""
        destination = build_destination()
        destination.open()
        try:
            first = self._write(destination, self._batch())
            second = self._write(destination, self._batch())
        finally:
            destination.close()
        held = self.read_back(destination, tmp_path)
        assert held is not None, (
            "implement read_back(destination, tmp_path) returning the keys the destination holds: it proves the "
            "declared write_mode (append keeps both deliveries, upsert keeps one)"
        )
        expected = first + second if destination.write_mode is WriteMode.append else sorted(set(first + second))
        assert Counter(held) == Counter(expected), (
            f"write_mode {destination.write_mode}: after writing the batch twice the destination holds "
            f"{sorted(held)}, expected {sorted(expected)}"
        )

    def test_commits_checkpoint(
        self, build_destination: Callable[[], Destination], tmp_path: Path, system_store: SystemStore
    ) -> None:
        """A destination with ``commits_checkpoint`` commits the cursor and quarantine with its batch."""
        destination = build_destination()
        if not destination.commits_checkpoint:
            # The runner commits for it; writing must leave the checkpoint alone.
            checkpoint = self._checkpoint(commit=False)
            destination.open()
            try:
                destination.write(self._batch(), checkpoint)
            finally:
                destination.close()
            assert not checkpoint.committed, "commits_checkpoint is False, yet write() committed the checkpoint"
            return
        checkpoint = self._checkpoint(commit=True)
        checkpoint.rejected.append(
            ("conformance.node", Rejected(reason="conformance: rejected on purpose", raw={"id": "x"}, key="x"))
        )
        destination.open()
        try:
            destination.write(self._batch(), checkpoint)
        finally:
            destination.close()
        assert checkpoint.committed, "write() was handed a checkpoint but did not commit it"
        cursor = system_store.cursor("conformance", "conformance.source")
        assert cursor == {"position": 3}, f"the checkpoint's cursor was not stored (found {cursor!r})"
        assert system_store.quarantine_count("conformance") >= 1, "the checkpoint's rejected record was not stored"
