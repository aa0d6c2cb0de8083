"""What a batch does to its jobs, through the public API: an inactive batch's jobs wait,
cancelBatch, retryFailedJobs, addJobsToBatch and deleteBatch, the cancelled count and the
status of a batch left without jobs (also as ``batchChanged`` reports them)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from graph.auth.tokens import mint_token
from repository.database import Store
from tests.helpers.graphql import ADMIN, ALICE, BOB, WORKER, Api, Caller
from tests.helpers.live import live_server, ws_client

COUNTS = "counts { pending processing completed failed cancelled total }"
CREATE_BATCH = f"""mutation($input: CreateBatchInput!) {{ createBatch(input: $input) {{
  batchId status {COUNTS} jobs(first: 50) {{ edges {{ node {{ jobId }} }} }} }} }}"""
BATCH = f"""query($id: ID!) {{ batch(batchId: $id) {{ status active {COUNTS} }} }}"""
CLAIM = """mutation($types: [String!]) { claimJob(jobTypes: $types) { jobId batchId } }"""
COMPLETE = """mutation($id: ID!) { completeJob(jobId: $id) { status } }"""
FAIL = """mutation($id: ID!, $retryable: Boolean!) {
  failJob(jobId: $id, error: {code: "E", message: "m"}, retryable: $retryable) { status } }"""
DEACTIVATE = """mutation($id: ID!) { deactivateBatch(batchId: $id) { active } }"""
ACTIVATE = """mutation($id: ID!) { activateBatch(batchId: $id) { active } }"""
CANCEL_BATCH = f"""mutation($id: ID!, $reason: String) {{
  cancelBatch(batchId: $id, reason: $reason) {{ status {COUNTS} }} }}"""
RETRY_FAILED = f"""mutation($id: ID!) {{ retryFailedJobs(batchId: $id) {{ status {COUNTS} }} }}"""
ADD_JOBS = f"""mutation($id: ID!, $jobs: [CreateJobInput!]!) {{
  addJobsToBatch(batchId: $id, jobs: $jobs) {{ status {COUNTS} }} }}"""
DELETE_BATCH = f"""mutation($id: ID!) {{ deleteBatch(batchId: $id) {{ batchId {COUNTS} }} }}"""
DELETE_JOB = """mutation($id: ID!) { deleteJob(jobId: $id) { jobId } }"""
JOB = """query($id: ID!) { job(jobId: $id) { status cancelRequested { by reason }
  error { code } accessControl { readAccess } } }"""


async def create_batch(api: Api, jobs: int, **fields: Any) -> tuple[str, list[str]]:
    specs = [{"jobType": "scan", "maxAttempts": 1, **fields} for _ in range(jobs)]
    batch = (await api.data(CREATE_BATCH, {"input": {
        "batchName": "b", "jobs": specs, "accessControl": {"writeAccess": ["bob"]}}}))[
        "createBatch"]
    return batch["batchId"], [edge["node"]["jobId"] for edge in batch["jobs"]["edges"]]


async def claim(api: Api, worker: Caller = WORKER) -> dict[str, Any] | None:
    return (await api.data(CLAIM, {"types": ["scan"]}, as_=worker))["claimJob"]


def counts(**given: int) -> dict[str, int]:
    base = dict.fromkeys(("pending", "processing", "completed", "failed", "cancelled"), 0)
    base.update(given)
    return {**base, "total": sum(base.values())}


async def test_an_inactive_batchs_jobs_wait_until_it_is_active_again(api: Api) -> None:
    # given a batch of two jobs, one of them running
    batch_id, _ = await create_batch(api, 2)
    running = await claim(api)

    # when a writer switches the batch off
    await api.data(DEACTIVATE, {"id": batch_id}, as_=BOB)

    # then its waiting job is not claimed, the running one goes on, and jobs added to it
    # wait too
    assert await claim(api) is None
    assert (await api.data(COMPLETE, {"id": running["jobId"]}, as_=WORKER))  # type: ignore[index]
    await api.data(ADD_JOBS, {"id": batch_id, "jobs": [{"jobType": "scan"}]}, as_=BOB)
    assert await claim(api) is None
    # until it is switched on again
    await api.data(ACTIVATE, {"id": batch_id}, as_=BOB)
    assert {(await claim(api))["batchId"], (await claim(api))["batchId"]} == {batch_id}
    assert await claim(api) is None


async def test_cancel_batch_cancels_the_waiting_jobs_and_asks_the_running_ones_to_stop(
        api: Api) -> None:
    # given a batch with a completed, a running and two waiting jobs
    batch_id, _ = await create_batch(api, 4)
    done, running = await claim(api), await claim(api)
    await api.data(COMPLETE, {"id": done["jobId"]}, as_=WORKER)  # type: ignore[index]

    # when a writer of the batch cancels it
    cancelled = (await api.data(CANCEL_BATCH, {"id": batch_id, "reason": "wrong input"},
                                as_=BOB))["cancelBatch"]

    # then the waiting jobs are cancelled, the running one asked to stop, the done one kept
    assert cancelled["counts"] == counts(processing=1, completed=1, cancelled=2)
    asked = (await api.data(JOB, {"id": running["jobId"]}))["job"]  # type: ignore[index]
    assert asked["cancelRequested"] == {"by": "bob", "reason": "wrong input"}
    # and once its worker acknowledges, the batch is COMPLETED: cancelled jobs are no failure
    await api.data(FAIL, {"id": running["jobId"], "retryable": True},  # type: ignore[index]
                   as_=WORKER)
    final = (await api.data(BATCH, {"id": batch_id}))["batch"]
    assert (final["status"], final["counts"]) == ("COMPLETED", counts(completed=1, cancelled=3))
    refused = await api.error(CANCEL_BATCH, {"id": batch_id}, as_=Caller("carol"))
    assert refused["extensions"]["code"] == "NOT_FOUND"


async def test_a_batch_whose_every_job_was_cancelled_is_failed(api: Api) -> None:
    batch_id, _ = await create_batch(api, 2)
    cancelled = (await api.data(CANCEL_BATCH, {"id": batch_id}))["cancelBatch"]
    assert (cancelled["status"], cancelled["counts"]) == ("FAILED", counts(cancelled=2))


async def test_retry_failed_jobs_retries_the_failed_but_not_the_final_nor_the_cancelled(
        api: Api) -> None:
    # given a batch with a retryable failure, a final one, a cancelled job and a done one
    batch_id, ids = await create_batch(api, 4)
    flaky, final, done = await claim(api), await claim(api), await claim(api)
    await api.data(FAIL, {"id": flaky["jobId"], "retryable": True}, as_=WORKER)  # type: ignore[index]
    await api.data(FAIL, {"id": final["jobId"], "retryable": False}, as_=WORKER)  # type: ignore[index]
    await api.data(COMPLETE, {"id": done["jobId"]}, as_=WORKER)  # type: ignore[index]
    await api.data(CANCEL_BATCH, {"id": batch_id})

    # when a writer retries the batch's failed jobs
    retried = (await api.data(RETRY_FAILED, {"id": batch_id}, as_=BOB))["retryFailedJobs"]

    # then only the retryable failure is back in the queue
    assert retried["counts"] == counts(pending=1, completed=1, failed=1, cancelled=1)
    assert (await claim(api))["jobId"] == flaky["jobId"]  # type: ignore[index]
    assert len(ids) == 4


async def test_add_jobs_to_batch_takes_the_batchs_access_and_keeps_within_the_limit(
        api: Api, store: Store) -> None:
    batch_id, _ = await create_batch(api, 1)
    grown = (await api.data(ADD_JOBS, {"id": batch_id, "jobs": [
        {"jobType": "scan"}, {"jobType": "scan", "accessControl": {"readAccess": ["carol"]}}]},
        as_=BOB))["addJobsToBatch"]
    assert grown["counts"] == counts(pending=3)
    added = await store.jobs.collection.find({"batch_id": batch_id}).to_list()
    assert sorted(doc["access_control"]["read_access"] for doc in added) == [[], [], ["carol"]]
    too_many = await api.error(ADD_JOBS, {"id": batch_id, "jobs": [{"jobType": "scan"}] * 1000})
    assert (too_many["extensions"]["code"], too_many["extensions"]["field"]) == (
        "VALIDATION_ERROR", "jobs")
    assert await store.jobs.collection.count_documents({"batch_id": batch_id}) == 3
    reader = await api.error(ADD_JOBS, {"id": batch_id, "jobs": [{"jobType": "scan"}]},
                             as_=WORKER)
    assert reader["extensions"]["code"] == "NOT_FOUND"


async def test_delete_batch_is_refused_while_a_job_runs_then_removes_it_and_its_jobs(
        api: Api, store: Store) -> None:
    # given a batch with a running job
    batch_id, ids = await create_batch(api, 3)
    running = await claim(api)

    # when its admin deletes it, then a writer that is no admin
    refused = await api.error(DELETE_BATCH, {"id": batch_id})
    not_admin = await api.error(DELETE_BATCH, {"id": batch_id}, as_=BOB)

    # then nothing is deleted while the job runs, nor by a writer
    assert refused["extensions"]["code"] == "INVALID_TRANSITION"
    assert not_admin["extensions"]["code"] == "FORBIDDEN"
    assert await store.jobs.collection.count_documents({"batch_id": batch_id}) == 3
    # once it finished, deleting removes the batch and every job
    await api.data(COMPLETE, {"id": running["jobId"]}, as_=WORKER)  # type: ignore[index]
    deleted = (await api.data(DELETE_BATCH, {"id": batch_id}, as_=ADMIN))["deleteBatch"]
    assert deleted == {"batchId": batch_id, "counts": counts(pending=2, completed=1)}
    assert await store.jobs.collection.count_documents({"batch_id": batch_id}) == 0
    assert (await api.execute(BATCH, {"id": batch_id}))["data"]["batch"] is None
    assert len(ids) == 3


async def test_delete_batch_racing_claims_deletes_all_or_nothing(api: Api, store: Store
                                                                  ) -> None:
    # given 5 batches of 3 jobs, and workers claiming while their admin deletes each
    batches = [await create_batch(api, 3) for _ in range(5)]
    workers = [Caller(f"w{n}", ("worker",)) for n in range(4)]

    async def drain(worker: Caller) -> list[dict[str, Any]]:
        taken = []
        while (job := await claim(api, worker)) is not None:
            taken.append(job)
        return taken

    *drained, deletions = await asyncio.gather(
        *(drain(worker) for worker in workers),
        asyncio.gather(*(api.execute(DELETE_BATCH, {"id": batch_id})
                         for batch_id, _ in batches)))

    # then a batch was deleted with all its jobs (none of which ran), or refused because
    # one ran and then kept with all its jobs
    claimed = {job["jobId"] for taken in drained for job in taken}
    assert len(deletions) == len(batches)
    for (batch_id, ids), answer in zip(batches, deletions, strict=True):
        left = await store.jobs.collection.count_documents({"batch_id": batch_id})
        if answer.get("errors"):
            assert answer["errors"][0]["extensions"]["code"] == "INVALID_TRANSITION"
            assert left == 3 and claimed & set(ids)
        else:
            assert left == 0 and not claimed & set(ids)


async def test_a_batch_left_without_jobs_is_pending(api: Api) -> None:
    batch_id, ids = await create_batch(api, 2)
    done = await claim(api)
    await api.data(COMPLETE, {"id": done["jobId"]}, as_=WORKER)  # type: ignore[index]
    for job_id in ids:
        await api.data(DELETE_JOB, {"id": job_id})
    empty = (await api.data(BATCH, {"id": batch_id}))["batch"]
    assert (empty["status"], empty["counts"]) == ("PENDING", counts())


async def test_batch_changed_reports_cancelled_jobs_apart(
        settings: Any, mongo_uri: str, store: Store) -> None:
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url) as http:
        api = Api(http, settings)
        batch_id, _ = await create_batch(api, 2)
        token = mint_token(settings, ALICE.user_id, ALICE.roles)
        async with ws_client(server, payload={"Authorization": f"Bearer {token}"}) as ws:
            op = await ws.subscribe(f"subscription($id: ID!) {{ batchChanged(batchId: $id) {{ "
                                    f"status {COUNTS} }} }}", {"id": batch_id})
            first = (await ws.next(op))["batchChanged"]
            await api.data(CANCEL_BATCH, {"id": batch_id})
            seen = [(await ws.next(op))["batchChanged"]]
            while seen[-1]["counts"]["cancelled"] < 2:
                seen.append((await ws.next(op))["batchChanged"])
    assert first["counts"] == counts(pending=2)
    assert seen[-1] == {"status": "FAILED", "counts": counts(cancelled=2)}


async def test_cancel_batch_racing_claims_leaves_no_job_uncancelled(
        api: Api, store: Store) -> None:
    # given a batch of 12 jobs that three workers drain while a writer cancels it
    batch_id, ids = await create_batch(api, 12)

    async def drain(worker: Caller) -> None:
        while await claim(api, worker) is not None:
            pass

    await asyncio.gather(*(drain(Caller(f"w{n}", ("worker",))) for n in range(3)),
                         api.data(CANCEL_BATCH, {"id": batch_id}, as_=BOB))

    # then each job was either cancelled while waiting, or claimed and then asked to stop
    for job_id in ids:
        state = (await api.data(JOB, {"id": job_id}))["job"]
        if state["status"] == "FAILED":
            assert state["error"]["code"] == "CANCELLED"
        else:
            assert (state["status"], state["cancelRequested"]["by"]) == ("PROCESSING", "bob")


async def test_jobs_added_while_a_batch_is_switched_off_wait_with_the_others(
        api: Api) -> None:
    batch_id, _ = await create_batch(api, 1)
    await asyncio.gather(
        *(api.data(ADD_JOBS, {"id": batch_id, "jobs": [{"jobType": "scan"}] * 2}, as_=BOB)
          for _ in range(4)),
        api.data(DEACTIVATE, {"id": batch_id}, as_=BOB))
    state = (await api.data(BATCH, {"id": batch_id}))["batch"]
    assert (state["active"], state["counts"]["pending"]) == (False, 9)
    assert await claim(api) is None


async def test_retry_failed_jobs_racing_retry_job_retries_each_job_once(api: Api) -> None:
    batch_id, ids = await create_batch(api, 6)
    for _ in ids:
        job = await claim(api)
        await api.data(FAIL, {"id": job["jobId"], "retryable": True}, as_=WORKER)  # type: ignore[index]
    retry = "mutation($id: ID!) { retryJob(jobId: $id) { status } }"
    await asyncio.gather(api.data(RETRY_FAILED, {"id": batch_id}),
                         *(api.execute(retry, {"id": job_id}) for job_id in ids))
    previous = "query($id: ID!) { job(jobId: $id) { status previousErrors { code } } }"
    for job_id in ids:
        state = (await api.data(previous, {"id": job_id}))["job"]
        assert (state["status"], len(state["previousErrors"])) == ("PENDING", 1)
