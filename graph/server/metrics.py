"""Prometheus metrics, one ``CollectorRegistry`` per app (``app.state.metrics``).

Request counts and latency by operation name, errors by code, live WebSockets and
subscriptions, change stream lag, schedule fires and webhook deliveries, and jobs by
status and the webhook outbox depth, each counted with one query that is bounded in time
and never breaks ``/metrics`` when MongoDB is down.

``/metrics`` is served only to a scraper that sends ``JOBGRAPH_METRICS_TOKEN`` as a bearer
token (not at all while none is set): it tells anyone who reads it how busy the service
is, and how it fails. The database counts (jobs by status, outbox depth) run at most once
per ``JOBGRAPH_METRICS_JOBS_INTERVAL_SECONDS``, however many scrapes come (concurrent ones
share them), so scraping cannot load the database.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from graph.config.settings import Settings
from repository.database import Store
from repository.errors import ErrorCode
from repository.models import JobStatus

from .error_bodies import error_body

logger = logging.getLogger("jobgraph.metrics")

MAX_OPERATION_NAMES = 500
"""Operation names are chosen by clients; past this many, new ones count as ``other``."""
MAX_NAME_LENGTH = 100
JOBS_COUNT_SECONDS = 1.0
"""How long a scrape waits for the jobs-by-status aggregation."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Counted:
    """A value counted in the database, at most once per interval: a count already running
    is awaited, not repeated (nor cancelled with the scrape that waits for it)."""

    def __init__(self) -> None:
        self.counted_at: float | None = None
        """``time.monotonic()`` when the last count ended, successful or not."""
        self.counting: asyncio.Task[None] | None = None

    def forget(self) -> None:
        """No database to count in: no value."""

    async def refresh(self, store: Store | None, interval: float,
                      count: Callable[[], Awaitable[None]]) -> None:
        if store is None:
            self.forget()
            return
        if self.counted_at is not None and time.monotonic() - self.counted_at < interval:
            return
        if self.counting is None:
            self.counting = asyncio.create_task(self._count(count))
        await asyncio.shield(self.counting)

    async def _count(self, count: Callable[[], Awaitable[None]]) -> None:
        try:
            await count()
        finally:
            self.counted_at = time.monotonic()
            self.counting = None


MAX_JOB_TYPE_LABELS = 200
"""Job types are chosen by clients; past this many (the largest kept), the rest are
counted together as ``job_type="_other"``."""


