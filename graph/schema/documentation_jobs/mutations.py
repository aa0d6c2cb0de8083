"""Documentation job lifecycle mutations; each returns the job after the change."""

from __future__ import annotations

import strawberry

from graph.schema.core.access import AccessControlInput, access_or_none
from graph.schema.core.context import Info

from .types import CreateDocumentationJobInput, DocumentationJob, JobStatisticsInput


@strawberry.type
class DocumentationJobMutations:
    @strawberry.mutation(description="Create a PENDING documentation job; you become its admin.")
    async def create_documentation_job(
        self, info: Info, input: CreateDocumentationJobInput
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.create(
            info.context.principal,
            repository_path=input.repository_path, repository_name=input.repository_name,
            output_directory=input.output_directory, commit_hash=input.commit_hash,
            branch_name=input.branch_name,
            generation_options=input.generation_options and input.generation_options.to_model(),
            llm_config=input.llm_config and input.llm_config.to_model(),
            access_control=access_or_none(input.access_control),
            idempotency_key=input.idempotency_key)

    @strawberry.mutation(description="PENDING to RUNNING; sets timestampStart.")
    async def start_documentation_job(self, info: Info, job_id: strawberry.ID) -> DocumentationJob:
        return await info.context.store.documentation_jobs.start(info.context.principal, job_id)

    @strawberry.mutation(description="RUNNING to COMPLETED; sets timestampEnd.")
    async def complete_documentation_job(
        self, info: Info, job_id: strawberry.ID
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.complete(info.context.principal, job_id)

    @strawberry.mutation(description="PENDING or RUNNING to FAILED with an error message.")
    async def fail_documentation_job(
        self, info: Info, job_id: strawberry.ID, error_message: str
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.fail(
            info.context.principal, job_id, error_message)

    @strawberry.mutation(description="Record the job's statistics (replaces earlier ones).")
    async def set_documentation_job_statistics(
        self, info: Info, job_id: strawberry.ID, statistics: JobStatisticsInput
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.set_statistics(
            info.context.principal, job_id, statistics.to_model())

    @strawberry.mutation(description="Add generated files (duplicates ignored), and the module "
                         "count if given.")
    async def add_generated_files(
        self, info: Info, job_id: strawberry.ID, files: list[str], module_count: int | None = None
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.add_generated_files(
            info.context.principal, job_id, files, module_count)

    @strawberry.mutation(description="Delete a documentation job (its admins).")
    async def delete_documentation_job(
        self, info: Info, job_id: strawberry.ID
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.delete(info.context.principal, job_id)

    @strawberry.mutation(description="Replace a documentation job's access control (its admins).")
    async def set_documentation_job_access(
        self, info: Info, job_id: strawberry.ID, access_control: AccessControlInput
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.set_access(
            info.context.principal, job_id, access_control.to_model())
