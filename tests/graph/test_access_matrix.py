"""Access control through the public API: every query and mutation, for every kind of
caller, against PRIVATE and PUBLIC jobs, batches and documentation jobs.

Each matrix test seeds one object per caller directly through ``store`` (setup, not
the thing under test), then calls the API once per caller and checks the answer and,
where the call was refused, that the stored document did not change at all.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import httpx
import pytest

from graph.server.app import create_app
from repository.batches import batch_to_document
from repository.database import Store
from repository.documentation_jobs import documentation_job_to_document
from repository.jobs import job_to_document
from repository.models import (
    AccessControl,
    AccessVisibility,
    BatchJob,
    DocumentationJob,
    DocumentationJobStatus,
    JobStatus,
    SecretaryJob,
    new_id,
    utcnow,
)
from tests.helpers.graphql import Api, Caller, make_settings

Kind = Literal["job", "batch", "documentation job"]
Need = Literal["read", "write", "admin"]
KINDS: list[Kind] = ["job", "batch", "documentation job"]

PRIVATE, PUBLIC = AccessVisibility.PRIVATE, AccessVisibility.PUBLIC

CALLERS: dict[str, Caller] = {
    "anonymous": Caller(),
    "owner": Caller("owner"),
    "reader": Caller("reader"),
    "writer": Caller("writer"),
    "listed-admin": Caller("listed-admin"),
    "admin-role": Caller("root", ("admin",)),
    "worker-role": Caller("worker-1", ("worker",)),
    "idle-worker": Caller("worker-2", ("worker",)),
    "unrelated": Caller("stranger"),
}
HOLDER = "worker-1"
"""Every seeded job is claimed by this worker, so the worker-role caller drives its own job."""

GRANTS: dict[str, set[Need]] = {
    "anonymous": set(),
    "owner": {"read", "write", "admin"},
    "reader": {"read"},
    "writer": {"read", "write"},
    "listed-admin": {"read", "write", "admin"},
    "admin-role": {"read", "write", "admin"},
    "worker-role": set(),
    "idle-worker": set(),
    "unrelated": set(),
}
"""What each caller may do by the object's lists (or role), whatever its visibility."""
HOLDER_GRANTS: set[Need] = {"read", "write"}
"""The worker holding a job's claim may read and drive that job, but not administer it
(nor retry it: that is the job's writers' decision, see ``Operation.holder_writes``)."""


def seeded_access(visibility: AccessVisibility) -> AccessControl:
    # the owner created it (so is an admin); the others are listed by hand
    return AccessControl(visibility, read_access=["reader"], write_access=["writer"],
                         admin_access=["owner", "listed-admin"])


def expected(caller: str, kind: Kind, need: Need, visibility: AccessVisibility,
             holder_writes: bool = True) -> str:
    """'ok', 'FORBIDDEN' or 'NOT_FOUND': the rules of the issue, written out once."""
    holder = HOLDER_GRANTS if holder_writes else HOLDER_GRANTS - {"write"}
    grants = GRANTS[caller] | (holder if kind == "job" and caller == "worker-role" else set())
    readable = "read" in grants or visibility is PUBLIC
    if need in grants or (need == "read" and readable):
        return "ok"
    return "FORBIDDEN" if readable else "NOT_FOUND"


# -- seeding -----------------------------------------------------------------------


def make_job(visibility: AccessVisibility, status: JobStatus = JobStatus.PROCESSING,
             *, access: AccessControl | None = None, claimed_by: str | None = HOLDER,
             batch_id: str | None = None, offset: int = 0) -> SecretaryJob:
    now = utcnow() - timedelta(seconds=60) + timedelta(milliseconds=offset)
    held = status is not JobStatus.PENDING
    return SecretaryJob(
        job_id=new_id(), job_type="pdf", status=status, created_at=now, updated_at=now,
        access_control=access or seeded_access(visibility), owner="owner", batch_id=batch_id,
        claimed_by=claimed_by if held else None, attempts=1 if held else 0,
        processing_started_at=now if held else None,
        lease_expires_at=now + timedelta(hours=1) if status is JobStatus.PROCESSING else None,
        error={"code": "E", "message": "boom", "details": None}
        if status is JobStatus.FAILED else None,
    )


