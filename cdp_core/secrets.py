"""Secret values resolved from ``${ENV_VAR}`` references, and their redaction everywhere."""

from __future__ import annotations

import logging
import re

REDACTED = "***"


class Redactor:
    """Knows every secret value of a loaded config and blanks it out of any text."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        # Very short values would blank out ordinary words; a 3-character token is no secret.
        if len(value) >= 4:
            self._values.add(value)
            self._pattern = None

    def __call__(self, text: str) -> str:
        if not self._values:
            return text
        if self._pattern is None:
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))
        return self._pattern.sub(REDACTED, text)

    def filter(self) -> logging.Filter:
        """A logging filter that redacts every record's message and arguments."""
        redact = self

        class _RedactFilter(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                message = record.getMessage()
                cleaned = redact(message)
                if cleaned != message:
                    record.msg, record.args = cleaned, None
                return True

        return _RedactFilter()
