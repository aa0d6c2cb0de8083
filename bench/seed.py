"""Seed data, written straight through the repository's own document mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from repository.batches import batch_to_document
from repository.database import Store
from repository.job_documents import job_to_document
from repository.models import (
    AccessControl,
    BatchJob,
    JobProgress,
    JobStatus,
    LogEntry,
    SecretaryJob,
    new_id,
)

READER = "bench-reader"
OWNER = "bench-owner"
JOB_TYPES = ("pdf", "session", "transformer", "ocr", "index")
STATUSES = tuple(JobStatus)
GROWTH_FILTER = {"status": JobStatus.COMPLETED.value, "jobType": "pdf"}
CHUNK = 1000


def _access() -> AccessControl:
    return AccessControl(read_access=[READER], admin_access=[OWNER])


async def seed_jobs(store: Store, count: int, *, batches: int = 10, logs: int = 15,
                    start: int = 0) -> list[str]:
    """``count`` jobs (numbered from ``start``), spread over ``batches`` batches, each with
    progress and ``logs`` log entries; statuses and types cycle. Returns their ids."""
    now = datetime.now(UTC).replace(microsecond=0)
    batch_ids = []
    if batches:
        batch_docs = [batch_to_document(BatchJob(
            batch_id=new_id(), batch_name=f"bench-batch-{start + number}", created_at=now,
            updated_at=now, access_control=_access(), owner=OWNER)) for number in range(batches)]
        await store.batches.collection.insert_many(batch_docs)
        batch_ids = [doc["_id"] for doc in batch_docs]
    ids: list[str] = []
    chunk: list[dict[str, Any]] = []
    for offset in range(count):
        number = start + offset
        created = now - timedelta(milliseconds=number)
        job = SecretaryJob(
            job_id=new_id(), job_type=JOB_TYPES[number % len(JOB_TYPES)],
            status=STATUSES[(number // len(JOB_TYPES)) % len(STATUSES)],
            parameters={"document": f"doc-{number}.pdf", "pages": number % 50},
            created_at=created, updated_at=created,
            progress=JobProgress("ocr", number % 101, "reading pages"),
            logs=[LogEntry(created, "info", f"line {seq} of job {number}", seq, 1)
                  for seq in range(1, logs + 1)],
            access_control=_access(), owner=OWNER, log_seq=logs, attempts=1,
            batch_id=batch_ids[number % len(batch_ids)] if batch_ids else None)
        chunk.append(job_to_document(job))
        ids.append(job.job_id)
        if len(chunk) >= CHUNK:
            await store.jobs.collection.insert_many(chunk, ordered=False)
            chunk = []
    if chunk:
        await store.jobs.collection.insert_many(chunk, ordered=False)
    return ids
