"""The ``viewerCan...`` flags say what the mutations then do: for every kind of caller and
every object type, each flag is read, the mutation it stands for is tried on the same
object, and it succeeds exactly when the flag said so. The flags also match the rules
written out once in ``test_access_matrix`` (so both cannot be wrong together), and
``viewerCanRetry`` follows the object's state as ``retryJob`` does."""

from __future__ import annotations

import pytest

from repository.database import Store
from repository.models import AccessVisibility, DocumentationJobStatus, JobStatus
from tests.graph.test_access_matrix import (
    CALLERS,
    GRANTS,
    HOLDER,
    insert,
    make_batch,
    make_documentation_job,
    make_job,
)
from tests.helpers.graphql import Api, Caller

PUBLIC = AccessVisibility.PUBLIC
"""Everyone may read the flags of a PUBLIC object (visibility only decides reading)."""
SAME_ACCESS = '{visibility: PUBLIC, readAccess: ["reader"], writeAccess: ["writer"], ' \
    'adminAccess: ["owner", "listed-admin"]}'
FLAGS = "viewerCanWrite viewerCanAdmin"

JOB = (f"query($id: ID!) {{ job(jobId: $id) {{ {FLAGS} viewerCanRetry viewerCanDelete "
       "viewerCanCancel viewerCanSetPriority } }")
BATCH = f"query($id: ID!) {{ batch(batchId: $id) {{ {FLAGS} }} }}"
DOC = (f"query($id: ID!) {{ documentationJob(jobId: $id) {{ {FLAGS} viewerCanRetry "
       "viewerCanDelete } }")
SCHEDULE = f"query($id: ID!) {{ schedule(scheduleId: $id) {{ {FLAGS} viewerCanDelete }} }}"

RETRY_JOB = "mutation($id: ID!) { retryJob(jobId: $id) { status } }"
CANCEL_JOB = "mutation($id: ID!) { cancelJob(jobId: $id, reason: \"no\") { status } }"
SET_PRIORITY = "mutation($id: ID!) { setJobPriority(jobId: $id, priority: 7) { priority } }"
DELETE_JOB = "mutation($id: ID!) { deleteJob(jobId: $id) { jobId } }"
JOB_ACCESS = f"mutation($id: ID!) {{ setJobAccess(jobId: $id, accessControl: {SAME_ACCESS}) " \
    "{ jobId } }"
DEACTIVATE = "mutation($id: ID!) { deactivateBatch(batchId: $id) { active } }"
BATCH_ACCESS = f"mutation($id: ID!) {{ setBatchAccess(batchId: $id, accessControl: " \
    f"{SAME_ACCESS}) {{ batchId }} }}"
RETRY_DOC = "mutation($id: ID!) { retryDocumentationJob(jobId: $id) { status } }"
DELETE_DOC = "mutation($id: ID!) { deleteDocumentationJob(jobId: $id) { jobId } }"
DOC_ACCESS = f"mutation($id: ID!) {{ setDocumentationJobAccess(jobId: $id, accessControl: " \
    f"{SAME_ACCESS}) {{ jobId }} }}"
PAUSE = "mutation($id: ID!) { pauseSchedule(scheduleId: $id) { paused } }"
DELETE_SCHEDULE = "mutation($id: ID!) { deleteSchedule(scheduleId: $id) { scheduleId } }"
SCHEDULE_ACCESS = f"mutation($id: ID!) {{ setScheduleAccess(scheduleId: $id, accessControl: " \
    f"{SAME_ACCESS}) {{ scheduleId }} }}"
CREATE_SCHEDULE = """mutation($input: CreateScheduleInput!) {
  createSchedule(input: $input) { scheduleId } }"""

OWNER = Caller("owner")


def granted(caller: str) -> dict[str, bool]:
    """What the rules give this caller on an object it did not claim."""
    grants = GRANTS[caller]
    return {"viewerCanWrite": "write" in grants, "viewerCanAdmin": "admin" in grants}


async def flags(api: Api, query: str, object_id: str, caller: Caller) -> dict[str, bool]:
    data = await api.data(query, {"id": object_id}, as_=caller)
    (found,) = data.values()
    assert found is not None, "a PUBLIC object is readable by everyone"
    return found


async def accepted(api: Api, mutation: str, object_id: str, caller: Caller) -> bool:
    """Whether the mutation went through; a refusal must be one of access control."""
    body = await api.execute(mutation, {"id": object_id}, as_=caller)
    if not body.get("errors"):
        return True
    codes = {error["extensions"]["code"] for error in body["errors"]}
    assert codes <= {"FORBIDDEN", "NOT_FOUND"}, body["errors"]
    return False


