"""Queue limits on a real server: two claims of a limited type never both see room for
one more, however their transactions interleave."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pymongo.errors import PyMongoError

from repository.access import Principal
from repository.database import Store
from repository.models import utcnow
from tests.helpers.waiting import eventually

from .support import ALICE, ROOT, WORKER

OTHER = Principal("w2", frozenset({"worker"}))


async def test_two_claims_counting_at_once_cannot_both_take_the_last_slot(
        store: Store) -> None:
    """Claim A counts the running jobs inside its transaction and is held there; claim B
    starts meanwhile, after a second job became due, so the two would take different jobs
    (and their writes to the jobs would not conflict). B must not take the slot A saw
    free: its write to the queue's document conflicts with A's, and B starts again and
    finds the queue full once A committed. Were the count all the claim checked, B would
    claim, then A, and two would run."""
    # given a limit of one, a job due now and a more urgent one due in a moment
    await store.queues.set_concurrency(ROOT, "limited", 1)
    await store.jobs.create(ALICE, job_type="limited")
    due = utcnow() + timedelta(milliseconds=500)
    await store.jobs.create(ALICE, job_type="limited", priority=5, run_at=due)
    queues = store.queues
    counted, release = asyncio.Event(), asyncio.Event()
    running = queues._running

    async def held_count(job_type: str, session: Any = None) -> int:
        count = await running(job_type, session)
        if session is not None and not counted.is_set():  # A, inside its transaction
            counted.set()
            await release.wait()
        return count

    queues._running = held_count  # type: ignore[method-assign]
    conflicted = asyncio.Event()
    write = queues.collection.find_one_and_update

    async def noticed_write(*args: Any, **kwargs: Any) -> Any:
        try:
            return await write(*args, **kwargs)
        except PyMongoError:
            conflicted.set()
            raise

    queues.collection.find_one_and_update = noticed_write  # type: ignore[method-assign]

    # when A is held after counting, and B runs until it conflicts (or claims)
    first = asyncio.create_task(store.jobs.claim(WORKER, ["limited"]))
    await asyncio.wait_for(counted.wait(), 30)
    assert utcnow() < due, "claim A must start before the second job is due"
    await eventually(lambda: utcnow() > due)
    second = asyncio.create_task(store.jobs.claim(OTHER, ["limited"]))
    await asyncio.wait_for(asyncio.wait([second, asyncio.create_task(conflicted.wait())],
                                        return_when=asyncio.FIRST_COMPLETED), 30)
    release.set()
    outcomes = await asyncio.wait_for(asyncio.gather(first, second), 60)

    # then exactly one of them claimed
    assert sum(job is not None for job in outcomes) == 1, outcomes
    assert await store.jobs.collection.count_documents(
        {"job_type": "limited", "status": "PROCESSING"}) == 1
