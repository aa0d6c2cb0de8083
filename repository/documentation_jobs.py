"""The ``documentation_jobs`` collection: DocumentationJob persistence and lifecycle.

Transitions follow ``DOCUMENTATION_TRANSITIONS`` (the rules behind
``DocumentationJob.start/complete/fail``) as single conditional updates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from .access import Principal, admin_filter, read_filter, write_filter
from .documents import access_update, bump_version, rename_id, with_access
from .errors import NotFoundError, ValidationError
from .idempotency import INDEX as IDEMPOTENCY_INDEX
from .idempotency import find_existing, insert_once, stamp
from .jobs import require_user
from .limits import Limits
from .models import (
    DOCUMENTATION_TRANSITIONS,
    AccessControl,
    DocumentationJob,
    DocumentationJobStatus,
    GenerationOptions,
    JobStatistics,
    LLMConfig,
    utcnow,
)
from .pagination import Page, PageRequest, fetch_page, filter_query, keyset_indexes
from .refusals import refuse
from .validation import check_text

INDEXES = [
    IDEMPOTENCY_INDEX,
    IndexModel([("readers", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="readers_created"),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="created"),
    IndexModel([("status", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="status_created"),
    IndexModel([("repository_name", ASCENDING), ("created_at", DESCENDING),
                ("_id", DESCENDING)], name="repository_created"),
]
INDEXES += keyset_indexes({"status": "status", "repository_name": "repository"},
                          {"": "", "readers": "readers"}, INDEXES)


@dataclass(frozen=True)
class DocumentationJobFilter:
    status: DocumentationJobStatus | None = None
    repository_name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def query(self) -> dict[str, Any]:
        return filter_query({"status": self.status, "repository_name": self.repository_name},
                            self.created_after, self.created_before)


def documentation_job_to_document(job: DocumentationJob) -> dict[str, Any]:
    doc = asdict(job)
    doc["_id"] = doc.pop("job_id")
    doc["status"] = job.status.value
    return with_access(doc, job.access_control)


def documentation_job_from_document(doc: dict[str, Any]) -> DocumentationJob:
    data = rename_id(doc, "job_id")
    data["status"] = DocumentationJobStatus(data["status"])
    data["generation_options"] = GenerationOptions(**data["generation_options"])
    if data.get("llm_config") is not None:
        data["llm_config"] = LLMConfig(**data["llm_config"])
    data["statistics"] = JobStatistics(**data["statistics"])
    data["access_control"] = AccessControl(**data["access_control"])
    return DocumentationJob(**data)


class DocumentationJobRepository:
    def __init__(self, collection: AsyncCollection, limits: Limits | None = None) -> None:
        self.collection = collection
        self.limits = limits or Limits()

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)

    async def create(
        self,
        principal: Principal,
        *,
        repository_path: str,
        repository_name: str,
        output_directory: str,
        commit_hash: str | None = None,
        branch_name: str | None = None,
        generation_options: GenerationOptions | None = None,
        llm_config: LLMConfig | None = None,
        access_control: AccessControl | None = None,
        idempotency_key: str | None = None,
    ) -> DocumentationJob:
        require_user(principal)
        limit = self.limits.max_text_length
        check_text("repositoryPath", repository_path, max_length=limit)
        check_text("repositoryName", repository_name, max_length=limit)
        check_text("outputDirectory", output_directory, max_length=limit)
        check_text("commitHash", commit_hash, max_length=limit, required=False)
        check_text("branchName", branch_name, max_length=limit, required=False)
        options = generation_options or GenerationOptions()
        check_text("customOutput", options.custom_output, max_length=limit, required=False)
        if llm_config is not None:
            for name in ("main_model", "cluster_model", "base_url"):
                check_text(name, getattr(llm_config, name), max_length=limit)
        now = utcnow()
        job = DocumentationJob(
            repository_path=repository_path,
            repository_name=repository_name,
            output_directory=output_directory,
            commit_hash=commit_hash,
            branch_name=branch_name,
            generation_options=options,
            llm_config=llm_config,
            created_at=now,
            updated_at=now,
            access_control=(access_control or AccessControl()).with_admin(principal.user_id),
            owner=principal.user_id,
        )
        request = {"kind": "documentation_job", **asdict(job), "job_id": None,
                   "created_at": None, "updated_at": None}
        existing = await find_existing(self.collection, principal, idempotency_key, request,
                                       kind="documentation job")
        if existing is not None:
            return documentation_job_from_document(existing)
        doc = documentation_job_to_document(job)
        stamp(doc, idempotency_key, request)
        return documentation_job_from_document(
            await insert_once(self.collection, doc, principal, kind="documentation job"))

    async def get(self, principal: Principal, job_id: str) -> DocumentationJob:
        doc = await self.collection.find_one({"_id": job_id, **read_filter(principal)})
        if doc is None:
            raise NotFoundError(f"documentation job {job_id!r} not found")
        return documentation_job_from_document(doc)

    async def get_many(self, principal: Principal, job_ids: list[str]
                       ) -> dict[str, DocumentationJob]:
        """Readable documentation jobs among ``job_ids``, in one round trip."""
        query = {"_id": {"$in": list(job_ids)}, **read_filter(principal)}
        return {doc["_id"]: documentation_job_from_document(doc)
                async for doc in self.collection.find(query)}

    def _list_query(self, principal: Principal, job_filter: DocumentationJobFilter) -> dict:
        return {**job_filter.query(), **read_filter(principal)}

    async def list(
        self, principal: Principal, job_filter: DocumentationJobFilter, page: PageRequest
    ) -> Page[DocumentationJob]:
        page = page.validated(self.limits.max_page_size)
        return await fetch_page(self.collection, self._list_query(principal, job_filter), page,
                                documentation_job_from_document)

    async def count(self, principal: Principal, job_filter: DocumentationJobFilter) -> int:
        return await self.collection.count_documents(self._list_query(principal, job_filter))

    async def start(self, principal: Principal, job_id: str) -> DocumentationJob:
        return await self._transition(principal, job_id, "start",
                                      {"timestamp_start": utcnow().isoformat()})

    async def complete(self, principal: Principal, job_id: str) -> DocumentationJob:
        return await self._transition(principal, job_id, "complete",
                                      {"timestamp_end": utcnow().isoformat()})

    async def fail(self, principal: Principal, job_id: str, error_message: str) -> DocumentationJob:
        check_text("errorMessage", error_message, max_length=self.limits.max_log_message_length)
        return await self._transition(principal, job_id, "fail", {
            "error_message": error_message, "timestamp_end": utcnow().isoformat()})

    async def set_statistics(
        self, principal: Principal, job_id: str, statistics: JobStatistics
    ) -> DocumentationJob:
        return await self._update(principal, job_id, {"$set": {"statistics": asdict(statistics)}},
                                  action="set the statistics of")

    async def add_generated_files(
        self, principal: Principal, job_id: str, files: list[str], module_count: int | None = None
    ) -> DocumentationJob:
        """Append files (duplicates ignored) and optionally set ``module_count``."""
        if not files and module_count is None:
            raise ValidationError("files", "give at least one file or a module count")
        if len(files) > self.limits.max_generated_files_per_call:
            raise ValidationError("files", f"at most {self.limits.max_generated_files_per_call}"
                                  " files per call")
        for path in files:
            check_text("files", path, max_length=self.limits.max_text_length)
        update: dict[str, Any] = {"$addToSet": {"files_generated": {"$each": list(files)}}}
        if module_count is not None:
            if module_count < 0:
                raise ValidationError("moduleCount", "must not be negative")
            update["$set"] = {"module_count": module_count}
        if not files:
            del update["$addToSet"]
        return await self._update(principal, job_id, update, action="add files to")

    async def delete(self, principal: Principal, job_id: str) -> DocumentationJob:
        doc = await self.collection.find_one_and_delete({"_id": job_id, **admin_filter(principal)})
        if doc is None:
            await refuse(self.collection, principal, job_id, kind="documentation job",
                         action="delete", need="admin")
        return documentation_job_from_document(doc)

    async def set_access(
        self, principal: Principal, job_id: str, access: AccessControl
    ) -> DocumentationJob:
        return await self._update(principal, job_id, {"$set": access_update(access)},
                                  action="change the access control of", need="admin")

    async def _transition(
        self, principal: Principal, job_id: str, action: str, changes: dict[str, Any]
    ) -> DocumentationJob:
        allowed, target = DOCUMENTATION_TRANSITIONS[action]
        statuses = [status.value for status in allowed]
        return await self._update(
            principal, job_id, {"$set": {"status": target.value, **changes}}, action=action,
            allowed_statuses=statuses,
        )

    async def _update(
        self,
        principal: Principal,
        job_id: str,
        update: dict[str, Any],
        *,
        action: str,
        need: str = "write",
        allowed_statuses: list[str] | None = None,
    ) -> DocumentationJob:
        query: dict[str, Any] = {"_id": job_id}
        query.update(admin_filter(principal) if need == "admin" else write_filter(principal))
        if allowed_statuses is not None:
            query["status"] = {"$in": allowed_statuses}
        update.setdefault("$set", {})["updated_at"] = utcnow()
        doc = await self.collection.find_one_and_update(
            query, bump_version(update), return_document=ReturnDocument.AFTER
        )
        if doc is None:
            await refuse(self.collection, principal, job_id, kind="documentation job",
                         action=action, need=need,  # type: ignore[arg-type]
                         allowed_statuses=allowed_statuses)
        return documentation_job_from_document(doc)
