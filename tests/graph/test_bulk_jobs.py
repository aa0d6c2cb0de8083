"""retryJobs, cancelJobs and deleteJobs through the public API: they act on what the
`jobs` filter selects and the caller may change (by the single mutations' rules), a
bounded number per call, say how many matched and changed and whether more remain, and
change nothing more when repeated; racing completions and each other, no job is changed
twice nor both completed and cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.helpers.graphql import ADMIN, ALICE, BOB, WORKER, Api, Caller
from tests.helpers.waiting import eventually

CREATE = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CLAIM = """mutation { claimJob { jobId } }"""
FAIL = """mutation($id: ID!, $retryable: Boolean) { failJob(jobId: $id,
  error: {code: "X", message: "m"}, retryable: $retryable) { status } }"""
COMPLETE = """mutation($id: ID!) { completeJob(jobId: $id, results: {ok: true}) { status } }"""
RETRY_JOBS = """mutation($filter: JobFilterInput, $limit: Int) {
  retryJobs(filter: $filter, limit: $limit) { matched changed more } }"""
CANCEL_JOBS = """mutation($filter: JobFilterInput, $reason: String, $limit: Int) {
  cancelJobs(filter: $filter, reason: $reason, limit: $limit) { matched changed more } }"""
DELETE_JOBS = """mutation($filter: JobFilterInput, $limit: Int) {
  deleteJobs(filter: $filter, limit: $limit) { matched changed more } }"""
JOB = """query($id: ID!) { job(jobId: $id) { status previousErrors { code }
  cancelRequested { by reason } error { code } } }"""
HISTORY = """query($id: ID!) { job(jobId: $id) { history(first: 1) {
  edges { node { kind by } } } } }"""
CAROL = Caller("carol")
BOB_WRITES = {"accessControl": {"writeAccess": ["bob"], "readAccess": ["carol"]}}


async def create(api: Api, job_type: str = "pdf", as_: Caller = ALICE, **fields: Any) -> str:
    data = await api.data(CREATE, {"input": {"jobType": job_type, **fields}}, as_=as_)
    return data["createJob"]["jobId"]


async def failed(api: Api, job_type: str = "pdf", retryable: bool = True, **fields: Any
                 ) -> str:
    job_id = await create(api, job_type, maxAttempts=1, **fields)
    await api.data(FAIL, {"id": job_id, "retryable": retryable}, as_=ADMIN)
    return job_id


async def job(api: Api, job_id: str, as_: Caller = ADMIN) -> dict[str, Any] | None:
    body = await api.execute(JOB, {"id": job_id}, as_=as_)
    return (body.get("data") or {}).get("job")


async def newest_entry(api: Api, job_id: str, kind: str) -> dict[str, Any] | None:
    found = (await api.data(HISTORY, {"id": job_id}))["job"]["history"]["edges"]
    return found[0]["node"] if found and found[0]["node"]["kind"] == kind else None


async def test_retry_jobs_retries_what_you_may_write_once(api: Api) -> None:
    # given failed pdf jobs bob may write, one failed for good, one of another type, one
    # bob may only read
    mine = [await failed(api, **BOB_WRITES) for _ in range(3)]
    for_good = await failed(api, retryable=False, **BOB_WRITES)
    other_type = await failed(api, "img", **BOB_WRITES)
    read_only = await failed(api, accessControl={"readAccess": ["bob"]})
    # when bob retries the failed pdf jobs
    result = (await api.data(RETRY_JOBS, {"filter": {"jobType": "pdf", "status": "FAILED"}},
                             as_=BOB))["retryJobs"]
    # then exactly his three are back to PENDING, their error kept
    assert result == {"matched": 3, "changed": 3, "more": False}
    for job_id in mine:
        assert await job(api, job_id) == {"status": "PENDING", "previousErrors": [
            {"code": "X"}], "cancelRequested": None, "error": None}
    for job_id in (for_good, other_type, read_only):
        assert (await job(api, job_id))["status"] == "FAILED"
    # and each has its history entry, by bob
    newest = await eventually(lambda: newest_entry(api, mine[0], "RETRIED"))
    assert newest["by"] == "bob"
    # and repeating changes nothing
    again = (await api.data(RETRY_JOBS, {"filter": {"jobType": "pdf"}}, as_=BOB))["retryJobs"]
    assert again == {"matched": 0, "changed": 0, "more": False}


async def test_cancel_jobs_follows_cancel_jobs_rules(api: Api) -> None:
    # given a PENDING and a PROCESSING job bob may write, and one he may only read
    running = await create(api, **BOB_WRITES)
    pending = await create(api, **BOB_WRITES)
    assert (await api.data(CLAIM, as_=WORKER))["claimJob"]["jobId"] == running  # the oldest
    untouched = await create(api, accessControl={"readAccess": ["bob"]})
    # when bob cancels every job he can see
    result = (await api.data(CANCEL_JOBS, {"reason": "clean up"}, as_=BOB))["cancelJobs"]
    # then the PENDING one ended CANCELLED, the PROCESSING one got a request
    assert result == {"matched": 2, "changed": 2, "more": False}
    assert await job(api, pending) == {"status": "FAILED", "previousErrors": [],
                                       "cancelRequested": {"by": "bob", "reason": "clean up"},
                                       "error": {"code": "CANCELLED"}}
    assert await job(api, running) == {"status": "PROCESSING", "previousErrors": [],
                                       "cancelRequested": {"by": "bob", "reason": "clean up"},
                                       "error": None}
    assert (await job(api, untouched))["status"] == "PENDING"
    # and asking again changes nothing (nor the first request)
    again = (await api.data(CANCEL_JOBS, {"reason": "again"}, as_=BOB))["cancelJobs"]
    assert again == {"matched": 0, "changed": 0, "more": False}
    assert (await job(api, running))["cancelRequested"]["reason"] == "clean up"


async def test_delete_jobs_needs_admin_and_is_bounded(api: Api) -> None:
    jobs = [await create(api, "bulk-delete", **BOB_WRITES) for _ in range(3)]
    keep = await create(api, "bulk-delete", as_=CAROL)
    selected = {"filter": {"jobType": "bulk-delete"}}
    # a writer administers none of them; an anonymous caller, a reader: nothing
    for caller in (BOB, CAROL, Caller()):
        result = (await api.data(DELETE_JOBS, selected, as_=caller))["deleteJobs"]
        assert result["changed"] == (1 if caller is CAROL else 0)
    # alice, two at a time
    first = (await api.data(DELETE_JOBS, {**selected, "limit": 2}))["deleteJobs"]
    assert first == {"matched": 2, "changed": 2, "more": True}
    second = (await api.data(DELETE_JOBS, {**selected, "limit": 2}))["deleteJobs"]
    assert second == {"matched": 1, "changed": 1, "more": False}
    for job_id in [*jobs, keep]:
        assert await job(api, job_id) is None


async def test_limit_is_validated(api: Api) -> None:
    for limit in (0, 1001):
        error = await api.error(RETRY_JOBS, {"limit": limit})
        assert error["extensions"]["code"] == "VALIDATION_ERROR"
        assert "limit" in error["message"]


async def test_cancel_jobs_racing_completions_ends_each_job_in_exactly_one(api: Api) -> None:
    # given 20 running jobs
    ids = [await create(api, "race") for _ in range(20)]
    for _ in ids:
        await api.data(CLAIM, as_=WORKER)

    async def complete(job_id: str) -> bool:
        body = await api.execute(COMPLETE, {"id": job_id}, as_=WORKER)
        return not body.get("errors")

    # when their worker completes them while alice cancels them all, in small calls
    async def cancel_all() -> int:
        changed = 0
        while True:
            result = (await api.data(CANCEL_JOBS, {"filter": {"jobType": "race"},
                                                   "limit": 3}))["cancelJobs"]
            changed += result["changed"]
            if not result["more"] and not result["matched"]:
                return changed
    completed, changed = await asyncio.gather(
        asyncio.gather(*(complete(job_id) for job_id in ids)), cancel_all())
    # then each job either completed (never asked to cancel) or was asked (never completed)
    states = [await job(api, job_id) for job_id in ids]
    for done, state in zip(completed, states, strict=True):
        if done:
            assert state["status"] == "COMPLETED" and state["cancelRequested"] is None
        else:
            assert state["status"] == "PROCESSING" and state["cancelRequested"] is not None
    assert changed == sum(not done for done in completed)


async def test_concurrent_retry_jobs_retry_each_job_once(api: Api) -> None:
    ids = [await failed(api, "twice") for _ in range(10)]
    results = await asyncio.gather(*(api.data(RETRY_JOBS, {"filter": {"jobType": "twice"}})
                                     for _ in range(4)))
    assert sum(result["retryJobs"]["changed"] for result in results) == 10
    for job_id in ids:
        assert (await job(api, job_id))["previousErrors"] == [{"code": "X"}]
