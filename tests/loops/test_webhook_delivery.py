"""Webhook deliveries end to end without the API: database changes → the outbox writer →
the dispatcher → a real HTTP receiver on loopback, every signature checked by the
Standard Webhooks specification's own Python library."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pymongo.errors import OperationFailure
from standardwebhooks.webhooks import Webhook as Verifier

from graph.loops.dispatcher import Dispatcher
from graph.loops.outbox import OutboxWriter
from repository.access import Principal
from repository.batches import JobSpec
from repository.database import EmbeddedServer, Store, make_client
from repository.deliveries import DeliveryStatus
from repository.models import AccessControl, AccessVisibility, JobProgress
from repository.pagination import PageRequest
from repository.webhooks import WebhookEvent, WebhookFilter
from tests.helpers.live import DEADLINE
from tests.helpers.receiver import Received, Receiver, receiver
from tests.helpers.waiting import eventually

ALICE = Principal("alice")
BOB = Principal("bob")
WORKER = Principal("w", frozenset({"worker"}))


@asynccontextmanager
async def running(store: Store, *, dispatch: bool = True, max_attempts: int = 5,
                  allow_private: bool = True, send_timeout: float = 5,
                  ) -> AsyncIterator[tuple[OutboxWriter, Dispatcher]]:
    dispatcher = Dispatcher(store, timeout=send_timeout, lease_seconds=10,
                            max_attempts=max_attempts,
                            retry_seconds=0.2, allow_private=allow_private, concurrency=2,
                            poll_seconds=0.1)
    writer = OutboxWriter(store, lease_seconds=10, poll_seconds=0.1,
                          on_written=dispatcher.wake)
    writer.start()
    if dispatch:
        dispatcher.start()
    try:
        yield writer, dispatcher
    finally:
        await writer.stop()
        await dispatcher.stop()


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    async with receiver() as found:
        yield found


def verified(request: Received, secret: str) -> Any:
    """The body as the specification's library reads it; raises if the signature is wrong."""
    return Verifier(secret).verify(request.body, request.headers)


async def statuses_received(hook: Receiver, job_id: str, count: int) -> list[str]:
    def check() -> list[str] | None:
        found = [r.json["data"]["status"] for r in hook.requests
                 if r.json["data"].get("jobId") == job_id]
        return found if len(found) >= count else None
    return await eventually(check)


async def test_every_status_change_of_a_job_is_delivered_signed(store: Store,
                                                                hook: Receiver) -> None:
    # given: alice's webhook for job status changes
    webhook = await store.webhooks.create(ALICE, url=hook.url,
                                          events=[WebhookEvent.JOB_STATUS_CHANGED])
    async with running(store):
        # when: a job goes through its life (a progress report is not a status change);
        # one attempt, so its worker's failure is final rather than requeued
        job = await store.jobs.create(ALICE, job_type="pdf", max_attempts=1)
        await store.jobs.claim(WORKER)
        await store.jobs.update_progress(WORKER, job.job_id, JobProgress("ocr", 50))
        await store.jobs.fail(WORKER, job.job_id, code="BOOM", message="broke")
        await store.jobs.retry(ALICE, job.job_id)
        await store.jobs.claim(WORKER)
        await store.jobs.complete(WORKER, job.job_id, {"pages": 3})

        # then: one signed delivery per status, in the Standard Webhooks shape
        statuses = await statuses_received(hook, job.job_id, 6)
    assert sorted(statuses) == sorted(["PENDING", "PROCESSING", "FAILED", "PENDING",
                                       "PROCESSING", "COMPLETED"])
    for request in hook.requests:
        body = verified(request, webhook.secret)
        assert body["type"] == "job.status_changed"
        assert body["data"]["jobType"] == "pdf" and body["timestamp"].endswith("Z")
        assert request.headers["content-type"] == "application/json"
        assert request.id.startswith("msg_")
    assert len(hook.by_id()) == 6  # six messages, each sent once
    failed = next(r.json["data"] for r in hook.requests if r.json["data"]["status"] == "FAILED")
    assert failed["error"]["code"] == "BOOM"
    with pytest.raises(Exception, match="signature"):
        Verifier("whsec_" + "QUJD" * 8).verify(hook.requests[0].body, hook.requests[0].headers)


