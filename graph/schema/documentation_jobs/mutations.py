"""Documentation job lifecycle mutations; each returns the job after the change."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.access import AccessArg, access_or_none
from graph.schema.core.claiming import claim_for_caller
from graph.schema.core.context import Info

from .types import (
    CreateDocumentationJobInput,
    DocumentationJob,
    DocumentationJobIdArg,
    JobStatisticsIncrementInput,
    JobStatisticsInput,
    statistics_values,
)

UNFINISHED_ONLY = " Refused once the job is COMPLETED or FAILED (INVALID_TRANSITION)."
RENEWS = " Renews the holder's lease."


@strawberry.type
class DocumentationJobMutations:
    @strawberry.mutation(description="Create a PENDING documentation job; you become its admin.")
    async def create_documentation_job(
        self,
        info: Info,
        input: Annotated[CreateDocumentationJobInput, strawberry.argument(
            description="The new documentation job.")],
    ) -> DocumentationJob:
        jobs = info.context.store.documentation_jobs
        return await jobs.create(
            info.context.principal,
            repository_path=input.repository_path, repository_name=input.repository_name,
            output_directory=input.output_directory, commit_hash=input.commit_hash,
            branch_name=input.branch_name,
            generation_options=input.generation_options.to_model()
            if input.generation_options else None,
            llm_config=input.llm_config.to_model() if input.llm_config else None,
            access_control=access_or_none(input.access_control),
            retry_policy=input.retry_policy.to_model(jobs.default_retry_policy)
            if input.retry_policy else None,
            idempotency_key=input.idempotency_key)

    @strawberry.mutation(
        description="Take the PENDING documentation job due first (`runAt`, then the oldest) "
        "and run it: RUNNING, held by you under a lease, `attempts` one more. Null when none "
        "is due. Needs the worker role.")
    async def claim_documentation_job(self, info: Info) -> DocumentationJob | None:
        jobs, principal = info.context.store.documentation_jobs, info.context.principal
        claimed = await claim_for_caller(
            lambda: jobs.claim(principal), jobs.release_claim, info.context.caller_gone,
            operation="claimDocumentationJob", user=principal.user_id,
            describe=lambda job: f"documentation job {job.job_id}")
        return claimed

    @strawberry.mutation(
        description="Renew the lease of a RUNNING documentation job without other change.")
    async def heartbeat_documentation_job(
        self, info: Info, job_id: DocumentationJobIdArg
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.heartbeat(
            info.context.principal, job_id)

    @strawberry.mutation(description="PENDING to RUNNING without a claim or lease (a writer "
                         "running the job itself); sets timestampStart.")
    async def start_documentation_job(
        self, info: Info, job_id: DocumentationJobIdArg
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.start(info.context.principal, job_id)

    @strawberry.mutation(description="RUNNING to COMPLETED; sets timestampEnd.")
    async def complete_documentation_job(
        self, info: Info, job_id: DocumentationJobIdArg
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.complete(info.context.principal, job_id)

    @strawberry.mutation(
        description="End the run with an error. A claimed run with attempts left goes back "
        "to PENDING after the retry policy's backoff (the error joins `previousErrors`) unless "
        "`retryable` is false; otherwise the job is FAILED. A PENDING job fails at once.")
    async def fail_documentation_job(
        self,
        info: Info,
        job_id: DocumentationJobIdArg,
        error_message: Annotated[str, strawberry.argument(description="Why it failed.")],
        retryable: Annotated[bool, strawberry.argument(
            description="False fails the job for good: no further attempt, and "
            "retryDocumentationJob is refused.")] = True,
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.fail(
            info.context.principal, job_id, error_message, retryable=retryable)

    @strawberry.mutation(
        description="Put a FAILED documentation job back to PENDING, claimable at once, for "
        "one more attempt; its error joins `previousErrors`. Writers only.")
    async def retry_documentation_job(
        self, info: Info, job_id: DocumentationJobIdArg
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.retry(info.context.principal, job_id)

    @strawberry.mutation(
        description="Set the given statistics; those left out keep their value." + RENEWS
        + UNFINISHED_ONLY)
    async def set_documentation_job_statistics(
        self,
        info: Info,
        job_id: DocumentationJobIdArg,
        statistics: Annotated[JobStatisticsInput, strawberry.argument(
            description="The statistics to set (at least one).")],
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.set_statistics(
            info.context.principal, job_id, statistics_values(statistics))

    @strawberry.mutation(
        description="Add to the statistics as the work goes on: counters grow by the "
        "increments, `maxDepth` rises to the depth given." + RENEWS + UNFINISHED_ONLY)
    async def add_documentation_job_statistics(
        self,
        info: Info,
        job_id: DocumentationJobIdArg,
        increments: Annotated[JobStatisticsIncrementInput, strawberry.argument(
            description="What to add (at least one field).")],
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.add_statistics(
            info.context.principal, job_id, statistics_values(increments))

    @strawberry.mutation(description="Add generated files (duplicates ignored), and the module "
                         "count if given." + RENEWS + UNFINISHED_ONLY)
    async def add_generated_files(
        self,
        info: Info,
        job_id: DocumentationJobIdArg,
        files: Annotated[list[str], strawberry.argument(
            description="Paths of generated files to add (duplicates are kept once).")],
        module_count: Annotated[int | None, strawberry.argument(
            description="The number of modules documented so far, if it changed.")] = None,
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.add_generated_files(
            info.context.principal, job_id, files, module_count)

    @strawberry.mutation(description="Delete a documentation job (its admins).")
    async def delete_documentation_job(
        self, info: Info, job_id: DocumentationJobIdArg
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.delete(info.context.principal, job_id)

    @strawberry.mutation(description="Replace a documentation job's access control (its admins).")
    async def set_documentation_job_access(
        self, info: Info, job_id: DocumentationJobIdArg, access_control: AccessArg
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.set_access(
            info.context.principal, job_id, access_control.to_model())
