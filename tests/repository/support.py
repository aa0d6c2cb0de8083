"""Shared principals and builders for the repository tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from repository.access import ADMIN_ROLE, ANONYMOUS, WORKER_ROLE, Principal
from repository.database import Store, make_client
from repository.jobs import job_to_document
from repository.limits import Limits
from repository.models import AccessControl, JobStatus, SecretaryJob, new_id

ALICE = Principal("alice")
BOB = Principal("bob")
CAROL = Principal("carol")
ROOT = Principal("root", frozenset({ADMIN_ROLE}))
WORKER = Principal("w", frozenset({WORKER_ROLE}))
OTHER_WORKER = Principal("w2", frozenset({WORKER_ROLE}))
ANON = ANONYMOUS

T = TypeVar("T")

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


@asynccontextmanager
async def connect(
    mongo_uri: str, database_name: str, limits: Limits | None = None, **options: Any
) -> AsyncIterator[Store]:
    """A store over ``database_name`` through its own client, closed on leaving.

    Tests never keep a connection idle across tests: the embedded server pins a
    connection's read snapshot until its next command, and the history a pinned
    snapshot holds back makes every later write slower.
    """
    client = make_client(mongo_uri, **options)
    try:
        yield Store(client, database_name, limits or Limits())
    finally:
        await client.close()


async def nothing(store: Store) -> None:
    """A seed that writes nothing."""


@asynccontextmanager
async def seeded(
    mongo_uri: str, seed: Callable[[Store], Awaitable[T]]
) -> AsyncIterator[tuple[str, T]]:
    """A fresh database with the declared indexes and what ``seed`` writes into it, for
    data shared by a module's tests (each reaches it through ``connect``); dropped after.
    Yields the database name and what ``seed`` returned."""
    name = f"jobgraph_test_{uuid.uuid4().hex[:12]}"
    async with connect(mongo_uri, name) as store:
        await store.ensure_indexes()
        data = await seed(store)
    try:
        yield name, data
    finally:
        async with connect(mongo_uri, name) as store:
            await store.client.drop_database(name)


@asynccontextmanager
async def pooled(store: Store, mongo_uri: str, connections: int = 2) -> AsyncIterator[Store]:
    """``store``'s database through a client that sends at most ``connections`` commands
    at a time, for tests that run many operations concurrently.

    With three or more writers at once on one collection, the embedded server (SecantusDB
    0.7.0b3) now and then stalls for 50-100 s, one WiredTiger write sleeping in
    ``__wt_page_in_func`` while the others queue behind its collection lock; after a
    restart of the server (as ``test_database`` does) it happens every few bursts. With
    two it has not been seen. So concurrent tests multiplex their coroutines over two
    connections, as a worker process with a bounded pool would: the server still runs
    two conditional updates at once against the same documents.
    """
    async with connect(mongo_uri, store.database_name, store.limits,
                       maxPoolSize=connections) as shared:
        yield shared
