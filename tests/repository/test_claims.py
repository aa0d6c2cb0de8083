"""The rule of who may drive a job exists twice: as the filter of the conditional update
and as ``may_write_job``, which decides from a job already read. They must agree on every
kind of job and caller, or a refusal would name the wrong reason."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from repository.access import ADMIN_ROLE, ANONYMOUS, WORKER_ROLE, Principal, write_filter
from repository.claims import DRIVE_FIELDS, LEASE_ACTIONS, lease_write_filter, may_write_job
from repository.database import Store, make_client
from repository.models import JOB_TRANSITIONS, AccessControl, JobStatus, utcnow

from .support import insert_jobs, make_job

W = "w"
PRINCIPALS = {
    "worker": Principal(W, frozenset({WORKER_ROLE})),
    "other worker": Principal("w2", frozenset({WORKER_ROLE})),
    "ops (admin and worker)": Principal("ops", frozenset({ADMIN_ROLE, WORKER_ROLE})),
    "admin role": Principal("root", frozenset({ADMIN_ROLE})),
    "writer": Principal("alice"),
    "reader": Principal("bob"),
    "nobody": Principal("carol"),
    "anonymous": ANONYMOUS,
}


async def seed_every_kind_of_job(store: Store) -> None:
    """Every status, with the worker (or ops) holding, having held, or never holding it, on
    a live, lapsed or no lease, and the worker listed as writer or not."""
    now = utcnow()
    leases = {"live": now + timedelta(minutes=5), "lapsed": now - timedelta(seconds=5),
              "none": None}
    jobs = []
    for status, holder, lease, former, listed in itertools.product(
            JobStatus, (None, W, "ops", "w2"), leases, (False, True), (False, True)):
        writers = ["alice"] + ([W, "ops"] if listed else [])
        jobs.append(make_job(
            status=status, claimed_by=holder, lease_expires_at=leases[lease],
            former_workers=[W, "ops"] if former else [],
            access=AccessControl(read_access=["bob"], write_access=writers,
                                 admin_access=["alice"])))
    await insert_jobs(store, jobs)


@pytest.fixture(scope="module")
async def every_kind_of_job(mongo_uri: str) -> AsyncIterator[Store]:
    """Seeded once for the module's checks, which only read it (seeding and dropping it
    per check was ~4 s each)."""
    client = make_client(mongo_uri)
    store = Store(client, f"jobgraph_test_{uuid.uuid4().hex[:12]}")
    await store.ensure_indexes()
    await seed_every_kind_of_job(store)
    yield store
    await client.drop_database(store.db.name)
    await client.close()


@pytest.mark.parametrize("action", sorted(JOB_TRANSITIONS.keys() - {"claim"}))
async def test_may_write_job_agrees_with_the_update_filter(every_kind_of_job: Store,
                                                           action: str) -> None:
    store = every_kind_of_job
    allowed = [status.value for status in JOB_TRANSITIONS[action]]
    now = utcnow()
    docs = await store.jobs.collection.find({}, projection=DRIVE_FIELDS).to_list()
    sizes = set()
    for name, principal in PRINCIPALS.items():
        permission = (lease_write_filter(principal, now) if action in LEASE_ACTIONS
                      else write_filter(principal))
        matched = {doc["_id"] for doc in await store.jobs.collection.find(
            {"status": {"$in": allowed}, **permission}, projection={"_id": 1}).to_list()}
        decided = {doc["_id"] for doc in docs
                   if may_write_job(principal, doc, action=action, allowed_statuses=allowed,
                                    now=now)}
        assert decided == matched, name
        sizes.add(len(decided))
    assert len(sizes) > 2  # the callers differ: the comparison is not of empty sets
