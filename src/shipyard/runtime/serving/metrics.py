"""Prometheus metrics through prometheus-client.

With several workers the metrics use prometheus-client's multiprocess mode: every worker writes
its samples to memory-mapped files in a folder the server creates (``PROMETHEUS_MULTIPROC_DIR``,
set before ``prometheus_client`` is first imported), and ``/metrics`` aggregates the files of
all workers. Workers share one listening socket, so a scrape reaches one of them at random;
only shared files let any worker answer for all (per-worker registries would each show a
part). With one worker the samples stay in memory.

Exposed (every sample labelled ``model`` and ``version``)::

    shipyard_requests_total{route, status}         counter
    shipyard_request_duration_seconds{route}       histogram
    shipyard_prediction_errors_total               counter: predict raised or misbehaved
    shipyard_batch_rows                            histogram: rows per predict call
"""

from __future__ import annotations

import os
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created: noise


class Metrics:
    def __init__(self, model: str, version: str) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess = MULTIPROCESS_ENV in os.environ
        labels = {"model": model, "version": version}
        self._labels = labels
        registry = self.registry
        self.requests = Counter(
            "shipyard_requests",
            "HTTP requests by route and status.",
            [*labels, "route", "status"],
            registry=registry,
        )
        self.durations = Histogram(
            "shipyard_request_duration_seconds",
            "Time to answer a request.",
            [*labels, "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.prediction_errors = Counter(
            "shipyard_prediction_errors",
            "Calls to predict that raised or returned a wrong count.",
            list(labels),
            registry=registry,
        ).labels(**labels)
        self.batch_rows = Histogram(
            "shipyard_batch_rows",
            "Rows per predict call.",
            list(labels),
            buckets=BATCH_BUCKETS,
            registry=registry,
        ).labels(**labels)
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        children = self._children.get((route, status))
        if children is None:  # labels() costs a lock and a dict walk: once per (route, status)
            children = (
                self.requests.labels(**self._labels, route=route, status=str(status)),
                self.durations.labels(**self._labels, route=route),
            )
            self._children[route, status] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
