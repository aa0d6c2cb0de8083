"""Job lifecycle mutations. Each returns the job as it is after the change."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from graph.schema.core.access import AccessArg
from graph.schema.core.claiming import claim_for_caller
from graph.schema.core.context import Info

from .types import (
    CreateJobInput,
    JobErrorInput,
    JobIdArg,
    JobProgressInput,
    LogEntryInput,
    SecretaryJob,
)


@strawberry.type
class JobMutations:
    @strawberry.mutation(description="Create a PENDING job; you become its admin.")
    async def create_job(
        self, info: Info,
        input: Annotated[CreateJobInput, strawberry.argument(description="The new job.")],
    ) -> SecretaryJob:
        return await info.context.store.jobs.create(
            info.context.principal, idempotency_key=input.idempotency_key, **input.fields())

    @strawberry.mutation(
        description="Take the PENDING job of highest priority, oldest first within a priority "
        "(of these types, if given), that is due (`runAt` passed), whose queue is neither "
        "paused nor at its concurrency limit and whose batch is active, and start it. Null "
        "when there is none. Needs the worker role.")
    async def claim_job(
        self,
        info: Info,
        job_types: Annotated[list[str] | None, strawberry.argument(
            description="Job types this worker handles (none: any type).")] = None,
    ) -> SecretaryJob | None:
        jobs, principal = info.context.store.jobs, info.context.principal
        claimed = await claim_for_caller(
            lambda: jobs.claim(principal, job_types), jobs.release_claim,
            info.context.caller_gone, operation="claimJob", user=principal.user_id,
            describe=lambda job: f"job {job.job_id}")
        return claimed

    @strawberry.mutation(description="Report progress of a PROCESSING job; renews the lease.")
    async def update_job_progress(
        self,
        info: Info,
        job_id: JobIdArg,
        progress: Annotated[JobProgressInput, strawberry.argument(
            description="The job's progress now (it replaces the last report).")],
    ) -> SecretaryJob:
        return await info.context.store.jobs.update_progress(
            info.context.principal, job_id, progress.to_model())

    @strawberry.mutation(description="Renew the lease of a PROCESSING job without other change.")
    async def heartbeat_job(self, info: Info, job_id: JobIdArg) -> SecretaryJob:
        return await info.context.store.jobs.heartbeat(info.context.principal, job_id)

    @strawberry.mutation(description="Append log entries (the log keeps the newest entries).")
    async def append_job_logs(
        self,
        info: Info,
        job_id: JobIdArg,
        entries: Annotated[list[LogEntryInput], strawberry.argument(
            description="Entries to append, in order.")],
    ) -> SecretaryJob:
        return await info.context.store.jobs.append_logs(
            info.context.principal, job_id, [(e.level.value, e.message) for e in entries])

    @strawberry.mutation(description="Finish a PROCESSING job successfully with its results. "
                         "Refused with CANCEL_REQUESTED once the job was asked to cancel.")
    async def complete_job(
        self,
        info: Info,
        job_id: JobIdArg,
        results: Annotated[JSON | None, strawberry.argument(
            description="What the job produced (a JSON object).")] = None,
    ) -> SecretaryJob:
        # JSON is any JSON value; the repository refuses one that is not an object
        return await info.context.store.jobs.complete(info.context.principal, job_id,
                                                      cast(dict[str, Any] | None, results))

    @strawberry.mutation(
        description="Fail a PENDING or PROCESSING job. By the worker holding it, a retryable "
        "failure with attempts left puts the job back to PENDING after its retry policy's "
        "delay (the error joins `previousErrors`); a job asked to cancel ends FAILED with "
        "CANCELLED. `retryable: false` makes the failure final.")
    async def fail_job(
        self,
        info: Info,
        job_id: JobIdArg,
        error: Annotated[JobErrorInput, strawberry.argument(description="What went wrong.")],
        retryable: Annotated[bool, strawberry.argument(
            description="False marks the failure as final: no automatic retry, and retryJob "
            "is refused.")] = True,
    ) -> SecretaryJob:
        return await info.context.store.jobs.fail(
            info.context.principal, job_id, code=error.code, message=error.message,
            details=cast(dict[str, Any] | None, error.details), retryable=retryable)

    @strawberry.mutation(description="Put a FAILED job back to PENDING; its error is kept. "
                         "Writers of the job only (not its worker by its claim).")
    async def retry_job(
        self,
        info: Info,
        job_id: JobIdArg,
        run_at: Annotated[datetime | None, strawberry.argument(
            description="Not claimed before this instant (null: at once).")] = None,
    ) -> SecretaryJob:
        return await info.context.store.jobs.retry(info.context.principal, job_id, run_at)

    @strawberry.mutation(
        description="Cancel a job (writers of the job): a PENDING job is FAILED with error "
        "code CANCELLED at once; a PROCESSING job gets `cancelRequested`, which its worker "
        "sees in the answer of each of its mutations, and ends FAILED with CANCELLED when "
        "the worker fails it or its claim ends (never requeued). Asking again changes "
        "nothing.")
    async def cancel_job(
        self,
        info: Info,
        job_id: JobIdArg,
        reason: Annotated[str | None, strawberry.argument(
            description="Why, for the worker and the record.")] = None,
    ) -> SecretaryJob:
        return await info.context.store.jobs.cancel(info.context.principal, job_id, reason)

    @strawberry.mutation(description="Change the priority of a PENDING job (writers of the job).")
    async def set_job_priority(
        self,
        info: Info,
        job_id: JobIdArg,
        priority: Annotated[int, strawberry.argument(
            description="-1000 to 1000; higher is claimed first.")],
    ) -> SecretaryJob:
        return await info.context.store.jobs.set_priority(info.context.principal, job_id,
                                                          priority)

    @strawberry.mutation(description="Delete a job (admins of the job). Returns what was deleted.")
    async def delete_job(self, info: Info, job_id: JobIdArg) -> SecretaryJob:
        return await info.context.store.jobs.delete(info.context.principal, job_id)

    @strawberry.mutation(description="Replace a job's access control (admins of the job).")
    async def set_job_access(
        self, info: Info, job_id: JobIdArg, access_control: AccessArg
    ) -> SecretaryJob:
        return await info.context.store.jobs.set_access(
            info.context.principal, job_id, access_control.to_model())
