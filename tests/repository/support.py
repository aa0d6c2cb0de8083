"""Shared principals and builders for the repository tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from repository.access import ADMIN_ROLE, ANONYMOUS, WORKER_ROLE, Principal
from repository.database import Store
from repository.jobs import job_to_document
from repository.models import AccessControl, JobStatus, SecretaryJob, new_id

ALICE = Principal("alice")
BOB = Principal("bob")
CAROL = Principal("carol")
ROOT = Principal("root", frozenset({ADMIN_ROLE}))
WORKER = Principal("w", frozenset({WORKER_ROLE}))
OTHER_WORKER = Principal("w2", frozenset({WORKER_ROLE}))
ANON = ANONYMOUS

BASE_TIME = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(milliseconds: int) -> datetime:
    """A fixed instant ``milliseconds`` after ``BASE_TIME`` (BSON keeps milliseconds)."""
    return BASE_TIME + timedelta(milliseconds=milliseconds)


def make_job(
    *,
    job_type: str = "pdf",
    status: JobStatus = JobStatus.PENDING,
    created_at: datetime | None = None,
    access: AccessControl | None = None,
    **fields: Any,
) -> SecretaryJob:
    """An unsaved job owned by alice (its admin) unless told otherwise."""
    created = created_at or BASE_TIME
    return SecretaryJob(
        job_id=fields.pop("job_id", None) or new_id(),
        job_type=job_type,
        status=status,
        created_at=created,
        updated_at=created,
        access_control=access or AccessControl(admin_access=["alice"]),
        owner=fields.pop("owner", "alice"),
        **fields,
    )


async def insert_jobs(store: Store, jobs: list[SecretaryJob]) -> list[SecretaryJob]:
    await store.jobs.collection.insert_many([job_to_document(job) for job in jobs])
    return jobs


async def raw_job(store: Store, job_id: str) -> dict[str, Any] | None:
    return await store.jobs.collection.find_one({"_id": job_id})


def id_shape(message: str, object_id: str) -> str:
    """The message with the object's id blanked, to compare message shapes."""
    assert repr(object_id) in message
    return message.replace(repr(object_id), "<id>")