async def test_a_receiver_answering_500_twice_gets_it_the_third_time(store: Store,
                                                                      hook: Receiver) -> None:
    # given: the receiver fails each message twice
    seen: dict[str, int] = {}

    async def flaky(request: Received) -> int:
        seen[request.id] = seen.get(request.id, 0) + 1
        return 500 if seen[request.id] <= 2 else 200

    hook.answer = flaky
    webhook = await store.webhooks.create(ALICE, url=hook.url,
                                          events=[WebhookEvent.JOB_STATUS_CHANGED])
    async with running(store):
        # when
        job = await store.jobs.create(ALICE, job_type="pdf")

        # then: three tries with the same id and a fresh signature each, then DELIVERED
        async def delivered() -> Any:
            page = await store.deliveries.list(ALICE, webhook.webhook_id, None,
                                               PageRequest(first=5))
            return page.items if page.items and page.items[0].status is \
                DeliveryStatus.DELIVERED else None
        [delivery] = await eventually(delivered)
    assert delivery.attempts == 3 and delivery.last_response_code == 200
    assert delivery.object_id == job.job_id and delivery.last_error is None
    [tries] = hook.by_id().values()
    assert len(tries) == 3
    assert all(verified(request, webhook.secret)["data"]["jobId"] == job.job_id
               for request in tries)


async def test_after_its_last_try_a_delivery_is_dead(store: Store, hook: Receiver) -> None:
    async def broken(request: Received) -> int:
        return 503

    hook.answer = broken
    webhook = await store.webhooks.create(ALICE, url=hook.url,
                                          events=[WebhookEvent.JOB_STATUS_CHANGED])
    async with running(store, max_attempts=2):
        await store.jobs.create(ALICE, job_type="pdf")

        async def dead() -> Any:
            page = await store.deliveries.list(ALICE, webhook.webhook_id,
                                               DeliveryStatus.DEAD, PageRequest(first=5))
            return page.items
        [delivery] = await eventually(dead)
    assert delivery.attempts == 2
    assert delivery.last_response_code == 503 and delivery.last_error == "HTTP 503"
    assert len(hook.requests) == 2


async def test_nothing_is_sent_about_a_job_its_owner_cannot_read(store: Store,
                                                                  hook: Receiver) -> None:
    # given: bob's webhook; alice keeps one job private and shares another with bob
    await store.webhooks.create(BOB, url=hook.url, events=[WebhookEvent.JOB_STATUS_CHANGED])
    async with running(store):
        hidden = await store.jobs.create(ALICE, job_type="secret")
        shared = await store.jobs.create(ALICE, job_type="shared",
                                         access_control=AccessControl(read_access=["bob"]))
        public = await store.jobs.create(ALICE, job_type="public", access_control=AccessControl(
            AccessVisibility.PUBLIC))

        # then: the shared and the public job arrive, the hidden one never does
        await statuses_received(hook, shared.job_id, 1)
        await statuses_received(hook, public.job_id, 1)
    assert hidden.job_id not in {r.json["data"]["jobId"] for r in hook.requests}
    assert await store.deliveries.collection.count_documents({"object_id": hidden.job_id}) == 0


async def test_access_is_checked_again_at_delivery_time(store: Store, hook: Receiver) -> None:
    # given: bob could read the job when it changed, and the delivery is in the outbox
    webhook = await store.webhooks.create(BOB, url=hook.url,
                                          events=[WebhookEvent.JOB_STATUS_CHANGED])
    async with running(store, dispatch=False) as (writer, dispatcher):
        job = await store.jobs.create(ALICE, job_type="pdf",
                                      access_control=AccessControl(read_access=["bob"]))
        await eventually(lambda: writer.written == 1)

        # when: alice takes bob off the job before it is sent
        await store.jobs.set_access(ALICE, job.job_id, AccessControl())
        attempted = await dispatcher.send_due()

    # then: skipped, never sent
    assert attempted == 1 and hook.requests == []
    page = await store.deliveries.list(BOB, webhook.webhook_id, None, PageRequest(first=5))
    assert [d.status for d in page.items] == [DeliveryStatus.SKIPPED]


