"""Documentation job lifecycle mutations; each returns the job after the change."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.access import AccessArg, access_or_none
from graph.schema.core.context import Info

from .types import (
    CreateDocumentationJobInput,
    DocumentationJob,
    DocumentationJobIdArg,
    JobStatisticsInput,
)


@strawberry.type
class DocumentationJobMutations:
    @strawberry.mutation(description="Create a PENDING documentation job; you become its admin.")
    async def create_documentation_job(
        self,
        info: Info,
        input: Annotated[CreateDocumentationJobInput, strawberry.argument(
            description="The new documentation job.")],
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
    async def start_documentation_job(
        self, info: Info, job_id: DocumentationJobIdArg
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.start(info.context.principal, job_id)

    @strawberry.mutation(description="RUNNING to COMPLETED; sets timestampEnd.")
    async def complete_documentation_job(
        self, info: Info, job_id: DocumentationJobIdArg
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.complete(info.context.principal, job_id)

    @strawberry.mutation(description="PENDING or RUNNING to FAILED with an error message.")
    async def fail_documentation_job(
        self,
        info: Info,
        job_id: DocumentationJobIdArg,
        error_message: Annotated[str, strawberry.argument(description="Why it failed.")],
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.fail(
            info.context.principal, job_id, error_message)

    @strawberry.mutation(description="Record the job's statistics (replaces earlier ones).")
    async def set_documentation_job_statistics(
        self,
        info: Info,
        job_id: DocumentationJobIdArg,
        statistics: Annotated[JobStatisticsInput, strawberry.argument(
            description="The statistics to record.")],
    ) -> DocumentationJob:
        return await info.context.store.documentation_jobs.set_statistics(
            info.context.principal, job_id, statistics.to_model())

    @strawberry.mutation(description="Add generated files (duplicates ignored), and the module "
                         "count if given.")
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
