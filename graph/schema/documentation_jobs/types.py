"""GraphQL types of seed 001's documentation-generation jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from graph.engine.sharing import caller_independent
from graph.schema.core.access import AccessControl, AccessControlInput
from graph.schema.core.context import Context, Info
from graph.schema.core.enums import described_enum
from graph.schema.core.node import Node, global_id
from graph.schema.core.ordering import OrderDirection
from graph.schema.core.retry import RetryPolicy, RetryPolicyInput
from repository.access import rights
from repository.documentation_job_filters import (
    DocumentationJobFilter,
    DocumentationJobOrderField,
    documentation_job_order,
)
from repository.documentation_jobs import STATISTICS
from repository.models import DocumentationJob as DocumentationJobModel
from repository.models import DocumentationJobStatus
from repository.models import GenerationOptions as GenerationOptionsModel
from repository.models import LLMConfig as LLMConfigModel
from repository.pagination import SortOrder

DocumentationJobIdArg = Annotated[
    strawberry.ID, strawberry.argument(description="The documentation job's `jobId`.")]

described_enum(DocumentationJobStatus, "Lifecycle of a documentation job (seed 001's JobStatus).", {
    "PENDING": "Created, not started yet (or back in the queue after a failed attempt).",
    "RUNNING": "Started (`timestampStart` is set): claimed by a worker, which holds a lease "
               "on it, or started by a writer.",
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


@strawberry.type(description="Why a run of a documentation job failed.")
class DocumentationJobError:
    code: str | None = strawberry.field(
        description="`LEASE_EXPIRED` when the worker's lease ran out; null when a worker or "
        "writer failed it.")
    message: str = strawberry.field(description="Human-readable explanation.")
    attempt: int = strawberry.field(description="The attempt (claim) that failed; 0 if none.")
    worker: str | None = strawberry.field(description="The worker that held the job, if any.")
    failed_at: datetime = strawberry.field(description="When the attempt failed.")

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> DocumentationJobError:
        return cls(code=value.get("code"), message=value.get("message", ""),
                   attempt=value.get("attempt", 0), worker=value.get("worker"),
                   failed_at=datetime.fromisoformat(value["failed_at"]))


@strawberry.type(description="A documentation-generation job for one repository.")
class DocumentationJob(Node):
    job_id: strawberry.ID = strawberry.field(description="Unique identifier (a UUID).")

    @strawberry.field(description="Global id (Relay's Node); `jobId` stays its own id.")  # type: ignore[misc]  # Node's id field, here a resolver
    @staticmethod
    @caller_independent
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
    claimed_by: str | None = strawberry.field(
        description="Worker holding the job (after a final failure: the last one).")
    lease_expires_at: datetime | None = strawberry.field(
        description="When the worker's claim lapses unless renewed by a heartbeat, "
        "statistics or files.")
    attempts: int = strawberry.field(description="How many times the job has been claimed.")
    run_at: datetime | None = strawberry.field(
        description="Not claimable before this instant: its creation, or the end of the "
        "backoff after a failed attempt.")
    retryable: bool = strawberry.field(
        description="False when it was failed for good (`retryDocumentationJob` refuses it).")

    @strawberry.field(description="Whether you are one of its writers (`writeAccess`, "
                      "`adminAccess` or the admin role), who may retry it once it failed. A "
                      "worker's claim does not count: it lets the worker drive the job only.")
    @staticmethod
    def viewer_can_write(root: DocumentationJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).write

    @strawberry.field(description="Whether you may delete it and change its access control "
                      "(`adminAccess` or the admin role).")
    @staticmethod
    def viewer_can_admin(root: DocumentationJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).admin

    @strawberry.field(description="Whether `retryDocumentationJob` would be accepted now: you "
                      "may write it, it is FAILED, and it was not failed for good.")
    @staticmethod
    def viewer_can_retry(root: DocumentationJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).retry(
            failed=root.status is DocumentationJobStatus.FAILED, retryable=root.retryable)

    @strawberry.field(description="Whether `deleteDocumentationJob` would be accepted: as "
                      "`viewerCanAdmin`.")
    @staticmethod
    def viewer_can_delete(root: DocumentationJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).admin

    @strawberry.field(description="Attempts allowed and the waits between them.")
    @staticmethod
    @caller_independent
    def retry_policy(root: DocumentationJobModel) -> RetryPolicy:
        policy = root.retry_policy
        return RetryPolicy(max_attempts=policy.max_attempts, backoff=policy.backoff,
                           base_seconds=policy.base_seconds, cap_seconds=policy.cap_seconds)

    @strawberry.field(description="The failure that ended the job, while it is FAILED.")
    @staticmethod
    @caller_independent
    def error(root: DocumentationJobModel) -> DocumentationJobError | None:
        return None if root.error is None else DocumentationJobError.from_dict(root.error)

    @strawberry.field(description="Failures of earlier attempts, oldest first.")
    @staticmethod
    @caller_independent
    def previous_errors(root: DocumentationJobModel) -> list[DocumentationJobError]:
        return [DocumentationJobError.from_dict(error) for error in root.previous_errors]


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


@strawberry.input(description="Statistics to set; those left out keep their value.")
class JobStatisticsInput:
    total_files_analyzed: int | None = strawberry.field(
        default=None, description="Files processed.")
    leaf_nodes: int | None = strawberry.field(
        default=None, description="Leaf nodes of the dependency graph.")
    max_depth: int | None = strawberry.field(
        default=None, description="Maximum depth of the dependency graph.")
    total_tokens_used: int | None = strawberry.field(
        default=None, description="LLM tokens consumed.")


@strawberry.input(description="What one part of the work adds to the statistics; what is "
                  "left out stays as it is.")
class JobStatisticsIncrementInput:
    total_files_analyzed: int | None = strawberry.field(
        default=None, description="Files processed since the last report (added).")
    leaf_nodes: int | None = strawberry.field(
        default=None, description="Leaf nodes found since the last report (added).")
    max_depth: int | None = strawberry.field(
        default=None, description="Depth reached; the recorded maximum rises to it if it "
        "is deeper.")
    total_tokens_used: int | None = strawberry.field(
        default=None, description="LLM tokens consumed since the last report (added).")


@strawberry.input(description="A new documentation job (PENDING).")
class CreateDocumentationJobInput:
    repository_path: str = strawberry.field(
        description="Absolute path of the repository (POSIX `/src/app`, or Windows `C:\\src` "
        "or `\\\\host\\share`).")
    repository_name: str = strawberry.field(description="Name of the repository.")
    output_directory: str = strawberry.field(description="Where documentation is written.")
    commit_hash: str | None = strawberry.field(
        default=None, description="Commit SHA the job documents: 4 to 64 hex digits (git's "
        "shortest abbreviation up to a full SHA-256), stored in lower case.")
    branch_name: str | None = strawberry.field(default=None, description="Git branch, if any.")
    generation_options: GenerationOptionsInput | None = strawberry.field(
        default=None, description="How to generate (all off when omitted).")
    llm_config: LLMConfigInput | None = strawberry.field(
        default=None, description="Language models to use, if any.")
    access_control: AccessControlInput | None = strawberry.field(
        default=None, description="Who may see and change it; you are added as an admin.")
    retry_policy: RetryPolicyInput | None = strawberry.field(
        default=None, description="Attempts and backoff of its runs (the server's defaults "
        "when left out).")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Repeating a call with the same key returns the first "
        "result instead of creating a duplicate (per user; reusing it with other input is a "
        "CONFLICT).")


described_enum(DocumentationJobOrderField, "The key a documentation jobs list is ordered by "
               "(then `jobId`, to break ties).", {
    "CREATED": "Creation time.",
    "UPDATED": "Last change; a job that changes while you page moves in the list.",
    "STARTED": "When its run started. The list then holds started jobs only.",
    "ENDED": "When its run ended (COMPLETED or FAILED). The list then holds ended jobs only.",
})


@strawberry.input(description="Which documentation jobs to list, count or summarise; all "
                  "given conditions must hold. Ranges exclude their ends; a contradiction is a "
                  "VALIDATION_ERROR naming the field. Every combination, in every `orderBy`, "
                  "is read from an index.")
class DocumentationJobFilterInput:
    status: DocumentationJobStatus | None = strawberry.field(
        default=None, description="Only jobs in this status.")
    repository_name: str | None = strawberry.field(
        default=None, description="Only jobs of this repository (exact name).")
    created_after: datetime | None = strawberry.field(
        default=None, description="Only jobs created after this instant.")
    created_before: datetime | None = strawberry.field(
        default=None, description="Only jobs created before this instant.")
    statuses: list[DocumentationJobStatus] | None = strawberry.field(
        default=None, description="Only jobs in these statuses (1 to 50; not with `status`).")
    repository_names: list[str] | None = strawberry.field(
        default=None, description="Only jobs of these repositories (1 to 50; not with "
        "`repositoryName`).")
    started_after: datetime | None = strawberry.field(
        default=None, description="Only jobs whose run started after this instant.")
    started_before: datetime | None = strawberry.field(
        default=None, description="Only jobs whose run started before this instant.")
    ended_after: datetime | None = strawberry.field(
        default=None, description="Only jobs whose run ended after this instant.")
    ended_before: datetime | None = strawberry.field(
        default=None, description="Only jobs whose run ended before this instant.")

    def to_filter(self) -> DocumentationJobFilter:
        return DocumentationJobFilter(**{name: getattr(self, name) for name in (
            "status", "repository_name", "created_after", "created_before", "statuses",
            "repository_names", "started_after", "started_before", "ended_after",
            "ended_before")})


@strawberry.input(description="How a documentation jobs list is ordered; every order pages "
                  "with its own cursors (a cursor from another order is a VALIDATION_ERROR).")
class DocumentationJobOrderInput:
    field: DocumentationJobOrderField = strawberry.field(
        default=DocumentationJobOrderField.CREATED, description="The key (default CREATED).")
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.DESC, description="The direction (default DESC).")

    def to_order(self) -> SortOrder:
        return documentation_job_order(self.field, self.direction is OrderDirection.DESC)


def statistics_values(value: JobStatisticsInput | JobStatisticsIncrementInput
                      ) -> dict[str, int | None]:
    """The statistics given (None: left out), by the repository's names."""
    return {name: getattr(value, name) for name in STATISTICS}


async def fetch_documentation_jobs(context: Context, job_ids: list[str]
                                   ) -> dict[str, DocumentationJobModel]:
    """``node(id:)`` for documentation jobs: the readable ones among ``job_ids``."""
    return await context.store.documentation_jobs.get_many(context.principal, job_ids)
