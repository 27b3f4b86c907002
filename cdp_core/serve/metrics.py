"""The counters of ``cdp serve``, in the Prometheus text exposition format (``GET /metrics``)."""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the request latency histogram."""


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Thread-safe counters and a latency histogram; :meth:`render` gives the exposition text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted: defaultdict[str, int] = defaultdict(int)
        self.duplicates: defaultdict[str, int] = defaultdict(int)
        self.suppressed: defaultdict[str, int] = defaultdict(int)
        self.rejected: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._latency: defaultdict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self._latency_sum: defaultdict[str, float] = defaultdict(float)
        self.commits = 0
        self.committed_entries = 0

    def stored(self, source: str, accepted: int, duplicates: int) -> None:
        with self._lock:
            self.accepted[source] += accepted
            self.duplicates[source] += duplicates

    def suppress(self, source: str, count: int) -> None:
        with self._lock:
            self.suppressed[source] += count

    def reject(self, source: str, reason: str) -> None:
        with self._lock:
            self.rejected[(source, reason)] += 1

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            counts = self._latency[endpoint]
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            self._latency_sum[endpoint] += seconds

    def committed(self, entries: int, requests: int) -> None:
        with self._lock:
            self.commits += 1
            self.committed_entries += entries

    def render(self) -> str:
        with self._lock:
            lines: list[str] = []

            def family(name: str, kind: str, help_text: str) -> None:
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")

            family("cdp_ingest_accepted_total", "counter", "Messages stored in the ingest log, by source.")
            for source, n in sorted(self.accepted.items()):
                lines.append(f"cdp_ingest_accepted_total{_labels(source=source)} {n}")
            family("cdp_ingest_duplicates_total", "counter", "Messages dropped as a repeated messageId, by source.")
            for source, n in sorted(self.duplicates.items()):
                lines.append(f"cdp_ingest_duplicates_total{_labels(source=source)} {n}")
            family("cdp_ingest_suppressed_total", "counter", "Messages not stored: they carry a suppressed identifier.")
            for source, n in sorted(self.suppressed.items()):
                lines.append(f"cdp_ingest_suppressed_total{_labels(source=source)} {n}")
            family("cdp_ingest_rejected_total", "counter", "Requests refused, by source and reason.")
            for (source, reason), n in sorted(self.rejected.items()):
                lines.append(f"cdp_ingest_rejected_total{_labels(source=source, reason=reason)} {n}")
            family("cdp_ingest_requests_total", "counter", "Requests answered, by endpoint and status.")
            for (endpoint, status), n in sorted(self.requests.items()):
                lines.append(f"cdp_ingest_requests_total{_labels(endpoint=endpoint, status=str(status))} {n}")
            family("cdp_ingest_commits_total", "counter", "Ingest log transactions (one per group of requests).")
            lines.append(f"cdp_ingest_commits_total {self.commits}")
            family("cdp_ingest_committed_entries_total", "counter", "Entries written by those transactions.")
            lines.append(f"cdp_ingest_committed_entries_total {self.committed_entries}")
            family("cdp_ingest_request_duration_seconds", "histogram", "Request latency, by endpoint.")
            for endpoint, counts in sorted(self._latency.items()):
                cumulative = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    cumulative += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f"cdp_ingest_request_duration_seconds_bucket{_labels(endpoint=endpoint, le=le)} {cumulative}")
                lines.append(f"cdp_ingest_request_duration_seconds_sum{_labels(endpoint=endpoint)} {self._latency_sum[endpoint]}")
                lines.append(f"cdp_ingest_request_duration_seconds_count{_labels(endpoint=endpoint)} {cumulative}")
            return "\n".join(lines) + "\n"