async def test_private_addresses_are_refused_at_delivery_unless_allowed(
        store: Store, hook: Receiver) -> None:
    webhook = await store.webhooks.create(ALICE, url=hook.url,
                                          events=[WebhookEvent.JOB_STATUS_CHANGED])
    async with running(store, dispatch=False, allow_private=False) as (writer, dispatcher):
        await store.jobs.create(ALICE, job_type="pdf")
        await eventually(lambda: writer.written == 1)
        await dispatcher.send_due()

    assert hook.requests == []
    [delivery] = (await store.deliveries.list(ALICE, webhook.webhook_id, None,
                                              PageRequest(first=5))).items
    assert delivery.status is DeliveryStatus.PENDING and delivery.attempts == 1
    assert delivery.last_error is not None and "loopback" in delivery.last_error


async def test_filters_batches_progress_and_documentation_jobs(store: Store,
                                                               hook: Receiver) -> None:
    # given: one webhook for batch statuses of one batch and for progress of pdf jobs
    await store.webhooks.create(
        ALICE, url=hook.url, events=[WebhookEvent.BATCH_STATUS_CHANGED,
                                     WebhookEvent.JOB_PROGRESS,
                                     WebhookEvent.DOCUMENTATION_JOB_CHANGED],
        webhook_filter=WebhookFilter(job_types=["pdf"]))
    def batch_statuses() -> list[str]:
        return [r.json["data"]["status"] for r in hook.requests
                if r.json["type"] == "batch.status_changed"]

    async with running(store):
        batch = await store.batches.create(ALICE, batch_name="b", jobs=[
            JobSpec("pdf"), JobSpec("ocr")])
        pdf = next(job for job in batch.jobs if job.job_type == "pdf")
        await eventually(lambda: batch_statuses() == ["PENDING"])
        for index, _ in enumerate(batch.jobs):
            claimed = await store.jobs.claim(WORKER)
            assert claimed is not None
            if index == 0:  # a status seen by the writer; quicker changes are collapsed
                await eventually(lambda: batch_statuses()[-1] == "PROCESSING")
            await store.jobs.update_progress(WORKER, claimed.job_id, JobProgress("x", 10))
            await store.jobs.complete(WORKER, claimed.job_id)
        docs = await store.documentation_jobs.create(ALICE, repository_path="/r",
                                                     repository_name="r",
                                                     output_directory="/o")

        def kinds() -> list[tuple[str, Any]] | None:
            found = [(r.json["type"], r.json["data"].get("status")
                      if r.json["type"] != "job.progress" else r.json["data"]["jobId"])
                     for r in hook.requests]
            return found if ("batch.status_changed", "COMPLETED") in found and any(
                kind == "documentation_job.changed" for kind, _ in found) else None
        found = await eventually(kinds)

    # then: the batch went PENDING, PROCESSING, COMPLETED; progress of the pdf job only
    assert [status for kind, status in found if kind == "batch.status_changed"] == [
        "PENDING", "PROCESSING", "COMPLETED"]
    assert [job for kind, job in found if kind == "job.progress"] == [pdf.job_id]
    assert ("documentation_job.changed", "PENDING") in found
    batch_body = next(r.json for r in hook.requests if r.json["type"] == "batch.status_changed"
                      and r.json["data"]["status"] == "COMPLETED")
    assert batch_body["data"]["counts"] == {"pending": 0, "processing": 0, "completed": 2,
                                            "failed": 0, "total": 2}
    assert docs.job_id in {r.json["data"].get("jobId") for r in hook.requests}


async def test_changes_before_a_webhook_existed_are_not_sent(store: Store,
                                                             hook: Receiver) -> None:
    before = await store.jobs.create(ALICE, job_type="pdf")
    async with running(store):
        await store.webhooks.create(ALICE, url=hook.url,
                                    events=[WebhookEvent.JOB_STATUS_CHANGED])
        after = await store.jobs.create(ALICE, job_type="pdf")
        await statuses_received(hook, after.job_id, 1)
    assert before.job_id not in {r.json["data"]["jobId"] for r in hook.requests}


