"""``jobStats``: the GraphQL shape of repository.stats' answers (fields only)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from repository.stats import Bucket, StatsWindow


@strawberry.type(description="How many items share one value (a status, a job type).")
class StatCount:
    key: str | None = strawberry.field(description="The value (null: items without one).")
    count: int = strawberry.field(description="How many items have it.")


@strawberry.type(description="One bucket of a statistics window.")
class ThroughputBucket:
    start: datetime = strawberry.field(description="Where the bucket begins (UTC).")
    created: int = strawberry.field(description="Jobs created in it.")
    completed: int = strawberry.field(description="Jobs that COMPLETED in it.")
    failed: int = strawberry.field(description="Jobs that FAILED in it (cancelled and timed "
                                   "out ones included).")


@strawberry.type(description="Run times, from claim to completion, of the jobs that COMPLETED "
                 "in the window (a retried job's last run).")
class DurationStats:
    count: int = strawberry.field(description="How many completed jobs were measured.")
    p50: float | None = strawberry.field(description="Median, in seconds (null: none).")
    p95: float | None = strawberry.field(
        description="95th percentile, in seconds (nearest rank; null: none).")


@strawberry.type(description="Statistics over the jobs you may read that match the filter.")
class JobStats:
    by_status: list[StatCount] = strawberry.field(
        description="How many matching jobs are in each status (every status listed).")
    by_job_type: list[StatCount] = strawberry.field(
        description="How many matching jobs each job type has, the largest first (at most "
        "1000 types).")
    throughput: list[ThroughputBucket] = strawberry.field(
        description="Per bucket of the window, oldest first, every bucket listed.")
    durations: DurationStats = strawberry.field(
        description="Run times of the matching jobs completed in the window.")
    since: datetime = strawberry.field(description="The window's start.")
    until: datetime = strawberry.field(description="The window's end (excluded).")


@strawberry.enum(description="The size of a throughput bucket.")
class StatsBucket(Enum):
    MINUTE = strawberry.enum_value("minute", description="One minute.")
    HOUR = strawberry.enum_value("hour", description="One hour.")


@strawberry.input(description="The time window of throughput and durations: [since, until), "
                  "at most 1440 buckets.")
class StatsWindowInput:
    since: datetime | None = strawberry.field(
        default=None, description="Start (default: 24 hours before `until`).")
    until: datetime | None = strawberry.field(default=None, description="End (default: now).")
    bucket: StatsBucket = strawberry.field(default=StatsBucket.HOUR,
                                           description="Bucket size (default HOUR).")

    def to_window(self) -> StatsWindow:
        return StatsWindow(self.since, self.until, Bucket[self.bucket.name])