class JobsByStatus(Counted):
    """A collector that reports the last count of jobs by status and job type (None: it
    failed)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[tuple[JobStatus, str], int] | None = None

    def forget(self) -> None:
        self.counts = None

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        up = GaugeMetricFamily(
            "jobgraph_database_up",
            "1 if MongoDB answered the jobs count of this scrape in time, else 0.")
        up.add_metric([], 0 if counts is None else 1)
        yield up
        if counts is not None:
            jobs = GaugeMetricFamily("jobgraph_jobs", "Jobs in the database by status and "
                                     "job type.", labels=["status", "job_type"])
            for (status, job_type), count in capped(counts).items():
                jobs.add_metric([status.value, job_type], count)
            yield jobs


def capped(counts: dict[tuple[JobStatus, str], int]) -> dict[tuple[JobStatus, str], int]:
    """At most ``MAX_JOB_TYPE_LABELS`` job types (the largest), the rest as ``_other``."""
    totals: dict[str, int] = {}
    for (_, job_type), count in counts.items():
        totals[str(job_type)] = totals.get(str(job_type), 0) + count
    kept = set(sorted(totals, key=lambda name: (-totals[name], name))[:MAX_JOB_TYPE_LABELS])
    result: dict[tuple[JobStatus, str], int] = {}
    for (status, job_type), count in counts.items():
        key = (status, str(job_type) if str(job_type) in kept else "_other")
        result[key] = result.get(key, 0) + count
    return result


class OutboxDepth(Counted):
    """A collector that reports the last count of the webhook outbox (None: it failed)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth: int | None = None

    def forget(self) -> None:
        self.depth = None

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        if self.depth is not None:
            depth = GaugeMetricFamily(
                "jobgraph_webhook_outbox_depth",
                "Webhook deliveries waiting to be sent or being sent (all processes).")
            depth.add_metric([], self.depth)
            yield depth


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        labels = ["operation_name", "operation_type"]
        self.requests = Counter(
            "jobgraph_graphql_requests",
            "GraphQL operations run, over HTTP or WebSocket (subscriptions when they end).",
            labels, registry=registry)
        self.latency = Histogram(
            "jobgraph_graphql_request_duration_seconds",
            "Time to run a query or mutation, from parsing to the result (no subscriptions).",
            labels, buckets=LATENCY_BUCKETS, registry=registry)
        self.errors = Counter(
            "jobgraph_graphql_errors", "Errors returned to clients, by their extensions.code.",
            ["code"], registry=registry)
        self.websockets = Gauge(
            "jobgraph_websocket_connections", "WebSocket connections open now.",
            registry=registry)
        self.subscriptions = Gauge(
            "jobgraph_subscriptions_active", "GraphQL subscriptions running now.",
            registry=registry)
        self.change_stream_lag = Gauge(
            "jobgraph_change_stream_lag_seconds",
            "Age of the last change stream event when this process received it "
            "(NaN until the first event).",
            registry=registry)
        self.change_stream_lag.set(math.nan)
        self.change_events = Counter(
            "jobgraph_change_stream_events", "Change stream events this process received.",
            registry=registry)
        self.jobs = JobsByStatus()
        registry.register(self.jobs)
        self.schedule_fires = Counter(
            "jobgraph_schedule_fires", "Jobs created by schedules in this process.",
            registry=registry)
        self.schedule_skips = Counter(
            "jobgraph_schedule_skipped_fires",
            "Missed fire times a misfire policy let pass without a job, in this process.",
            registry=registry)
        self.webhook_messages = Counter(
            "jobgraph_webhook_messages",
            "Webhook deliveries this process wrote to the outbox.", registry=registry)
        self.webhook_attempts = Counter(
            "jobgraph_webhook_deliveries",
            "Webhook delivery attempts by this process, by outcome (delivered, failed: will "
            "be retried, dead: no tries left, skipped: object gone or hidden).",
            ["outcome"], registry=registry)
        self.webhook_duration = Histogram(
            "jobgraph_webhook_delivery_duration_seconds",
            "Time of one webhook delivery attempt, checks and the HTTP request.",
            buckets=LATENCY_BUCKETS, registry=registry)
        self.outbox = OutboxDepth()
        registry.register(self.outbox)
        self._names: set[str] = set()
        self._children: dict[tuple[str | None, str], tuple[Any, Any]] = {}

    # -- hooks for the request path and the realtime hub --------------------

    def operation_finished(self, name: str | None, operation_type: str,
                           seconds: float | None, codes: Iterable[str]) -> None:
        """One operation done; ``seconds`` None leaves latency alone (subscriptions)."""
        key = (name, operation_type)
        children = self._children.get(key)
        if children is None:  # labels() validates and locks on every call: once per name
            label = self.operation_label(name)
            children = (self.requests.labels(label, operation_type),
                        self.latency.labels(label, operation_type))
            if len(self._children) < 4 * MAX_OPERATION_NAMES:
                self._children[key] = children
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)
        for code in codes:
            self.errors.labels(code).inc()

    def error(self, code: str) -> None:
        """A request refused before any operation ran (401, 406, 413, ...)."""
        self.errors.labels(code).inc()

    def websocket_opened(self) -> None:
        self.websockets.inc()

    def websocket_closed(self) -> None:
        self.websockets.dec()

    def subscription_started(self) -> None:
        self.subscriptions.inc()

    def subscription_stopped(self) -> None:
        self.subscriptions.dec()

    def set_change_stream_lag(self, seconds: float) -> None:
        self.change_stream_lag.set(max(seconds, 0.0))

    def change_event(self) -> None:
        self.change_events.inc()

    def schedule_fired(self, created: int, skipped: int) -> None:
        if created:
            self.schedule_fires.inc(created)
        if skipped:
            self.schedule_skips.inc(skipped)

    def webhooks_enqueued(self, count: int) -> None:
        self.webhook_messages.inc(count)

    def webhook_attempt(self, outcome: str, seconds: float) -> None:
        self.webhook_attempts.labels(outcome).inc()
        self.webhook_duration.observe(seconds)

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        name = name[:MAX_NAME_LENGTH]
        if name in self._names:
            return name
        if len(self._names) >= MAX_OPERATION_NAMES:
            return "other"
        self._names.add(name)
        return name

    # -- scrape -------------------------------------------------------------

    async def refresh_jobs(self, store: Store | None, seconds: float = JOBS_COUNT_SECONDS,
                           *, interval: float = 0.0) -> None:
        """Count the jobs again unless the last count is younger than ``interval``."""
        await self.jobs.refresh(store, interval, lambda: self._count_jobs(store, seconds))

    async def refresh_outbox(self, store: Store | None, seconds: float = JOBS_COUNT_SECONDS,
                             *, interval: float = 0.0) -> None:
        """Count the outbox again unless the last count is younger than ``interval``."""
        await self.outbox.refresh(store, interval, lambda: self._count_outbox(store, seconds))

    async def _count_jobs(self, store: Any, seconds: float) -> None:
        try:
            # pymongo's own time limit first; wait_for only in case the call hangs anyway
            self.jobs.counts = await asyncio.wait_for(
                store.jobs.count_by_status_and_type(seconds=seconds), seconds + 1.0)
        except Exception as exc:
            logger.warning("jobs by status not counted: %s", str(exc).splitlines()[0]
                           if str(exc) else type(exc).__name__)
            self.jobs.counts = None

    async def _count_outbox(self, store: Any, seconds: float) -> None:
        try:
            self.outbox.depth = await asyncio.wait_for(store.deliveries.depth(), seconds)
        except Exception as exc:
            logger.warning("webhook outbox depth not counted: %s", str(exc).splitlines()[0]
                           if str(exc) else type(exc).__name__)
            self.outbox.depth = None


def scraper_refusal(settings: Settings, authorization: str | None) -> Response | None:
    """None when the request carries the metrics token; else what to answer."""
    expected = settings.metrics_token
    if expected is None:
        return JSONResponse(error_body(ErrorCode.NOT_FOUND, "metrics are not served: "
                                       "set JOBGRAPH_METRICS_TOKEN to serve them"), 404)
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), expected.get_secret_value().encode()):
        return None
    return JSONResponse(
        error_body(ErrorCode.UNAUTHENTICATED,
                   "/metrics needs `Authorization: Bearer <JOBGRAPH_METRICS_TOKEN>`"),
        401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


async def metrics_endpoint(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    refusal = scraper_refusal(settings, request.headers.get("authorization"))
    if refusal is not None:
        return refusal
    metrics: Metrics = request.app.state.metrics
    store = getattr(request.app.state, "store", None)
    interval = settings.metrics_jobs_interval_seconds
    await asyncio.gather(metrics.refresh_jobs(store, interval=interval),
                         metrics.refresh_outbox(store, interval=interval))
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(metrics.registry), headers={"Content-Type": content_type})
