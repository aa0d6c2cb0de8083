"""Bounds on what one request may store. Configurable; refusals are validation errors."""

from __future__ import annotations

from dataclasses import dataclass

from .retry import Backoff, RetryPolicy


@dataclass(frozen=True)
class Limits:
    max_payload_bytes: int = 64 * 1024
    """Encoded size of ``parameters``, ``results`` or error ``details``."""
    max_log_message_length: int = 4096
    max_logs_per_job: int = 1000
    """Older entries are dropped beyond this (``$push`` with ``$slice``)."""
    max_logs_per_call: int = 100
    max_jobs_per_batch: int = 1000
    max_page_size: int = 100
    max_text_length: int = 1000
    """job_type, batch_name, step, paths and other short strings."""
    max_generated_files_per_call: int = 1000
    lease_seconds: float = 300.0
    default_max_attempts: int = 3
    database_timeout_seconds: float = 5.0
    """Deadline of the database work done outside a request (undoing an abandoned claim)."""
    retry_backoff: Backoff = Backoff.EXPONENTIAL
    retry_base_seconds: float = 5.0
    retry_cap_seconds: float = 3600.0
    history_days: float = 30.0
    """How long a job's history entries are kept (a TTL index)."""
    max_bulk_jobs: int = 1000
    """The most jobs one bulk operation (retryJobs, cancelJobs, deleteJobs) acts on."""

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy of a job created without one of its own."""
        return RetryPolicy(self.default_max_attempts, self.retry_backoff,
                           self.retry_base_seconds, self.retry_cap_seconds)
