"""GraphQL types of queues and workers: the operators' view of the job types."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from graph.schema.core.context import Context, Info
from graph.schema.core.node import Node, global_id
from graph.schema.jobs.types import SecretaryJob
from repository.queues import Queue as QueueModel
from repository.queues import can_configure
from repository.workers import Worker as WorkerModel

JobTypeArg = Annotated[str, strawberry.argument(description="The job type (the queue's name).")]
SeenWithinArg = Annotated[int, strawberry.argument(
    description="Workers seen in the last this many seconds (1 to 604800).")]


@strawberry.type(description="How many of a queue's jobs are in each state.")
class QueueCounts:
    pending: int = strawberry.field(description="PENDING and due (`runAt` passed or unset); "
                                    "those of inactive batches included.")
    delayed: int = strawberry.field(description="PENDING with `runAt` still ahead.")
    processing: int = strawberry.field(description="Claimed and running.")
    completed: int = strawberry.field(description="Finished successfully.")
    failed: int = strawberry.field(description="FAILED, not counting the cancelled.")
    cancelled: int = strawberry.field(description="FAILED with error code CANCELLED.")
    total: int = strawberry.field(description="All jobs of the type.")


@strawberry.type(description="A worker (a user id that claims jobs), as last seen.")
class Worker(Node):
    worker_id: str = strawberry.field(description="The worker's user id (its token's `sub`).")

    @strawberry.field(description="Global id (Relay's Node).")  # type: ignore[misc]  # Node's id field, here a resolver
    @staticmethod
    def id(root: WorkerModel) -> strawberry.ID:
        return global_id("Worker", root.worker_id)

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, WorkerModel | cls)

    job_types: list[str] | None = strawberry.field(
        description="The job types of its last claim; null when it asked for any type.")
    last_seen: datetime = strawberry.field(
        description="Its last claim or lease renewal (to within 5 seconds).")
    jobs: list[SecretaryJob] = strawberry.field(
        description="The jobs it holds (PROCESSING) that you may read.")
    job_count: int = strawberry.field(description="All the jobs it holds, readable or not.")


@strawberry.type(description="The jobs of one job type: their counts, and whether and how "
                 "fast claims may take them.")
class Queue(Node):
    job_type: str = strawberry.field(description="The job type.")

    @strawberry.field(description="Global id (Relay's Node); `jobType` is the queue's own id.")  # type: ignore[misc]  # Node's id field, here a resolver
    @staticmethod
    def id(root: QueueModel) -> strawberry.ID:
        return global_id("Queue", root.job_type)

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, QueueModel | cls)

    paused: bool = strawberry.field(description="Claims skip a paused queue's jobs.")
    max_concurrency: int | None = strawberry.field(
        description="The most jobs of this type PROCESSING at once, across all API "
        "processes; null: no limit.")
    counts: QueueCounts = strawberry.field(description="Its jobs by state.")
    oldest_claimable_since: datetime | None = strawberry.field(
        description="Since when the longest-waiting claimable job (PENDING, due, not held by "
        "an inactive batch) has waited: its creation, or its `runAt` if later. Null when "
        "none waits.")
    updated_at: datetime | None = strawberry.field(
        description="When an admin last paused, resumed or limited it.")
    updated_by: str | None = strawberry.field(description="Who did.")
    workers: list[Worker] = strawberry.field(
        description="Workers seen taking this type lately (see the query's argument).")

    @strawberry.field(description="Whether you may pause, resume and limit it (`pauseQueue`, "
                      "`resumeQueue`, `setQueueConcurrency`): the admin role.")
    @staticmethod
    def viewer_can_admin(root: QueueModel, info: Info) -> bool:
        return can_configure(info.context.principal)

    @strawberry.field(description="Seconds the longest-waiting claimable job has waited.")
    @staticmethod
    def oldest_claimable_age_seconds(root: QueueModel) -> float | None:
        return root.oldest_claimable_age


async def fetch_queues(context: Context, job_types: list[str]) -> dict[str, QueueModel]:
    """``node(id:)`` for queues (operators only)."""
    return await context.store.queues.get_many(context.principal, job_types)


async def fetch_workers(context: Context, worker_ids: list[str]) -> dict[str, WorkerModel]:
    """``node(id:)`` for workers (operators only)."""
    return await context.store.workers.get_many(context.principal, worker_ids)
