"""Statistics over the jobs and documentation jobs a caller may read (``jobStats``,
``documentationJobStats``).

Each statistic is one aggregation whose ``$match`` is the caller's read filter and the
list filter (``readable_jobs_query``, ``readable_documentation_jobs_query``), so a caller
counts exactly what its lists show, and MongoDB reads it from the same indexes as the
lists (checked by tests/repository/test_index_coverage.py). Durations' percentiles use
``$percentile`` (MongoDB 7.0 and later), bucketing ``$dateTrunc`` (5.0).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from .access import Principal
from .documentation_job_filters import DocumentationJobFilter
from .documentation_jobs import readable_documentation_jobs_query
from .errors import ValidationError
from .job_filters import JobFilter
from .jobs import readable_jobs_query
from .models import DocumentationJobStatus, JobStatus, utcnow
from .mongo_types import Collection

MAX_BUCKETS = 1440
"""The most buckets one throughput answer holds (a day of minutes)."""
MAX_GROUPS = 1000
"""The most job types, repositories or models one answer lists (the largest first)."""
DEFAULT_WINDOW = timedelta(hours=24)
EARLIEST = datetime.min.replace(tzinfo=UTC)


class Bucket(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"

    @property
    def size(self) -> timedelta:
        return timedelta(minutes=1) if self is Bucket.MINUTE else timedelta(hours=1)

    def floor(self, instant: datetime) -> datetime:
        instant = instant.astimezone(UTC).replace(second=0, microsecond=0)
        return instant if self is Bucket.MINUTE else instant.replace(minute=0)


@dataclass(frozen=True)
class StatsWindow:
    """``[since, until)`` in buckets; by default the last 24 hours by the hour."""

    since: datetime | None = None
    until: datetime | None = None
    bucket: Bucket = Bucket.HOUR

    def resolved(self, now: datetime) -> tuple[datetime, datetime]:
        until = self.until or now
        # the default reaches back no further than the first instant a date can hold
        since = self.since or max(until, EARLIEST + DEFAULT_WINDOW) - DEFAULT_WINDOW
        if since >= until:
            raise ValidationError("window.since", "must be before window.until")
        start = self.bucket.floor(since)
        count = -(-(until - start) // self.bucket.size)
        if count > MAX_BUCKETS:
            raise ValidationError("window", f"holds {count} {self.bucket.value}s; at most "
                                  f"{MAX_BUCKETS} (use a shorter window or HOUR buckets)")
        return since, until


@dataclass(frozen=True)
class Count:
    key: str | None
    count: int


@dataclass(frozen=True)
class Throughput:
    start: datetime
    created: int
    completed: int
    failed: int


@dataclass(frozen=True)
class Durations:
    """Run times (claim to completion) of the jobs COMPLETED in the window, in seconds."""

    count: int
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class JobStats:
    by_status: list[Count]
    by_job_type: list[Count]
    throughput: list[Throughput]
    durations: Durations
    since: datetime
    until: datetime


@dataclass(frozen=True)
class Tokens:
    key: str | None
    jobs: int
    tokens: int


@dataclass(frozen=True)
class DocumentationJobStats:
    by_status: list[Count]
    tokens_by_repository: list[Tokens]
    tokens_by_model: list[Tokens]


async def _rows(collection: Collection, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return await (await collection.aggregate(pipeline)).to_list()


def _count_by(field: str, limit: int | None = None) -> list[dict[str, Any]]:
    stages: list[dict[str, Any]] = [{"$group": {"_id": f"${field}", "count": {"$sum": 1}}},
                                    {"$sort": {"count": -1, "_id": 1}}]
    return stages + ([{"$limit": limit}] if limit else [])


async def job_stats(collection: Collection, principal: Principal, job_filter: JobFilter,
                    window: StatsWindow) -> JobStats:
    """Counts by status and by type of the matching jobs; created, completed and failed
    per bucket of ``window``; run-time percentiles of those completed in it."""
    base = readable_jobs_query(principal, job_filter)
    since, until = window.resolved(utcnow())
    within = {"$gte": since, "$lt": until}
    unit = window.bucket.value
    finished = [JobStatus.COMPLETED.value, JobStatus.FAILED.value]
    by_status, by_type, created, ended, durations = await asyncio.gather(
        _rows(collection, [{"$match": base}, *_count_by("status")]),
        _rows(collection, [{"$match": base}, *_count_by("job_type", MAX_GROUPS)]),
        _rows(collection, [
            {"$match": {"$and": [base, {"created_at": within}]}},
            {"$group": {"_id": {"$dateTrunc": {"date": "$created_at", "unit": unit}},
                        "count": {"$sum": 1}}}]),
        _rows(collection, [
            {"$match": {"$and": [base, {"completed_at": within},
                                 {"status": {"$in": finished}}]}},
            {"$group": {"_id": {"at": {"$dateTrunc": {"date": "$completed_at", "unit": unit}},
                                "status": "$status"}, "count": {"$sum": 1}}}]),
        _rows(collection, [
            {"$match": {"$and": [base, {"completed_at": within},
                                 {"status": JobStatus.COMPLETED.value}]}},
            {"$group": {"_id": None, "count": {"$sum": 1}, "p": {"$percentile": {
                "input": {"$subtract": ["$completed_at", "$processing_started_at"]},
                "p": [0.5, 0.95], "method": "approximate"}}}}]),
    )
    statuses = {row["_id"]: row["count"] for row in by_status}
    buckets: dict[datetime, dict[str, int]] = {}
    start = window.bucket.floor(since)
    while start < until:
        buckets[start] = {"created": 0, JobStatus.COMPLETED.value: 0,
                          JobStatus.FAILED.value: 0}
        if until - start <= window.bucket.size:
            break  # the last bucket; stepping past it may overflow year 9999
        start += window.bucket.size
    for row in created:
        buckets.setdefault(row["_id"].astimezone(UTC), {})["created"] = row["count"]
    for row in ended:
        at = row["_id"]["at"].astimezone(UTC)
        buckets.setdefault(at, {})[row["_id"]["status"]] = row["count"]
    summary: dict[str, Any] = durations[0] if durations else {"count": 0, "p": [None, None]}
    p50, p95 = (None if value is None else value / 1000 for value in summary["p"] or
                [None, None])
    return JobStats(
        by_status=[Count(status.value, statuses.get(status.value, 0)) for status in JobStatus],
        by_job_type=[Count(row["_id"], row["count"]) for row in by_type],
        throughput=[Throughput(at, counts.get("created", 0),
                               counts.get(JobStatus.COMPLETED.value, 0),
                               counts.get(JobStatus.FAILED.value, 0))
                    for at, counts in sorted(buckets.items())],
        durations=Durations(summary["count"], p50, p95),
        since=since, until=until)


async def documentation_job_stats(collection: Collection, principal: Principal,
                                  job_filter: DocumentationJobFilter
                                  ) -> DocumentationJobStats:
    """Counts by status, and tokens used per repository and per main model, of the
    matching documentation jobs."""
    base = readable_documentation_jobs_query(principal, job_filter)

    def tokens_by(field: str) -> list[dict[str, Any]]:
        return [{"$match": base},
                {"$group": {"_id": f"${field}", "jobs": {"$sum": 1},
                            "tokens": {"$sum": "$statistics.total_tokens_used"}}},
                {"$sort": {"tokens": -1, "_id": 1}}, {"$limit": MAX_GROUPS}]

    by_status, by_repository, by_model = await asyncio.gather(
        _rows(collection, [{"$match": base}, *_count_by("status")]),
        _rows(collection, tokens_by("repository_name")),
        _rows(collection, tokens_by("llm_config.main_model")))
    statuses = {row["_id"]: row["count"] for row in by_status}
    return DocumentationJobStats(
        by_status=[Count(status.value, statuses.get(status.value, 0))
                   for status in DocumentationJobStatus],
        tokens_by_repository=[Tokens(row["_id"], row["jobs"], row["tokens"])
                              for row in by_repository],
        tokens_by_model=[Tokens(row["_id"], row["jobs"], row["tokens"]) for row in by_model])
