"""Retry, cancel or delete the jobs a list filter selects, a bounded number per call.

Each operation picks up to ``limit`` jobs that the list filter selects, the caller may
read, and the single mutation would accept now (its status, and the caller's write or
admin right), then changes them with ONE ``update_many`` (or ``delete_many``) whose
filter repeats every one of those conditions: a job that changed in between (claimed,
completed, cancelled by someone else) is simply not changed, exactly as the single
mutation would have refused it. Repeating a call changes nothing more once its jobs are
done, so a caller can loop while ``more`` is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import DESCENDING

from .access import Principal, admin_filter, read_filter, write_filter
from .cancellation import MAX_REASON_LENGTH, cancel_update
from .documents import bump_version
from .errors import ValidationError
from .job_history import DELETE_ACTION, actor_stamp, stamped
from .jobs import JobFilter, JobRepository, retry_pipeline
from .models import JOB_TRANSITIONS, CancelRequest, JobStatus, utcnow
from .validation import check_text


@dataclass(frozen=True)
class BulkResult:
    matched: int
    """Jobs selected this call (at most ``limit``): the filter's, that you may change."""
    changed: int
    """Of those, the ones this call changed (others changed meanwhile)."""
    more: bool
    """More jobs beyond ``limit`` were selected: call again."""


class BulkJobs:
    def __init__(self, jobs: JobRepository) -> None:
        self.jobs = jobs
        self.collection = jobs.collection

    def check_limit(self, limit: int | None) -> int:
        most = self.jobs.limits.max_bulk_jobs
        if limit is None:
            return most
        if not 1 <= limit <= most:
            raise ValidationError("limit", f"must be between 1 and {most}, got {limit}")
        return limit

    async def _select(self, principal: Principal, job_filter: JobFilter, rule: dict[str, Any],
                      limit: int) -> tuple[dict[str, Any], list[str], bool]:
        """The conditions (filter, read access, ``rule``) and the first ``limit`` ids."""
        conditions = {"$and": [job_filter.query(), read_filter(principal, claimable=True),
                               rule]}
        docs = await self.collection.find(
            conditions, projection={"_id": 1}, limit=limit + 1,
            sort=[("created_at", DESCENDING), ("_id", DESCENDING)]).to_list()
        ids = [doc["_id"] for doc in docs[:limit]]
        return conditions, ids, len(docs) > limit

    async def retry(self, principal: Principal, job_filter: JobFilter,
                    limit: int | None = None) -> BulkResult:
        """``retryJob`` on each: FAILED, not failed for good, you may write it."""
        limit = self.check_limit(limit)
        rule = {"status": JobStatus.FAILED.value, "retryable": {"$ne": False},
                **write_filter(principal)}
        conditions, ids, more = await self._select(principal, job_filter, rule, limit)
        if not ids:
            return BulkResult(0, 0, more)
        now = utcnow()
        result = await self.collection.update_many(
            {"$and": [{"_id": {"$in": ids}}, conditions]},
            bump_version(stamped(retry_pipeline(now, None), principal, "retry")))
        return BulkResult(len(ids), result.modified_count, more)

    async def cancel(self, principal: Principal, job_filter: JobFilter,
                     reason: str | None = None, limit: int | None = None) -> BulkResult:
        """``cancelJob`` on each: PENDING ones end CANCELLED at once, PROCESSING ones get a
        cancel request; those already asked are not selected again."""
        check_text("reason", reason, max_length=MAX_REASON_LENGTH, required=False)
        limit = self.check_limit(limit)
        allowed = [status.value for status in JOB_TRANSITIONS["cancel"]]
        rule = {"status": {"$in": allowed}, "cancel_requested": None,
                **write_filter(principal)}
        conditions, ids, more = await self._select(principal, job_filter, rule, limit)
        if not ids:
            return BulkResult(0, 0, more)
        request = CancelRequest(by=principal.user_id or "", at=utcnow(), reason=reason)
        result = await self.collection.update_many(
            {"$and": [{"_id": {"$in": ids}}, conditions]},
            stamped(cancel_update(request, self.jobs.limits.lease_seconds), principal,
                    "cancel"))
        return BulkResult(len(ids), result.modified_count, more)

    async def delete(self, principal: Principal, job_filter: JobFilter,
                     limit: int | None = None) -> BulkResult:
        """``deleteJob`` on each: you administer it. Stamped first, as ``deleteJob`` does,
        so the history names who deleted them."""
        limit = self.check_limit(limit)
        conditions, ids, more = await self._select(principal, job_filter,
                                                   admin_filter(principal), limit)
        if not ids:
            return BulkResult(0, 0, more)
        scoped = {"$and": [{"_id": {"$in": ids}}, conditions]}
        await self.collection.update_many(scoped, {"$set": actor_stamp(principal,
                                                                       DELETE_ACTION)})
        result = await self.collection.delete_many(scoped)
        return BulkResult(len(ids), result.deleted_count, more)
