"""Job lifecycle mutations. Each returns the job as it is after the change."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from graph.schema.core.access import AccessArg, access_or_none
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
            info.context.principal, job_type=input.job_type, parameters=input.parameters,
            access_control=access_or_none(input.access_control), max_attempts=input.max_attempts,
            idempotency_key=input.idempotency_key)

    @strawberry.mutation(
        description="Take the oldest PENDING job (of these types, if given) and start it. "
        "Null when there is none. Needs the worker role.")
    async def claim_job(
        self,
        info: Info,
        job_types: Annotated[list[str] | None, strawberry.argument(
            description="Job types this worker handles (none: any type).")] = None,
    ) -> SecretaryJob | None:
        jobs, principal = info.context.store.jobs, info.context.principal
        return await claim_for_caller(
            lambda: jobs.claim(principal, job_types), jobs.release_claim,
            info.context.caller_gone, operation="claimJob", user=principal.user_id,
            describe=lambda job: f"job {job.job_id}")

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

    @strawberry.mutation(description="Finish a PROCESSING job successfully with its results.")
    async def complete_job(
        self,
        info: Info,
        job_id: JobIdArg,
        results: Annotated[JSON | None, strawberry.argument(
            description="What the job produced (a JSON object).")] = None,
    ) -> SecretaryJob:
        return await info.context.store.jobs.complete(info.context.principal, job_id, results)

    @strawberry.mutation(
        description="Fail a PENDING or PROCESSING job. retryable: false marks it as final.")
    async def fail_job(
        self,
        info: Info,
        job_id: JobIdArg,
        error: Annotated[JobErrorInput, strawberry.argument(description="What went wrong.")],
        retryable: Annotated[bool, strawberry.argument(
            description="False marks the failure as final: retryJob is refused.")] = True,
    ) -> SecretaryJob:
        return await info.context.store.jobs.fail(
            info.context.principal, job_id, code=error.code, message=error.message,
            details=error.details, retryable=retryable)

    @strawberry.mutation(description="Put a FAILED job back to PENDING; its error is kept.")
    async def retry_job(self, info: Info, job_id: JobIdArg) -> SecretaryJob:
        return await info.context.store.jobs.retry(info.context.principal, job_id)

    @strawberry.mutation(description="Delete a job (admins of the job). Returns what was deleted.")
    async def delete_job(self, info: Info, job_id: JobIdArg) -> SecretaryJob:
        return await info.context.store.jobs.delete(info.context.principal, job_id)

    @strawberry.mutation(description="Replace a job's access control (admins of the job).")
    async def set_job_access(
        self, info: Info, job_id: JobIdArg, access_control: AccessArg
    ) -> SecretaryJob:
        return await info.context.store.jobs.set_access(
            info.context.principal, job_id, access_control.to_model())