def make_batch(visibility: AccessVisibility, *, active: bool = True,
               access: AccessControl | None = None, offset: int = 0) -> BatchJob:
    now = utcnow() - timedelta(seconds=60) + timedelta(milliseconds=offset)
    return BatchJob(batch_id=new_id(), batch_name="nightly", created_at=now, updated_at=now,
                    active=active, access_control=access or seeded_access(visibility),
                    owner="owner")


def make_documentation_job(
    visibility: AccessVisibility, status: DocumentationJobStatus = DocumentationJobStatus.RUNNING,
    *, access: AccessControl | None = None, offset: int = 0,
) -> DocumentationJob:
    now = utcnow() - timedelta(seconds=60) + timedelta(milliseconds=offset)
    return DocumentationJob(
        repository_path="/src/repo", repository_name="repo", output_directory="/out",
        status=status, created_at=now, updated_at=now,
        access_control=access or seeded_access(visibility), owner="owner")


def collection(store: Store, kind: Kind) -> Any:
    return {"job": store.jobs.collection, "batch": store.batches.collection,
            "documentation job": store.documentation_jobs.collection}[kind]


async def insert(store: Store, objects: list[Any]) -> None:
    by_kind: dict[Kind, list[dict[str, Any]]] = {}
    for obj in objects:
        if isinstance(obj, SecretaryJob):
            by_kind.setdefault("job", []).append(job_to_document(obj))
        elif isinstance(obj, BatchJob):
            by_kind.setdefault("batch", []).append(batch_to_document(obj))
        else:
            by_kind.setdefault("documentation job", []).append(
                documentation_job_to_document(obj))
    for kind, docs in by_kind.items():
        await collection(store, kind).insert_many(docs)


def object_id(obj: Any) -> str:
    return obj.batch_id if isinstance(obj, BatchJob) else obj.job_id


# -- the operations ------------------------------------------------------------------

Changed = Callable[[dict[str, Any] | None, dict[str, Any]], bool]


@dataclass(frozen=True)
class Operation:
    name: str
    kind: Kind
    need: Need
    document: str
    seed: Callable[[AccessVisibility], Any]
    changed: Changed = field(default=lambda after, before: after == before)
    """Whether the stored document shows the operation's effect (queries change nothing)."""
    holder_writes: bool = True
    """Whether the worker holding a job may do this (retrying is for its writers only)."""


def _job(status: JobStatus) -> Callable[[AccessVisibility], SecretaryJob]:
    return lambda visibility: make_job(visibility, status)


def _doc_job(status: DocumentationJobStatus) -> Callable[[AccessVisibility], DocumentationJob]:
    return lambda visibility: make_documentation_job(visibility, status)


def _status(value: str) -> Changed:
    return lambda after, before: after is not None and after["status"] == value


def _deleted(after: dict[str, Any] | None, before: dict[str, Any]) -> bool:
    return after is None


def _access_replaced(after: dict[str, Any] | None, before: dict[str, Any]) -> bool:
    return after is not None and after["readers"] == ["*", "newcomer", "owner"]


NEW_ACCESS = '{visibility: PUBLIC, readAccess: ["newcomer"], adminAccess: ["owner"]}'
RUNNING, PENDING_DOC = DocumentationJobStatus.RUNNING, DocumentationJobStatus.PENDING

