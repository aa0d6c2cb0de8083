"""BSON mapping of SecretaryJob, both ways."""

from __future__ import annotations

from typing import Any

from .documents import fields, rename_id, with_access
from .models import AccessControl, CancelRequest, JobProgress, JobStatus, LogEntry, SecretaryJob
from .retry import RetryPolicy


def job_to_document(job: SecretaryJob) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": job.job_id,
        "job_type": job.job_type,
        "status": job.status.value,
        "parameters": job.parameters,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "progress": progress_document(job.progress),
        "results": job.results,
        "error": job.error,
        "logs": [log_document(entry) for entry in job.logs],
        "batch_id": job.batch_id,
        "owner": job.owner,
        "processing_started_at": job.processing_started_at,
        "completed_at": job.completed_at,
        "claimed_by": job.claimed_by,
        "lease_expires_at": job.lease_expires_at,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "retryable": job.retryable,
        "log_seq": job.log_seq,
        "previous_errors": job.previous_errors,
        "former_workers": job.former_workers,
        "claim_token": job.claim_token,
        "version": job.version,
        "priority": job.priority,
        "run_at": job.run_at,
        "timeout_seconds": job.timeout_seconds,
        "timeout_at": job.timeout_at,
        "retry_policy": policy_document(job.retry_policy),
        "cancel_requested": cancel_document(job.cancel_requested),
    }
    if job.schedule_id is not None:  # only then: the schedule indexes are partial on it
        doc["schedule_id"] = job.schedule_id
        doc["scheduled_for"] = job.scheduled_for
    return with_access(doc, job.access_control)


def job_from_document(doc: dict[str, Any]) -> SecretaryJob:
    data = rename_id(doc, "job_id")
    data["status"] = JobStatus(data["status"])
    if data.get("progress") is not None:
        data["progress"] = JobProgress(**fields(data["progress"]))
    data["logs_loaded"] = "logs" in data  # read without it: see repository.job_logs
    first = data.pop("log_first", 0)  # entries before it are held, but dropped: log_push
    data["logs"] = [log_entry(entry) for entry in data.get("logs") or ()
                    if entry["seq"] >= first]
    data["access_control"] = AccessControl(**fields(data["access_control"]))
    if data.get("retry_policy") is not None:
        data["retry_policy"] = RetryPolicy.from_document(
            data["retry_policy"], RetryPolicy(max_attempts=data.get("max_attempts", 3)))
    if data.get("cancel_requested") is not None:
        data["cancel_requested"] = CancelRequest(**fields(data["cancel_requested"]))
    return SecretaryJob(**data)


def policy_document(policy: RetryPolicy | None) -> dict[str, Any] | None:
    """A job's backoff as stored; its attempts stay in the job's own ``max_attempts``."""
    if policy is None:
        return None
    return {key: value for key, value in policy.to_document().items()
            if key != "max_attempts"}


def cancel_document(request: CancelRequest | None) -> dict[str, Any] | None:
    if request is None:
        return None
    return {"by": request.by, "at": request.at, "reason": request.reason}


def progress_document(progress: JobProgress | None) -> dict[str, Any] | None:
    if progress is None:
        return None
    return {"step": progress.step, "percent": progress.percent, "message": progress.message}


def log_entry(entry: dict[str, Any]) -> LogEntry:
    """A stored entry (positional: a job's dozens of entries are most of its reading)."""
    return LogEntry(entry["timestamp"], entry["level"], entry["message"], entry.get("seq", 0),
                    entry.get("attempt", 1))


def log_document(entry: LogEntry) -> dict[str, Any]:
    return {"timestamp": entry.timestamp, "level": entry.level, "message": entry.message,
            "seq": entry.seq, "attempt": entry.attempt}
