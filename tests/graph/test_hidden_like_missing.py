"""An object the caller may not read costs the same database work as one that does not
exist: the same commands, answered alike, so neither the answer nor its timing tells
them apart. Counted with pymongo's command monitoring rather than timed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from repository.database import Store
from repository.models import new_id
from tests.helpers.commands import CommandCounter
from tests.helpers.graphql import Api, Caller, make_settings, open_api

CAROL = Caller("carol")
LOG_LINES = [{"level": "INFO", "message": "x" * 4000}] * 100
ACCESS = "{visibility: PUBLIC}"

JOB_MUTATIONS = {
    "appendJobLogs": 'appendJobLogs(jobId: $id, entries: [{level: INFO, message: "m"}])',
    "updateJobProgress": 'updateJobProgress(jobId: $id, progress: {step: "s", percent: 1})',
    "heartbeatJob": "heartbeatJob(jobId: $id)",
    "completeJob": "completeJob(jobId: $id, results: {})",
    "failJob": 'failJob(jobId: $id, error: {code: "E", message: "m"})',
    "retryJob": "retryJob(jobId: $id)",
    "deleteJob": "deleteJob(jobId: $id)",
    "setJobAccess": f"setJobAccess(jobId: $id, accessControl: {ACCESS})",
}
BATCH_MUTATIONS = {
    "deactivateBatch": "deactivateBatch(batchId: $id)",
    "setBatchAccess": f"setBatchAccess(batchId: $id, accessControl: {ACCESS})",
}
DOCUMENTATION_MUTATIONS = {
    "startDocumentationJob": "startDocumentationJob(jobId: $id)",
    "addGeneratedFiles": 'addGeneratedFiles(jobId: $id, files: ["a.md"])',
    "deleteDocumentationJob": "deleteDocumentationJob(jobId: $id)",
    "setDocumentationJobAccess": f"setDocumentationJobAccess(jobId: $id, accessControl: {ACCESS})",
}
ID_FIELDS = {"job": "jobId", "batch": "batchId", "documentation job": "jobId"}


@pytest.fixture
async def counted(mongo_uri: str, database_name: str, store: Store
                  ) -> AsyncIterator[tuple[Api, CommandCounter]]:
    counter = CommandCounter(database_name)
    # no background loop may add its own commands to the count
    settings = make_settings(database=database_name, reaper_interval_seconds=3600,
                             dispatcher=False)
    async with open_api(settings, mongo_uri,
                        client_options={"event_listeners": [counter]}) as api:
        yield api, counter


async def hidden_object(api: Api, kind: str) -> str:
    """Alice's private object, its job with a long log (what a careless refusal reads)."""
    if kind == "job":
        data = await api.data("""mutation { createJob(input: {jobType: "pdf"}) { jobId } }""")
        job_id = data["createJob"]["jobId"]
        for _ in range(3):
            await api.data("""mutation($id: ID!, $e: [LogEntryInput!]!) {
              appendJobLogs(jobId: $id, entries: $e) { logSeq } }""",
                           {"id": job_id, "e": LOG_LINES})
        return job_id
    if kind == "batch":
        data = await api.data("""mutation { createBatch(input: {batchName: "b",
          jobs: [{jobType: "pdf"}]}) { batchId } }""")
        return data["createBatch"]["batchId"]
    data = await api.data("""mutation { createDocumentationJob(input: {repositoryPath: "/r",
      repositoryName: "r", outputDirectory: "/o"}) { jobId } }""")
    return data["createDocumentationJob"]["jobId"]


async def work(api: Api, counter: CommandCounter, field: str, object_id: str
               ) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """The commands one request sent, each with a summary of its reply, and the answer."""
    counter.clear()
    body = await api.execute(f"mutation($id: ID!) {{ {field} {{ __typename }} }}",
                             {"id": object_id}, as_=CAROL)
    return list(counter.log), body


@pytest.mark.parametrize(("kind", "name", "field"), [
    *(("job", name, field) for name, field in JOB_MUTATIONS.items()),
    *(("batch", name, field) for name, field in BATCH_MUTATIONS.items()),
    *(("documentation job", name, field) for name, field in DOCUMENTATION_MUTATIONS.items()),
])
async def test_hidden_object_costs_the_same_commands_as_a_missing_one(
    counted: tuple[Api, CommandCounter], kind: str, name: str, field: str
) -> None:
    api, counter = counted
    hidden = await hidden_object(api, kind)
    missing = new_id()

    hidden_work, hidden_body = await work(api, counter, field, hidden)
    missing_work, missing_body = await work(api, counter, field, missing)

    assert hidden_body["errors"][0]["extensions"]["code"] == "NOT_FOUND", hidden_body
    assert (hidden_body["errors"][0]["message"].replace(hidden, "<id>")
            == missing_body["errors"][0]["message"].replace(missing, "<id>"))
    assert hidden_work == missing_work
    assert len(hidden_work) <= 2, hidden_work