async def test_a_standalone_database_is_reported_once(tmp_path: Any,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    # given: a MongoDB without change streams, and a webhook on it
    server = EmbeddedServer(data_dir=tmp_path / "standalone", extra_args=("--standalone",))
    await asyncio.to_thread(server.start)
    client = make_client(server.uri)
    try:
        store = Store(client, "standalone")
        await store.webhooks.create(ALICE, url="https://hooks.example.com/x",
                                    events=[WebhookEvent.JOB_STATUS_CHANGED])
        writer = OutboxWriter(store, lease_seconds=10, poll_seconds=0.1)

        # when: the writer tries twice
        with caplog.at_level("ERROR", logger="jobgraph.outbox"):
            for _ in range(2):
                with pytest.raises(OperationFailure):
                    await writer.step()
    finally:
        await client.close()
        await asyncio.to_thread(server.stop)

    # then: one clear line
    lines = [r.getMessage() for r in caplog.records if r.name == "jobgraph.outbox"]
    assert len(lines) == 1 and "replica set" in lines[0]


async def test_the_dispatcher_stops_even_when_woken_as_it_is_cancelled(store: Store) -> None:
    # given: dispatcher loops idle, each waiting to be woken
    dispatcher = Dispatcher(store, timeout=5, lease_seconds=10, max_attempts=3,
                            retry_seconds=1, allow_private=True, poll_seconds=30,
                            concurrency=4)
    dispatcher.start()
    for _ in range(20):  # let every loop reach its wait
        await asyncio.sleep(0)

    # when: the process shuts down as deliveries are announced (cancelled, then woken,
    # before the loops run again)
    tasks = list(dispatcher._tasks)
    for task in tasks:
        task.cancel()
    dispatcher.wake()

    # then: no loop swallows its cancellation (asyncio.wait_for on Python 3.11 did)
    async with asyncio.timeout(20):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)
    await dispatcher.stop()


async def test_an_idle_dispatcher_looks_once_a_poll_not_once_per_sender(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: four senders with nothing to send, their lookups counted
    claims: list[float] = []
    claim = store.deliveries.claim

    async def counted(*args: Any) -> Any:
        claims.append(time.monotonic())
        return await claim(*args)

    monkeypatch.setattr(store.deliveries, "claim", counted)
    dispatcher = Dispatcher(store, timeout=5, lease_seconds=10, max_attempts=3,
                            retry_seconds=1, allow_private=True, poll_seconds=0.05,
                            concurrency=4)
    started = time.monotonic()
    dispatcher.start()
    try:
        # when: it keeps looking for a while
        await eventually(lambda: len(claims) >= 4 + 5)
        elapsed = time.monotonic() - started
    finally:
        await dispatcher.stop()

    # then: after each sender's first look, one look a poll (a timer fires no sooner),
    # where each sender on its own timer looked four times as often
    assert len(claims) <= 4 + elapsed / 0.05 + 2, (len(claims), elapsed)


async def test_a_retry_comes_due_while_another_sender_is_held(store: Store,
                                                              hook: Receiver) -> None:
    # given: the receiver holds one job's message and fails another's first try
    release = asyncio.Event()
    tries: dict[str, int] = {}

    async def answer(request: Received) -> int:
        job_type = request.json["data"]["jobType"]
        tries[job_type] = tries.get(job_type, 0) + 1
        if job_type == "held":
            await release.wait()
            return 204
        return 500 if tries[job_type] == 1 else 204

    hook.answer = answer
    await store.webhooks.create(ALICE, url=hook.url, events=[WebhookEvent.JOB_STATUS_CHANGED])
    async with running(store, send_timeout=3 * DEADLINE):  # two senders, a held one held
        held = await store.jobs.create(ALICE, job_type="held")
        await eventually(lambda: tries.get("held"))
        retried = await store.jobs.create(ALICE, job_type="retried")

        # when: the failed try comes due (nothing wakes the senders: a poll finds it)
        # then: the sender not held looks for it and sends it again
        try:
            await eventually(lambda: tries.get("retried", 0) >= 2)
        finally:
            release.set()
        await statuses_received(hook, held.job_id, 1)
    assert retried.job_id in {r.json["data"]["jobId"] for r in hook.requests}
