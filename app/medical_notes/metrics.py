"""Prometheus metrics of the API, served by GET /metrics in the text exposition format.

Several uvicorn workers serve one port, and a scrape reaches only one of them. `serve` therefore
sets PROMETHEUS_MULTIPROC_DIR (an empty directory under /tmp) before the workers start, and each
worker's counters, histograms and pool gauges live in memory-mapped files there that any worker
adds up when it is scraped (prometheus-client's multiprocess mode). Without that variable (tests,
an app built in-process) the numbers are kept in this app's own registry.

Values that are the same for every worker (index age, last backup) are computed at scrape time.
"""

from __future__ import annotations

import glob
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from medical_notes.backup_status import BackupStatus

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROCESS_DIR_VARIABLE", "Metrics"]

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds; the fast lane answers in about a millisecond, an LLM call can take the whole LLM_TIMEOUT.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


class _StateCollector(Collector):
    """Index age and backup time, computed when scraped."""

    def __init__(
        self,
        index_built_at: Callable[[], float | None],
        backup_status: Callable[[], BackupStatus] | None,
    ) -> None:
        self._index_built_at = index_built_at
        self._backup_status = backup_status

    def collect(self) -> Iterator[Metric]:
        built_at = self._index_built_at()
        if built_at is not None:
            age = GaugeMetricFamily(
                "medical_notes_index_age_seconds", "Seconds since the loaded guideline index was built"
            )
            age.add_metric([], max(time.time() - built_at, 0.0))
            yield age
        if self._backup_status is not None:
            status = self._backup_status()
            success = GaugeMetricFamily(
                "medical_notes_last_backup_success_timestamp_seconds",
                "Unix time of the last successful backup (BACKUP_STATUS_FILE); 0 when none is recorded",
            )
            success.add_metric([], status.last_success_at.timestamp() if status.last_success_at else 0.0)
            yield success
            failing = GaugeMetricFamily(
                "medical_notes_last_backup_failed",
                "1 when the backup status file reports an error for the last attempt, else 0",
            )
            failing.add_metric([], 1.0 if status.last_error else 0.0)
            yield failing


class Metrics:
    def __init__(
        self,
        *,
        index_built_at: Callable[[], float | None],
        backup_status: Callable[[], BackupStatus] | None,
    ) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None
        self._state = _StateCollector(index_built_at, backup_status)
        # In multiprocess mode the values go to files, and a registry is assembled per scrape.
        self._registry = CollectorRegistry()
        registry = None if self.multiprocess_dir else self._registry
        if registry is not None:
            registry.register(self._state)

        # One histogram, labelled with the status too: its _count is the request counter (as in
        # Micrometer's http_server_requests_seconds). A separate counter would cost a third more per
        # request in multiprocess mode, where every value change is a locked write to a file.
        self.requests = Histogram(
            "medical_notes_http_request_duration_seconds",
            "HTTP requests by method, route template and status (499: client disconnected first): "
            "time to the end of the response; _count is the number of requests",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pool_in_use = Gauge(
            "medical_notes_db_pool_connections_in_use",
            "Pooled PostgreSQL connections running a statement (sum over workers)",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_open = Gauge(
            "medical_notes_db_pool_connections_open",
            "Open pooled PostgreSQL connections (sum over workers)",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.database_errors = Counter(
            "medical_notes_database_errors",
            "Requests' database failures: unavailable (503), busy (no free connection, 503), "
            "timeout (statement or lock timeout, 504)",
            ["kind"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "medical_notes_llm_cache_hits",
            "LLM results served from the cache, by operation and layer (memory, database)",
            ["operation", "layer"],
            registry=registry,
        )
        self.cache_misses = Counter(
            "medical_notes_llm_cache_misses",
            "LLM results not in the cache (computed by the provider), by operation",
            ["operation"],
            registry=registry,
        )
        self.cache_invalidations = Counter(
            "medical_notes_llm_cache_invalidations",
            "Notes whose cached results were removed (deleted or edited) as announced to this worker",
            registry=registry,
        )
        self._request_series: dict[tuple[str, str, int], Histogram] = {}

    # ---- recording ----------------------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in KNOWN_METHODS:
            method = "other"
        series = self._request_series.get((method, route, status))
        if series is None:
            series = self.requests.labels(method, route, str(status))
            self._request_series[(method, route, status)] = series
        series.observe(seconds)

    def observe_database_error(self, kind: str) -> None:
        self.database_errors.labels(kind).inc()

    def cache_hit(self, operation: str, layer: str) -> None:
        self.cache_hits.labels(operation, layer).inc()

    def cache_miss(self, operation: str) -> None:
        self.cache_misses.labels(operation).inc()

    def cache_invalidated(self) -> None:
        self.cache_invalidations.inc()

    def set_pool_connections(self, in_use: int, open_connections: int) -> None:
        self.pool_in_use.set(in_use)
        self.pool_open.set(open_connections)

    # ---- exposition ---------------------------------------------------------------------------

    def render(self) -> bytes:
        if not self.multiprocess_dir:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        registry.register(self._state)
        return generate_latest(registry)

    def forget_dead_workers(self) -> None:
        """Drop the pool gauges of workers that died without shutting down (killed, crashed); a
        clean shutdown drops its own through worker_stopped()."""
        if not self.multiprocess_dir:
            return
        for path in glob.glob(os.path.join(self.multiprocess_dir, "gauge_live*.db")):
            match = _LIVE_GAUGE_FILE.search(Path(path).name)
            if match and not _process_exists(int(match.group(1))):
                mark_process_dead(int(match.group(1)), self.multiprocess_dir)

    def worker_stopped(self) -> None:
        if self.multiprocess_dir:
            mark_process_dead(os.getpid(), self.multiprocess_dir)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