async def schedule_for(api: Api) -> str:
    data = await api.data(CREATE_SCHEDULE, {"input": {
        "name": "yearly", "cron": "0 0 1 1 *", "jobTemplate": {"jobType": "report"},
        "accessControl": {"visibility": "PUBLIC", "readAccess": ["reader"],
                          "writeAccess": ["writer"], "adminAccess": ["listed-admin"]}}},
        as_=OWNER)
    return data["createSchedule"]["scheduleId"]


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_each_flag_says_what_its_mutation_then_does(api: Api, store: Store,
                                                          caller: str) -> None:
    who, expected = CALLERS[caller], granted(caller)
    # given fresh PUBLIC objects, one per mutation tried (jobs claimed by the worker-role
    # caller, HOLDER: its claim must not count as a right to retry or delete)
    failed_job, job, job_for_access = (make_job(PUBLIC, JobStatus.FAILED), make_job(PUBLIC),
                                       make_job(PUBLIC))
    running_job, pending_job = make_job(PUBLIC), make_job(PUBLIC, JobStatus.PENDING)
    batch, batch_for_access = make_batch(PUBLIC), make_batch(PUBLIC)
    failed_doc, doc, doc_for_access = (
        make_documentation_job(PUBLIC, DocumentationJobStatus.FAILED),
        make_documentation_job(PUBLIC), make_documentation_job(PUBLIC))
    await insert(store, [failed_job, job, job_for_access, running_job, pending_job, batch,
                         batch_for_access, failed_doc, doc, doc_for_access])
    assert failed_job.claimed_by == HOLDER
    schedule, schedule_to_delete, schedule_for_access = [await schedule_for(api)
                                                         for _ in range(3)]
    outcomes: dict[str, tuple[bool, bool]] = {}

    # when each flag is read and then its mutation tried, as this caller
    async def check(name: str, query: str, object_id: str, flag: str, mutation: str) -> None:
        said = (await flags(api, query, object_id, who))[flag]
        outcomes[name] = (said, await accepted(api, mutation, object_id, who))

    await check("retryJob", JOB, failed_job.job_id, "viewerCanRetry", RETRY_JOB)
    await check("cancelJob", JOB, running_job.job_id, "viewerCanCancel", CANCEL_JOB)
    await check("setJobPriority", JOB, pending_job.job_id, "viewerCanSetPriority",
                SET_PRIORITY)
    await check("deleteJob", JOB, job.job_id, "viewerCanDelete", DELETE_JOB)
    await check("setJobAccess", JOB, job_for_access.job_id, "viewerCanAdmin", JOB_ACCESS)
    await check("deactivateBatch", BATCH, batch.batch_id, "viewerCanWrite", DEACTIVATE)
    await check("setBatchAccess", BATCH, batch_for_access.batch_id, "viewerCanAdmin",
                BATCH_ACCESS)
    await check("retryDocumentationJob", DOC, failed_doc.job_id, "viewerCanRetry", RETRY_DOC)
    await check("deleteDocumentationJob", DOC, doc.job_id, "viewerCanDelete", DELETE_DOC)
    await check("setDocumentationJobAccess", DOC, doc_for_access.job_id, "viewerCanAdmin",
                DOC_ACCESS)
    await check("pauseSchedule", SCHEDULE, schedule, "viewerCanWrite", PAUSE)
    await check("deleteSchedule", SCHEDULE, schedule_to_delete, "viewerCanDelete",
                DELETE_SCHEDULE)
    await check("setScheduleAccess", SCHEDULE, schedule_for_access, "viewerCanAdmin",
                SCHEDULE_ACCESS)

    # then every mutation went through exactly when its flag said it would
    assert {name: said for name, (said, _) in outcomes.items()} == {
        name: done for name, (_, done) in outcomes.items()}
    # and the flags are the rules: writers retry, pause, deactivate; admins delete and
    # change access
    writes = ("retryJob", "cancelJob", "setJobPriority", "deactivateBatch",
              "retryDocumentationJob", "pauseSchedule")
    assert {name: outcomes[name][0] for name in writes} == dict.fromkeys(
        writes, expected["viewerCanWrite"])
    admins = [name for name in outcomes if name not in writes]
    assert {name: outcomes[name][0] for name in admins} == dict.fromkeys(
        admins, expected["viewerCanAdmin"])


@pytest.mark.parametrize("caller", ["reader", "writer", "listed-admin", "admin-role",
                                    "worker-role", "anonymous"])
