"""GraphQL types of seed 001's documentation-generation jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from graph.schema.core.access import AccessControl, AccessControlInput
from graph.schema.core.context import Context
from graph.schema.core.enums import described_enum
from graph.schema.core.node import Node, global_id
from repository.documentation_jobs import DocumentationJobFilter
from repository.models import DocumentationJob as DocumentationJobModel
from repository.models import DocumentationJobStatus
from repository.models import GenerationOptions as GenerationOptionsModel
from repository.models import JobStatistics as JobStatisticsModel
from repository.models import LLMConfig as LLMConfigModel

DocumentationJobIdArg = Annotated[
    strawberry.ID, strawberry.argument(description="The documentation job's `jobId`.")]

described_enum(DocumentationJobStatus, "Lifecycle of a documentation job (seed 001's JobStatus).", {
    "PENDING": "Created, not started yet.",
    "RUNNING": "Started (`timestampStart` is set).",
    "COMPLETED": "Finished successfully (`timestampEnd` is set).",
    "FAILED": "Finished without success; `errorMessage` says why.",
})


@strawberry.type(description="How the documentation is generated.")
class GenerationOptions:
    create_branch: bool = strawberry.field(description="Create a new git branch for the changes.")
    github_pages: bool = strawberry.field(description="Produce GitHub Pages compatible output.")
    no_cache: bool = strawberry.field(description="Bypass caches.")
    custom_output: str | None = strawberry.field(description="Custom output directory.")


@strawberry.type(description="Language models used for the job.")
class LLMConfig:
    main_model: str = strawberry.field(description="Primary model that writes documentation.")
    cluster_model: str = strawberry.field(description="Model used for clustering and analysis.")
    base_url: str = strawberry.field(description="Base URL of the LLM API.")


@strawberry.type(description="Metrics collected while the job ran.")
class JobStatistics:
    total_files_analyzed: int = strawberry.field(description="Files processed.")
    leaf_nodes: int = strawberry.field(description="Leaf nodes of the dependency graph.")
    max_depth: int = strawberry.field(description="Maximum depth of the dependency graph.")
    total_tokens_used: int = strawberry.field(description="LLM tokens consumed.")


@strawberry.type(description="A documentation-generation job for one repository.")
class DocumentationJob(Node):
    job_id: strawberry.ID = strawberry.field(description="Unique identifier (a UUID).")

    @strawberry.field(description="Global id (Relay's Node); `jobId` stays its own id.")
    @staticmethod
    def id(root: DocumentationJobModel) -> strawberry.ID:
        return global_id("DocumentationJob", root.job_id)

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, DocumentationJobModel | cls)

    repository_path: str = strawberry.field(description="Absolute path of the repository.")
    repository_name: str = strawberry.field(description="Name of the repository.")
    output_directory: str = strawberry.field(description="Where documentation is written.")
    commit_hash: str | None = strawberry.field(description="Commit SHA the job documents.")
    branch_name: str | None = strawberry.field(description="Git branch, if any.")
    timestamp_start: str | None = strawberry.field(description="ISO time the job started.")
    timestamp_end: str | None = strawberry.field(description="ISO time the job ended.")
    status: DocumentationJobStatus = strawberry.field(description="Current status.")
    error_message: str | None = strawberry.field(description="Why the job failed, if it did.")
    files_generated: list[str] = strawberry.field(description="Files generated so far.")
    module_count: int = strawberry.field(description="Modules documented.")
    generation_options: GenerationOptions = strawberry.field(description="Generation options.")
    llm_config: LLMConfig | None = strawberry.field(description="LLM configuration.")
    statistics: JobStatistics = strawberry.field(description="Statistics of the run.")
    created_at: datetime = strawberry.field(description="When the job was created.")
    updated_at: datetime = strawberry.field(description="When the job last changed.")
    access_control: AccessControl = strawberry.field(description="Who may see and change it.")
    owner: str | None = strawberry.field(description="User who created the job.")
    version: int = strawberry.field(
        description="Incremented by every change; a newer state has a higher version.")


@strawberry.input(description="Generation options of a new documentation job.")
class GenerationOptionsInput:
    create_branch: bool = strawberry.field(
        default=False, description="Create a new git branch for the changes.")
    github_pages: bool = strawberry.field(
        default=False, description="Produce GitHub Pages compatible output.")
    no_cache: bool = strawberry.field(default=False, description="Bypass caches.")
    custom_output: str | None = strawberry.field(
        default=None, description="Custom output directory.")

    def to_model(self) -> GenerationOptionsModel:
        return GenerationOptionsModel(self.create_branch, self.github_pages, self.no_cache,
                                      self.custom_output)


@strawberry.input(description="LLM configuration of a new documentation job.")
class LLMConfigInput:
    main_model: str = strawberry.field(description="Primary model that writes documentation.")
    cluster_model: str = strawberry.field(
        description="Model used for clustering and analysis.")
    base_url: str = strawberry.field(description="Base URL of the LLM API.")

    def to_model(self) -> LLMConfigModel:
        return LLMConfigModel(self.main_model, self.cluster_model, self.base_url)


@strawberry.input(description="Statistics to record (replaces the previous ones).")
class JobStatisticsInput:
    total_files_analyzed: int = strawberry.field(default=0, description="Files processed.")
    leaf_nodes: int = strawberry.field(
        default=0, description="Leaf nodes of the dependency graph.")
    max_depth: int = strawberry.field(
        default=0, description="Maximum depth of the dependency graph.")
    total_tokens_used: int = strawberry.field(default=0, description="LLM tokens consumed.")

    def to_model(self) -> JobStatisticsModel:
        return JobStatisticsModel(self.total_files_analyzed, self.leaf_nodes, self.max_depth,
                                  self.total_tokens_used)


@strawberry.input(description="A new documentation job (PENDING).")
class CreateDocumentationJobInput:
    repository_path: str = strawberry.field(description="Absolute path of the repository.")
    repository_name: str = strawberry.field(description="Name of the repository.")
    output_directory: str = strawberry.field(description="Where documentation is written.")
    commit_hash: str | None = strawberry.field(
        default=None, description="Commit SHA the job documents.")
    branch_name: str | None = strawberry.field(default=None, description="Git branch, if any.")
    generation_options: GenerationOptionsInput | None = strawberry.field(
        default=None, description="How to generate (all off when omitted).")
    llm_config: LLMConfigInput | None = strawberry.field(
        default=None, description="Language models to use, if any.")
    access_control: AccessControlInput | None = strawberry.field(
        default=None, description="Who may see and change it; you are added as an admin.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Repeating a call with the same key returns the first "
        "result instead of creating a duplicate (per user; reusing it with other input is a "
        "CONFLICT).")


@strawberry.input(description="Which documentation jobs to list.")
class DocumentationJobFilterInput:
    status: DocumentationJobStatus | None = strawberry.field(
        default=None, description="Only jobs in this status.")
    repository_name: str | None = strawberry.field(
        default=None, description="Only jobs of this repository (exact name).")
    created_after: datetime | None = strawberry.field(
        default=None, description="Only jobs created after this instant.")
    created_before: datetime | None = strawberry.field(
        default=None, description="Only jobs created before this instant.")

    def to_filter(self) -> DocumentationJobFilter:
        return DocumentationJobFilter(self.status, self.repository_name, self.created_after,
                                      self.created_before)


async def fetch_documentation_jobs(context: Context, job_ids: list[str]
                                   ) -> dict[str, DocumentationJobModel]:
    """``node(id:)`` for documentation jobs: the readable ones among ``job_ids``."""
    return await context.store.documentation_jobs.get_many(context.principal, job_ids)