OPERATIONS = [
    # jobs
    Operation("job", "job", "read", "query($id: ID!) { job(jobId: $id) { jobId } }",
              _job(JobStatus.PROCESSING)),
    Operation("updateJobProgress", "job", "write",
              'mutation($id: ID!) { updateJobProgress(jobId: $id, progress: {step: "ocr", '
              "percent: 50}) { jobId } }",
              _job(JobStatus.PROCESSING),
              lambda after, before: after is not None and after["progress"]["percent"] == 50),
    Operation("heartbeatJob", "job", "write",
              "mutation($id: ID!) { heartbeatJob(jobId: $id) { jobId } }",
              _job(JobStatus.PROCESSING),
              lambda after, before: after is not None
              and after["updated_at"] > before["updated_at"]),
    Operation("appendJobLogs", "job", "write",
              'mutation($id: ID!) { appendJobLogs(jobId: $id, entries: [{level: INFO, message: '
              '"page 1"}]) { jobId } }',
              _job(JobStatus.PROCESSING),
              lambda after, before: after is not None and after["log_seq"] == 1),
    Operation("completeJob", "job", "write",
              "mutation($id: ID!) { completeJob(jobId: $id, results: {pages: 3}) { jobId } }",
              _job(JobStatus.PROCESSING), _status("COMPLETED")),
    Operation("failJob", "job", "write",
              'mutation($id: ID!) { failJob(jobId: $id, error: {code: "OCR", message: "unreadable"'
              "}) { jobId } }",
              _job(JobStatus.PROCESSING), _status("FAILED")),
    Operation("retryJob", "job", "write", "mutation($id: ID!) { retryJob(jobId: $id) { jobId } }",
              _job(JobStatus.FAILED), _status("PENDING"), holder_writes=False),
    Operation("deleteJob", "job", "admin",
              "mutation($id: ID!) { deleteJob(jobId: $id) { jobId } }",
              _job(JobStatus.PROCESSING), _deleted),
    Operation("setJobAccess", "job", "admin",
              f"mutation($id: ID!) {{ setJobAccess(jobId: $id, accessControl: {NEW_ACCESS}) "
              "{ jobId } }",
              _job(JobStatus.PROCESSING), _access_replaced),
    # batches
    Operation("batch", "batch", "read",
              "query($id: ID!) { batch(batchId: $id) { batchId } }", make_batch),
    Operation("deactivateBatch", "batch", "write",
              "mutation($id: ID!) { deactivateBatch(batchId: $id) { batchId } }", make_batch,
              lambda after, before: after is not None and after["active"] is False),
    Operation("activateBatch", "batch", "write",
              "mutation($id: ID!) { activateBatch(batchId: $id) { batchId } }",
              lambda visibility: make_batch(visibility, active=False),
              lambda after, before: after is not None and after["active"] is True),
    Operation("setBatchAccess", "batch", "admin",
              f"mutation($id: ID!) {{ setBatchAccess(batchId: $id, accessControl: {NEW_ACCESS}) "
              "{ batchId } }",
              make_batch, _access_replaced),
    # documentation jobs
    Operation("documentationJob", "documentation job", "read",
              "query($id: ID!) { documentationJob(jobId: $id) { jobId } }", _doc_job(RUNNING)),
    Operation("startDocumentationJob", "documentation job", "write",
              "mutation($id: ID!) { startDocumentationJob(jobId: $id) { jobId } }",
              _doc_job(PENDING_DOC), _status("RUNNING")),
    Operation("completeDocumentationJob", "documentation job", "write",
              "mutation($id: ID!) { completeDocumentationJob(jobId: $id) { jobId } }",
              _doc_job(RUNNING), _status("COMPLETED")),
    Operation("failDocumentationJob", "documentation job", "write",
              'mutation($id: ID!) { failDocumentationJob(jobId: $id, errorMessage: "no git") '
              "{ jobId } }",
              _doc_job(RUNNING), _status("FAILED")),
    Operation("setDocumentationJobStatistics", "documentation job", "write",
              "mutation($id: ID!) { setDocumentationJobStatistics(jobId: $id, statistics: "
              "{totalFilesAnalyzed: 7}) { jobId } }",
              _doc_job(RUNNING),
              lambda after, before: after is not None
              and after["statistics"]["total_files_analyzed"] == 7),
    Operation("addGeneratedFiles", "documentation job", "write",
              'mutation($id: ID!) { addGeneratedFiles(jobId: $id, files: ["index.md"]) '
              "{ jobId } }",
              _doc_job(RUNNING),
              lambda after, before: after is not None
              and after["files_generated"] == ["index.md"]),
    Operation("deleteDocumentationJob", "documentation job", "admin",
              "mutation($id: ID!) { deleteDocumentationJob(jobId: $id) { jobId } }",
              _doc_job(RUNNING), _deleted),
    Operation("setDocumentationJobAccess", "documentation job", "admin",
              "mutation($id: ID!) { setDocumentationJobAccess(jobId: $id, accessControl: "
              f"{NEW_ACCESS}) {{ jobId }} }}",
              _doc_job(RUNNING), _access_replaced),
]


def outcome(body: dict[str, Any]) -> str:
    if not body.get("errors"):
        return "ok"
    assert len(body["errors"]) == 1, body
    return body["errors"][0]["extensions"]["code"]


def without_id(body: dict[str, Any], object_id: str) -> dict[str, Any]:
    """The response with the id the caller sent blanked out, to compare two responses."""
    return {"data": body.get("data"),
            "errors": [{**error, "message": re.sub(re.escape(object_id), "<id>",
                                                    error["message"])}
                       for error in body.get("errors") or ()]}


# -- the matrix ----------------------------------------------------------------------


