"""Access control through the public API: every query and mutation, for every kind of
caller, against PRIVATE and PUBLIC jobs, batches and documentation jobs.

Each matrix test seeds one object per caller directly through ``store`` (setup, not
the thing under test), then calls the API once per caller and checks the answer and,
where the call was refused, that the stored document did not change at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import pytest

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
from tests.helpers.graphql import Api, Caller

Kind = Literal["job", "batch", "documentation job"]
Need = Literal["read", "write", "admin"]

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
"""The worker holding a job's claim may read and drive that job, but not administer it."""


def seeded_access(visibility: AccessVisibility) -> AccessControl:
    # the owner created it (so is an admin); the others are listed by hand
    return AccessControl(visibility, read_access=["reader"], write_access=["writer"],
                         admin_access=["owner", "listed-admin"])


def expected(caller: str, kind: Kind, need: Need, visibility: AccessVisibility) -> str:
    """'ok', 'FORBIDDEN' or 'NOT_FOUND': the rules of the issue, written out once."""
    grants = GRANTS[caller] | (HOLDER_GRANTS if kind == "job" and caller == "worker-role"
                               else set())
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
              _job(JobStatus.FAILED), _status("PENDING")),
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


@pytest.mark.parametrize("visibility", [PRIVATE, PUBLIC], ids=["private", "public"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
async def test_operation_answers_each_caller_by_the_rules(
    api: Api, store: Store, operation: Operation, visibility: AccessVisibility
) -> None:
    # given: one object per caller, so a success in one cell cannot touch another
    objects = {name: operation.seed(visibility) for name in CALLERS}
    await insert(store, list(objects.values()))
    stored = collection(store, operation.kind)
    missing_id = new_id()

    # when
    answers, mismatches = {}, []
    for name, caller in CALLERS.items():
        target = object_id(objects[name])
        before = await stored.find_one({"_id": target})
        body = await api.execute(operation.document, {"id": target}, as_=caller)
        after = await stored.find_one({"_id": target})
        answers[name] = outcome(body)

        # then: the answer, and its effect (or the lack of one)
        want = expected(name, operation.kind, operation.need, visibility)
        if answers[name] != want:
            continue
        if want == "ok":
            if operation.need != "read" and not operation.changed(after, before):
                mismatches.append(f"{name}: answered ok but the change is not stored")
            if operation.need == "read" and after != before:
                mismatches.append(f"{name}: a query changed the object")
            continue
        if after != before:
            mismatches.append(f"{name}: refused with {want} but the object changed")
        if want == "NOT_FOUND":
            # a hidden object reads exactly like one that does not exist
            absent = await api.execute(operation.document, {"id": missing_id}, as_=caller)
            if without_id(body, target) != without_id(absent, missing_id):
                mismatches.append(f"{name}: hidden {body} differs from missing {absent}")

    assert answers == {name: expected(name, operation.kind, operation.need, visibility)
                       for name in CALLERS}
    assert mismatches == []


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
async def test_operation_on_missing_id_is_not_found_for_everyone(
    api: Api, store: Store, operation: Operation
) -> None:
    # given
    missing_id = new_id()

    # when
    codes = {name: outcome(await api.execute(operation.document, {"id": missing_id},
                                             as_=caller))
             for name, caller in CALLERS.items()}

    # then
    assert set(codes.values()) == {"NOT_FOUND"}, codes


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


@pytest.mark.parametrize("caller", list(CALLERS), ids=list(CALLERS))
async def test_lists_count_and_page_only_what_the_caller_may_read(
    api: Api, store: Store, caller: str
) -> None:
    # given
    seeded = await seed_list_objects(store)
    who = CALLERS[caller]

    for kind, query in LIST_QUERIES.items():
        want = {object_id for object_id, (access, holder) in seeded[kind].items()
                if may_read(who, kind, access, holder)}

        # when: every page, two at a time
        seen: list[str] = []
        totals: set[int] = set()
        after = None
        while True:
            page = (await api.data(query, {"after": after}, as_=who))["items"]
            totals.add(page["totalCount"])
            seen += [edge["node"]["id"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]

        # then
        assert sorted(seen) == sorted(want), kind
        assert totals == {len(want)}, kind


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
