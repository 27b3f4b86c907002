"""A hand-written source for the Pipedrive-like API (tests/examples/pipedrive_source.py, shown in
docs/writing-plugins.md): the same fake and conformance suite as the declarative one, under 80 lines of code."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path
from typing import Any, ClassVar

import httpx
import respx

from cdp_core.http import HttpFactory
from cdp_core.testing import SourceConformance, make_context
from examples import pipedrive_source
from examples.pipedrive_api import BASE, TOKEN, URL, FakePipedrive, persons

SOURCE = Path(pipedrive_source.__file__)
CONFIG: dict[str, Any] = {"base_url": BASE, "api_token": TOKEN, "page_size": 100}


def lines_of_code(path: Path) -> int:
    """Lines holding code: not blank, not only a comment, not inside a docstring."""
    text = path.read_text(encoding="utf-8")
    code: set[int] = set()
    previous = tokenize.NEWLINE
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            pass
        elif token.type == tokenize.STRING and previous in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            pass  # a docstring (a string standing alone as a statement)
        else:
            code.update(range(token.start[0], token.end[0] + 1))
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    return len(code)


def test_under_80_lines_of_code() -> None:
    count = lines_of_code(SOURCE)
    assert 30 < count <= 80, f"{SOURCE.name}: {count} lines of code"


def test_the_counter_skips_blanks_comments_and_docstrings(tmp_path: Path) -> None:
    sample = tmp_path / "s.py"
    sample.write_text('"""Doc.\n\nmore"""\n\n# note\nx = 1  # one\n\ndef f():\n    """Doc."""\n    return (1,\n            2)\n')
    assert lines_of_code(sample) == 4


def test_the_docs_show_it() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    body = SOURCE.read_text(encoding="utf-8").split('"""', 2)[2].strip()
    assert body in docs, "docs/writing-plugins.md must show tests/examples/pipedrive_source.py as it is"


class TestHandWrittenPersons(SourceConformance):
    plugin = pipedrive_source
    type_name = "pipedrive_handwritten"
    config: ClassVar[dict[str, Any]] = CONFIG
    stream = "persons"

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.api = FakePipedrive(persons())
        respx_mock.get(URL).mock(side_effect=self.api)

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        respx_mock.get(URL).mock(side_effect=FakePipedrive([]))

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.api.rows.append({**persons()[0], "id": 6, "update_time": "2024-06-01 08:00:00"})
        self.api.touch(2, "2024-06-02 08:00:00")
        return ["6", "2"]

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str:
        self.api.touch(1, "2024-07-01 09:00:00")
        return "1"


def test_identifier_lists_429_5xx_and_quarantine(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    api = FakePipedrive(persons())
    answers = iter([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(502)])
    cdp_respx.get(URL).mock(side_effect=lambda request: next(answers, None) or api(request))
    config = pipedrive_source.PipedriveConfig.model_validate(CONFIG)
    source = pipedrive_source.PipedriveSource(config, make_context(tmp_path, "pd", services={"http": cdp_http}))
    pages = list(source.stream("persons").read(None))
    records = [r for p in pages for r in p.records]
    assert [r.key for r in records] == ["1", "2", "3", "4", "5"]
    assert records[0].identifiers["email"] == ["p1.0@example.com", "p1.1@example.com"]
    assert records[1].identifiers["phone"] == ["+4930200000", "+4930210000"]
    assert {r.reason for p in pages for r in p.rejects} == {"a person without an id"}
    assert 3.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]