@pytest.fixture(scope="module")
async def shared(mongo_uri: str) -> AsyncIterator[tuple[Api, Store]]:
    """One API and database for the operation matrix: each of its tests seeds objects of
    its own and reads nothing else, so they need no fresh database apiece."""
    settings = make_settings(database=f"jobgraph_test_{uuid.uuid4().hex[:12]}")
    application = create_app(settings, mongodb_uri=mongo_uri)
    async with application.router.lifespan_context(application):
        store: Store = application.state.store
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(client, settings), store
        await store.client.drop_database(settings.database)


@pytest.mark.parametrize("visibility", [PRIVATE, PUBLIC], ids=["private", "public"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
async def test_operation_answers_each_caller_by_the_rules(
    shared: tuple[Api, Store], operation: Operation, visibility: AccessVisibility
) -> None:
    api, store = shared
    # given: one object per caller, so a success in one cell cannot touch another
    objects = {name: operation.seed(visibility) for name in CALLERS}
    await insert(store, list(objects.values()))
    ids = {name: object_id(obj) for name, obj in objects.items()}
    before = await snapshot(store, operation.kind, ids)
    missing_id = new_id()

    # when: every caller at once (each on its own object), then each with a missing id
    bodies = dict(zip(CALLERS, await asyncio.gather(*(
        api.execute(operation.document, {"id": ids[name]}, as_=caller)
        for name, caller in CALLERS.items())), strict=True))
    after = await snapshot(store, operation.kind, ids)
    absent = dict(zip(CALLERS, await asyncio.gather(*(
        api.execute(operation.document, {"id": missing_id}, as_=caller)
        for caller in CALLERS.values())), strict=True))

    # then: the answer, and its effect or the lack of one
    answers = {name: outcome(body) for name, body in bodies.items()}
    assert answers == {name: expected(name, operation.kind, operation.need, visibility,
                                      operation.holder_writes)
                       for name in CALLERS}
    mismatches = []
    for name, answer in answers.items():
        if answer == "ok" and operation.need != "read":
            if not operation.changed(after[name], before[name]):
                mismatches.append(f"{name}: answered ok but the change is not stored")
        elif after[name] != before[name]:
            mismatches.append(f"{name}: answered {answer} but the object changed")
        # an id that does not exist is NOT_FOUND for everyone, and a hidden object
        # reads exactly like it: same data, code, path and message but for the id
        if outcome(absent[name]) != "NOT_FOUND":
            mismatches.append(f"{name}: a missing id answered {absent[name]}")
        if answer == "NOT_FOUND" and (without_id(bodies[name], ids[name])
                                      != without_id(absent[name], missing_id)):
            mismatches.append(f"{name}: hidden {bodies[name]} differs from {absent[name]}")
    assert mismatches == []


async def snapshot(store: Store, kind: Kind, ids: dict[str, str]) -> dict[str, Any]:
    """The stored document of each caller's object (None once deleted)."""
    found = {doc["_id"]: doc async for doc in collection(store, kind).find(
        {"_id": {"$in": list(ids.values())}})}
    return {name: found.get(object_id) for name, object_id in ids.items()}


# -- lists and counts -----------------------------------------------------------------

LIST_QUERIES: dict[Kind, str] = {
    "job": "query($after: String) { items: jobs(first: 2, after: $after) { totalCount "
           "edges { node { id: jobId } } pageInfo { hasNextPage endCursor } } }",
    "batch": "query($after: String) { items: batches(first: 2, after: $after) { totalCount "
             "edges { node { id: batchId } } pageInfo { hasNextPage endCursor } } }",
    "documentation job": "query($after: String) { items: documentationJobs(first: 2, "
                         "after: $after) { totalCount edges { node { id: jobId } } "
                         "pageInfo { hasNextPage endCursor } } }",
}

LIST_ACCESS: dict[str, AccessControl] = {
    "public": AccessControl(PUBLIC, admin_access=["owner"]),
    "shared": seeded_access(PRIVATE),
    "reader-only": AccessControl(read_access=["reader"], admin_access=["owner"]),
    "writer-only": AccessControl(write_access=["writer"], admin_access=["owner"]),
    "owner-only": AccessControl(admin_access=["owner"]),
    "public-shared": seeded_access(PUBLIC),
}


def may_read(caller: Caller, kind: Kind, access: AccessControl,
             claimed_by: str | None) -> bool:
    """An oracle independent of the server: the read rule over one object."""
    if access.visibility is PUBLIC or "admin" in caller.roles:
        return True
    if caller.user_id in {*access.read_access, *access.write_access, *access.admin_access}:
        return True
    return kind == "job" and "worker" in caller.roles and claimed_by == caller.user_id


async def seed_list_objects(store: Store) -> dict[Kind, dict[str, tuple[AccessControl,
                                                                        str | None]]]:
    """Per kind, object id -> (access, claimed_by); jobs also include one held by worker-1."""
    seeded: dict[Kind, dict[str, tuple[AccessControl, str | None]]] = {
        "job": {}, "batch": {}, "documentation job": {}}
    objects: list[Any] = []
    for offset, access in enumerate(LIST_ACCESS.values()):
        job = make_job(PRIVATE, JobStatus.PENDING, access=access, offset=offset)
        batch = make_batch(PRIVATE, access=access, offset=offset)
        doc_job = make_documentation_job(PRIVATE, access=access, offset=offset)
        objects += [job, batch, doc_job]
        seeded["job"][job.job_id] = (access, None)
        seeded["batch"][batch.batch_id] = (access, None)
        seeded["documentation job"][doc_job.job_id] = (access, None)
    held = make_job(PRIVATE, JobStatus.PROCESSING, access=LIST_ACCESS["owner-only"],
                    offset=len(LIST_ACCESS))
    objects.append(held)
    seeded["job"][held.job_id] = (held.access_control, HOLDER)
    await insert(store, objects)
    return seeded


async def read_whole_list(api: Api, query: str, caller: Caller) -> tuple[list[str], set[int]]:
    """Every id of a list, two per page, and the totalCount each page reported."""
    seen: list[str] = []
    totals: set[int] = set()
    after = None
    while True:
        page = (await api.data(query, {"after": after}, as_=caller))["items"]
        totals.add(page["totalCount"])
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return seen, totals
        after = page["pageInfo"]["endCursor"]


@pytest.mark.parametrize("kind", KINDS)
async def test_lists_count_and_page_only_what_the_caller_may_read(
    api: Api, store: Store, kind: Kind
) -> None:
    # given
    seeded = (await seed_list_objects(store))[kind]
    want = {name: {object_id for object_id, (access, holder) in seeded.items()
                   if may_read(caller, kind, access, holder)}
            for name, caller in CALLERS.items()}

    # when: every page of the list, for every caller
    lists = await asyncio.gather(*(read_whole_list(api, LIST_QUERIES[kind], caller)
                                   for caller in CALLERS.values()))

    # then: exactly the readable objects, each once, and a totalCount to match
    got = {name: (sorted(seen), totals) for name, (seen, totals) in zip(CALLERS, lists,
                                                                         strict=True)}
    assert got == {name: (sorted(ids), {len(ids)}) for name, ids in want.items()}


async def test_list_total_count_differs_per_caller(api: Api, store: Store) -> None:
    # given
    await seed_list_objects(store)
    query = "{ jobs { totalCount } batches { totalCount } documentationJobs { totalCount } }"

    # when
    counts = {}
    for name, caller in CALLERS.items():
        data = await api.data(query, as_=caller)
        counts[name] = tuple(data[key]["totalCount"]
                             for key in ("jobs", "batches", "documentationJobs"))

    # then: (jobs, batches, documentation jobs); the held job adds one for worker-1
    assert counts == {
        "anonymous": (2, 2, 2),
        "owner": (7, 6, 6),
        "reader": (4, 4, 4),
        "writer": (4, 4, 4),
        "listed-admin": (3, 3, 3),
        "admin-role": (7, 6, 6),
        "worker-role": (3, 2, 2),
        "idle-worker": (2, 2, 2),
        "unrelated": (2, 2, 2),
    }


# -- nested fields ----------------------------------------------------------------------

BATCH_JOBS = """query($id: ID!) { batch(batchId: $id) {
  jobs(first: 100) { totalCount edges { node { jobId } } } counts { total } } }"""
JOB_BATCH = "query($id: ID!) { job(jobId: $id) { jobId batch { batchId } } }"
JOBS_BATCH = "{ jobs { edges { node { jobId batch { batchId } } } } }"


async def test_batch_jobs_shows_only_the_jobs_the_caller_may_read(
    api: Api, store: Store
) -> None:
    # given: a public batch whose jobs carry their own access control
    batch = make_batch(PUBLIC, access=AccessControl(PUBLIC, admin_access=["owner"]))
    jobs = [
        make_job(PRIVATE, JobStatus.PENDING, access=access, batch_id=batch.batch_id,
                 offset=offset)
        for offset, access in enumerate(LIST_ACCESS.values())
    ]
    jobs.append(make_job(PRIVATE, JobStatus.PROCESSING, access=LIST_ACCESS["owner-only"],
                         batch_id=batch.batch_id, offset=len(jobs)))
    await insert(store, [batch, *jobs])

    # when
    answers = await asyncio.gather(*(api.data(BATCH_JOBS, {"id": batch.batch_id}, as_=caller)
                                     for caller in CALLERS.values()))

    # then: the connection holds only readable jobs; the counts summarize all of them
    got = {name: (sorted(edge["node"]["jobId"] for edge in data["batch"]["jobs"]["edges"]),
                  data["batch"]["jobs"]["totalCount"], data["batch"]["counts"]["total"])
           for name, data in zip(CALLERS, answers, strict=True)}
    want = {}
    for name, caller in CALLERS.items():
        readable = sorted(job.job_id for job in jobs
                          if may_read(caller, "job", job.access_control, job.claimed_by))
        want[name] = (readable, len(readable), len(jobs))
    assert got == want


async def test_job_batch_is_null_when_the_caller_may_not_read_the_batch(
    api: Api, store: Store
) -> None:
    # given: a public job in a private batch
    batch = make_batch(PRIVATE)
    job = make_job(PUBLIC, JobStatus.PENDING, batch_id=batch.batch_id,
                   access=AccessControl(PUBLIC, admin_access=["owner"]))
    await insert(store, [batch, job])

    # when: by id, and through the list (the per-request loader)
    by_id = await asyncio.gather(*(api.data(JOB_BATCH, {"id": job.job_id}, as_=caller)
                                   for caller in CALLERS.values()))
    listed = await asyncio.gather(*(api.data(JOBS_BATCH, as_=caller)
                                    for caller in CALLERS.values()))

    # then
    got = {name: (one["job"], [edge["node"] for edge in many["jobs"]["edges"]])
           for name, one, many in zip(CALLERS, by_id, listed, strict=True)}
    want = {}
    for name, caller in CALLERS.items():
        visible = may_read(caller, "batch", batch.access_control, None)
        node = {"jobId": job.job_id, "batch": {"batchId": batch.batch_id} if visible else None}
        want[name] = (node, [node])
    assert got == want


# -- creation ---------------------------------------------------------------------------

CREATE: dict[Kind, str] = {
    "job": """mutation($access: AccessControlInput) {
      created: createJob(input: {jobType: "pdf", accessControl: $access}) {
        id: jobId owner accessControl { visibility readAccess writeAccess adminAccess } } }""",
    "batch": """mutation($access: AccessControlInput) {
      created: createBatch(input: {batchName: "b", jobs: [{jobType: "pdf"}],
                                   accessControl: $access}) {
        id: batchId owner accessControl { visibility readAccess writeAccess adminAccess } } }""",
    "documentation job": """mutation($access: AccessControlInput) {
      created: createDocumentationJob(input: {repositoryPath: "/src", repositoryName: "r",
                                             outputDirectory: "/out", accessControl: $access}) {
        id: jobId owner accessControl { visibility readAccess writeAccess adminAccess } } }""",
}
READ_BY_ID: dict[Kind, str] = {
    "job": "query($id: ID!) { one: job(jobId: $id) { id: jobId } }",
    "batch": "query($id: ID!) { one: batch(batchId: $id) { id: batchId } }",
    "documentation job": "query($id: ID!) { one: documentationJob(jobId: $id) { id: jobId } }",
}


@pytest.mark.parametrize("kind", KINDS)
async def test_create_anonymous_is_forbidden_and_stores_nothing(
    api: Api, store: Store, kind: Kind
) -> None:
    # when
    error = await api.error(CREATE[kind], as_=CALLERS["anonymous"])

    # then
    assert error["extensions"]["code"] == "FORBIDDEN"
    for name in ("job", "batch", "documentation job"):
        assert await collection(store, name).count_documents({}) == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_create_makes_the_creator_an_admin(api: Api, store: Store, kind: Kind) -> None:
    # given
    access = {"visibility": "PRIVATE", "readAccess": ["reader"]}

    # when
    created = (await api.data(CREATE[kind], {"access": access}, as_=CALLERS["owner"]))["created"]

    # then
    assert created["owner"] == "owner"
    assert created["accessControl"] == {"visibility": "PRIVATE", "readAccess": ["reader"],
                                        "writeAccess": [], "adminAccess": ["owner"]}
    codes = {name: outcome(await api.execute(READ_BY_ID[kind], {"id": created["id"]},
                                             as_=CALLERS[name]))
             for name in ("owner", "reader", "unrelated", "anonymous")}
    assert codes == {"owner": "ok", "reader": "ok", "unrelated": "NOT_FOUND",
                     "anonymous": "NOT_FOUND"}


async def test_create_batch_jobs_take_the_batch_access_unless_given_their_own(
    api: Api, store: Store
) -> None:
    # given
    document = """mutation {
      createBatch(input: {batchName: "b", accessControl: {readAccess: ["reader"]}, jobs: [
        {jobType: "inherits"},
        {jobType: "own", accessControl: {visibility: PUBLIC, writeAccess: ["writer"]}}]}) {
        batchId } }"""

    # when
    batch_id = (await api.data(document, as_=CALLERS["owner"]))["createBatch"]["batchId"]

    # then
    query = """query($id: ID!) { jobs(filter: {batchId: $id}) { edges { node {
      jobType accessControl { visibility readAccess writeAccess adminAccess } } } } }"""
    jobs = {edge["node"]["jobType"]: edge["node"]["accessControl"] for edge in (
        await api.data(query, {"id": batch_id}, as_=CALLERS["owner"]))["jobs"]["edges"]}
    assert jobs == {
        "inherits": {"visibility": "PRIVATE", "readAccess": ["reader"], "writeAccess": [],
                     "adminAccess": ["owner"]},
        "own": {"visibility": "PUBLIC", "readAccess": [], "writeAccess": ["writer"],
                "adminAccess": ["owner"]},
    }
    seen = {name: sorted(edge["node"]["jobType"] for edge in (await api.data(
        query, {"id": batch_id}, as_=CALLERS[name]))["jobs"]["edges"])
        for name in ("reader", "unrelated")}
    assert seen == {"reader": ["inherits", "own"], "unrelated": ["own"]}


# -- claiming ---------------------------------------------------------------------------

CLAIM = "mutation { claimJob { jobId claimedBy status } }"


async def test_claim_job_needs_the_worker_or_admin_role(api: Api, store: Store) -> None:
    # given: one private pending job, nobody listed on it
    job = make_job(PRIVATE, JobStatus.PENDING, access=AccessControl(admin_access=["owner"]))
    await insert(store, [job])
    before = await store.jobs.collection.find_one({"_id": job.job_id})

    # when
    codes = {name: outcome(await api.execute(CLAIM, as_=caller))
             for name, caller in CALLERS.items()
             if name not in ("worker-role", "idle-worker", "admin-role")}

    # then: refused, and the job is still waiting
    assert set(codes.values()) == {"FORBIDDEN"}, codes
    assert await store.jobs.collection.find_one({"_id": job.job_id}) == before


@pytest.mark.parametrize("caller", ["worker-role", "idle-worker", "admin-role"])
async def test_claim_job_by_worker_or_admin_role_takes_the_job(
    api: Api, store: Store, caller: str
) -> None:
    # given
    job = make_job(PRIVATE, JobStatus.PENDING, access=AccessControl(admin_access=["owner"]))
    await insert(store, [job])
    who = CALLERS[caller]

    # when
    claimed = (await api.data(CLAIM, as_=who))["claimJob"]

    # then
    assert claimed == {"jobId": job.job_id, "claimedBy": who.user_id, "status": "PROCESSING"}


async def test_claimed_job_is_readable_by_the_worker_named_in_claimed_by(
    api: Api, store: Store
) -> None:
    # given: a job its worker may not read by the lists
    job = make_job(PRIVATE, JobStatus.PENDING, access=AccessControl(admin_access=["owner"]))
    await insert(store, [job])
    holder, other = CALLERS["worker-role"], CALLERS["idle-worker"]
    read = "query($id: ID!) { job(jobId: $id) { jobId } jobs { totalCount } }"
    assert outcome(await api.execute(read, {"id": job.job_id}, as_=holder)) == "NOT_FOUND"

    # when: it claims and fails the job
    await api.data(CLAIM, as_=holder)
    held = await api.data(read, {"id": job.job_id}, as_=holder)
    fail = ('mutation($id: ID!) { failJob(jobId: $id, error: {code: "E", message: "m"}) '
            "{ status } }")
    await api.data(fail, {"id": job.job_id}, as_=holder)
    after_fail = await api.execute(read, {"id": job.job_id}, as_=holder)
    hidden_from_other = await api.execute(read, {"id": job.job_id}, as_=other)
    # and its owner puts it back in the queue, which releases the claim
    await api.data("mutation($id: ID!) { retryJob(jobId: $id) { status } }",
                   {"id": job.job_id}, as_=CALLERS["owner"])
    released = await api.execute(read, {"id": job.job_id}, as_=holder)

    # then
    assert held == {"job": {"jobId": job.job_id}, "jobs": {"totalCount": 1}}
    assert outcome(after_fail) == "ok"
    assert outcome(hidden_from_other) == "NOT_FOUND"
    assert outcome(released) == "NOT_FOUND"


# -- changing access control -----------------------------------------------------------

SET_ACCESS: dict[Kind, str] = {
    "job": "mutation($id: ID!, $access: AccessControlInput!) { "
           "set: setJobAccess(jobId: $id, accessControl: $access) { id: jobId } }",
    "batch": "mutation($id: ID!, $access: AccessControlInput!) { "
             "set: setBatchAccess(batchId: $id, accessControl: $access) { id: batchId } }",
    "documentation job": "mutation($id: ID!, $access: AccessControlInput!) { "
                         "set: setDocumentationJobAccess(jobId: $id, accessControl: $access) "
                         "{ id: jobId } }",
}
SEED: dict[Kind, Callable[[AccessVisibility], Any]] = {
    "job": _job(JobStatus.PENDING), "batch": make_batch,
    "documentation job": _doc_job(PENDING_DOC),
}


@pytest.mark.parametrize("kind", KINDS)
async def test_set_access_takes_effect_for_the_next_request(
    api: Api, store: Store, kind: Kind
) -> None:
    # given
    obj = SEED[kind](PRIVATE)
    await insert(store, [obj])
    target = object_id(obj)
    access = {"visibility": "PRIVATE", "readAccess": ["newcomer"], "adminAccess": ["owner"]}

    # when: the listed admin hands the object to the owner and a newcomer
    await api.data(SET_ACCESS[kind], {"id": target, "access": access},
                   as_=CALLERS["listed-admin"])

    # then
    codes = {name: outcome(await api.execute(READ_BY_ID[kind], {"id": target},
                                             as_=Caller(user)))
             for name, user in (("newcomer", "newcomer"), ("reader", "reader"),
                                ("listed-admin", "listed-admin"), ("owner", "owner"))}
    assert codes == {"newcomer": "ok", "reader": "NOT_FOUND", "listed-admin": "NOT_FOUND",
                     "owner": "ok"}


INVALID_ACCESS = [
    ({"readAccess": [""]}, "accessControl.readAccess"),
    ({"writeAccess": ["   "]}, "accessControl.writeAccess"),
    ({"adminAccess": ["*"]}, "accessControl.adminAccess"),
    ({"readAccess": [f"user-{n}" for n in range(101)]}, "accessControl.readAccess"),
    ({"writeAccess": ["u" * 201]}, "accessControl.writeAccess"),
]


@pytest.mark.parametrize("kind", KINDS)
async def test_set_access_invalid_lists_are_validation_errors_and_change_nothing(
    api: Api, store: Store, kind: Kind
) -> None:
    # given
    obj = SEED[kind](PRIVATE)
    await insert(store, [obj])
    target = object_id(obj)
    before = await collection(store, kind).find_one({"_id": target})

    # when: each invalid setting, on an existing object and on a new one
    refusals = []
    for access, _ in INVALID_ACCESS:
        refusals.append(await api.error(SET_ACCESS[kind], {"id": target, "access": access},
                                        as_=CALLERS["owner"]))
        refusals.append(await api.error(CREATE[kind], {"access": access},
                                        as_=CALLERS["owner"]))

    # then
    assert [refused["extensions"] for refused in refusals] == [
        {"code": "VALIDATION_ERROR", "field": field_name}
        for _, field_name in INVALID_ACCESS for _ in range(2)]
    assert await collection(store, kind).find_one({"_id": target}) == before
    stored = {name: await collection(store, name).count_documents({}) for name in KINDS}
    assert stored == {name: int(name == kind) for name in KINDS}
