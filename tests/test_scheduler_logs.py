"""Structured logs: JSON lines with the run id and graph of the run each line belongs to, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_scheduler_kit import cli_command, json_lines, ticks_graph, write_config

from cdp_core import logs


@pytest.fixture
def captured() -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """A handler like the CLI's (marked ``_cdp``) on the root logger, writing to a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler._cdp = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    saved = [h for h in root.handlers if getattr(h, "_cdp", False)]
    for h in saved:
        root.removeHandler(h)
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield handler, buffer
    root.removeHandler(handler)
    for h in saved:
        root.addHandler(h)
    root.setLevel(level)


def test_json_lines_carry_the_run_of_their_own_thread(captured: tuple[logging.Handler, io.StringIO]) -> None:
    buffer = captured[1]
    assert logs.configure("json") == "json"
    log = logging.getLogger("cdp.test")
    barrier = threading.Barrier(2)

    def run(graph: str, run_id: str) -> None:
        with logs.context(graph=graph):
            log.info("before the run id is known")
            logs.bind(run_id=run_id)
            barrier.wait()
            log.info("working on %s", graph)
        log.info("after")

    threads = [threading.Thread(target=run, args=(f"g{i}", f"run{i}")) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.warning("outside any run")
    lines = json_lines(buffer.getvalue())
    working = [line for line in lines if line["message"].startswith("working")]
    assert sorted((line["graph"], line["run_id"], line["message"]) for line in working) == [
        ("g0", "run0", "working on g0"),
        ("g1", "run1", "working on g1"),
    ]
    assert all(line["run_id"] is None and line["graph"] in ("g0", "g1") for line in lines if line["message"].startswith("before"))
    assert all(line["run_id"] is None and line["graph"] is None for line in lines if line["message"] in ("after", "outside any run"))
    first = lines[0]
    assert set(first) == {"time", "level", "logger", "message", "run_id", "graph"}
    assert first["logger"] == "cdp.test" and first["level"] == "INFO" and first["time"].endswith("+00:00")


def test_tracebacks_are_redacted_too(captured: tuple[logging.Handler, io.StringIO]) -> None:
    buffer = captured[1]
    logs.configure("json", redact=lambda text: text.replace("hunter22", "***"))
    try:
        raise RuntimeError("token hunter22 refused")
    except RuntimeError:
        logging.getLogger("cdp.test").exception("calling with hunter22")
    [line] = json_lines(buffer.getvalue())
    assert "hunter22" not in json.dumps(line)
    assert line["message"] == "calling with ***" and "token *** refused" in line["exc"]


def test_text_lines_name_the_run(captured: tuple[logging.Handler, io.StringIO]) -> None:
    buffer = captured[1]
    logs.configure("text")
    with logs.context(graph="nightly", run_id="0123456789abcdef"):
        logging.getLogger("cdp.test").info("hello")
    logging.getLogger("cdp.test").info("bye")
    first, second = buffer.getvalue().splitlines()
    assert first.endswith("INFO cdp.test [nightly run=01234567]: hello")
    assert second.endswith("INFO cdp.test: bye")


def test_configure_twice_keeps_one_filter(captured: tuple[logging.Handler, io.StringIO]) -> None:
    handler, _ = captured
    logs.configure("json")
    logs.configure("text")
    assert len([f for f in handler.filters if isinstance(f, logs.ContextFilter)]) == 1
    assert isinstance(handler.formatter, logs.TextFormatter)


def test_the_format_comes_from_the_option_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(logs.FORMAT_ENV, raising=False)
    assert logs.resolve_format(None) == "text"
    monkeypatch.setenv(logs.FORMAT_ENV, "JSON")
    assert logs.resolve_format(None) == "json"
    assert logs.resolve_format("text") == "text"
    with pytest.raises(ValueError, match="unknown log format"):
        logs.resolve_format("xml")


def test_cdp_sync_logs_json_lines_with_the_run_id(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/store.sqlite", ticks_graph("g", ""))
    done = subprocess.run(
        cli_command("--log-level", "INFO", "sync", "g", "-c", str(config), "--json"),
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False, env={"CDP_LOG_FORMAT": "json", **_env()},
    )
    assert done.returncode == 0, done.stderr
    [run] = json.loads(done.stdout)
    lines = json_lines(done.stderr)  # every line, the migration's too
    ours = [line for line in lines if line["logger"] == "cdp.runs"]
    assert len(ours) == 2 and all(line["run_id"] == run["id"] and line["graph"] == "g" for line in ours)


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "CDP_LOG_LEVEL"}