async def test_write_and_admin_flags_agree_on_every_type(api: Api, store: Store,
                                                         caller: str) -> None:
    who = CALLERS[caller]
    job, batch = make_job(PUBLIC), make_batch(PUBLIC)
    doc = make_documentation_job(PUBLIC)
    await insert(store, [job, batch, doc])
    schedule = await schedule_for(api)

    seen = [await flags(api, JOB, job.job_id, who), await flags(api, BATCH, batch.batch_id, who),
            await flags(api, DOC, doc.job_id, who), await flags(api, SCHEDULE, schedule, who)]

    # the worker holding the job reads it by its claim, yet gets no right from it
    assert [{flag: found[flag] for flag in ("viewerCanWrite", "viewerCanAdmin")}
            for found in seen] == [granted(caller)] * 4


@pytest.mark.parametrize(("status", "retryable"), [
    (JobStatus.PENDING, True), (JobStatus.PROCESSING, True), (JobStatus.COMPLETED, True),
    (JobStatus.FAILED, False)])
async def test_retry_flag_is_off_where_retry_job_is_refused_by_state(
        api: Api, store: Store, status: JobStatus, retryable: bool) -> None:
    # given a job its admin may write, in a state retryJob refuses
    job = make_job(PUBLIC, status)
    job.retryable = retryable
    await insert(store, [job])

    found = await flags(api, JOB, job.job_id, OWNER)
    error = await api.error(RETRY_JOB, {"id": job.job_id}, as_=OWNER)

    assert {k: v for k, v in found.items() if k in ("viewerCanWrite", "viewerCanAdmin",
            "viewerCanRetry", "viewerCanDelete")} == {
        "viewerCanWrite": True, "viewerCanAdmin": True, "viewerCanRetry": False,
        "viewerCanDelete": True}
    assert error["extensions"]["code"] == "INVALID_TRANSITION"


@pytest.mark.parametrize("status", list(JobStatus))
async def test_cancel_and_priority_flags_follow_the_state(api: Api, store: Store,
                                                          status: JobStatus) -> None:
    # given a job its admin may write, in each state
    job = make_job(PUBLIC, status)
    await insert(store, [job])

    found = await flags(api, JOB, job.job_id, OWNER)
    priority = await api.execute(SET_PRIORITY, {"id": job.job_id}, as_=OWNER)
    cancel = await api.execute(CANCEL_JOB, {"id": job.job_id}, as_=OWNER)
    again = await flags(api, JOB, job.job_id, OWNER)

    # then each flag was on exactly where its mutation then went through
    assert found["viewerCanSetPriority"] is (not priority.get("errors"))
    assert found["viewerCanSetPriority"] is (status is JobStatus.PENDING)
    assert found["viewerCanCancel"] is (not cancel.get("errors"))
    assert found["viewerCanCancel"] is (status in (JobStatus.PENDING, JobStatus.PROCESSING))
    # and once asked (or ended), there is nothing left to cancel
    assert again["viewerCanCancel"] is False


@pytest.mark.parametrize("retryable", [True, False])
async def test_documentation_job_retry_flag_follows_retryable(api: Api, store: Store,
                                                              retryable: bool) -> None:
    doc = make_documentation_job(PUBLIC, DocumentationJobStatus.FAILED)
    doc.retryable = retryable
    await insert(store, [doc])

    found = await flags(api, DOC, doc.job_id, OWNER)
    body = await api.execute(RETRY_DOC, {"id": doc.job_id}, as_=OWNER)

    assert found["viewerCanRetry"] is retryable
    assert (not body.get("errors")) is retryable


async def test_flags_are_the_callers_own_wherever_the_object_is_read(api: Api,
                                                                      store: Store) -> None:
    """Through ``node(id:)`` too: one object, different answers per caller."""
    job = make_job(PUBLIC, JobStatus.FAILED)
    await insert(store, [job])
    query = """query($id: ID!) { node(id: $id) { ... on SecretaryJob { viewerCanRetry } } }"""
    global_id = (await api.data("query($id: ID!) { job(jobId: $id) { id } }",
                                {"id": job.job_id}, as_=OWNER))["job"]["id"]

    as_writer = await api.data(query, {"id": global_id}, as_=CALLERS["writer"])
    as_reader = await api.data(query, {"id": global_id}, as_=CALLERS["reader"])

    assert as_writer["node"] == {"viewerCanRetry": True}
    assert as_reader["node"] == {"viewerCanRetry": False}


def test_rights_are_plain_data_for_the_repository() -> None:
    from repository.access import Principal, rights
    from repository.models import AccessControl

    access = AccessControl(write_access=["w"], admin_access=["a"])
    assert rights(Principal("w"), access).retry(failed=True, retryable=True)
    assert not rights(Principal("w"), access).retry(failed=True, retryable=False)
    assert not rights(Principal("w"), access).admin
    assert rights(Principal("a"), access).admin
    assert rights(Principal("x", frozenset({"admin"})), access).retry(failed=True,
                                                                      retryable=True)
    assert not rights(Principal(), access).write
    assert not any(vars(rights(Principal("x", frozenset({"worker"})), access)).values())
