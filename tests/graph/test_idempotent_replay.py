"""Replaying a create with one's own idempotency key goes through the read check: once
another admin removed the creator from the object, the replay answers NOT_FOUND, as the
object's own query does, and shows none of its current state."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.graphql import ALICE, BOB, Api

CREATES = {
    "job": ("createJob", "jobId", "setJobAccess", "jobId",
            {"jobType": "pdf", "parameters": {"secret": 1}},
            "query($id: ID!) { job(jobId: $id) { jobId } }"),
    "documentation job": (
        "createDocumentationJob", "jobId", "setDocumentationJobAccess", "jobId",
        {"repositoryPath": "/r", "repositoryName": "r", "outputDirectory": "/o"},
        "query($id: ID!) { documentationJob(jobId: $id) { jobId } }"),
    "batch": ("createBatch", "batchId", "setBatchAccess", "batchId",
              {"batchName": "b", "jobs": [{"jobType": "pdf"}]},
              "query($id: ID!) { batch(batchId: $id) { batchId } }"),
}
INPUT_TYPES = {"createJob": "CreateJobInput", "createDocumentationJob":
               "CreateDocumentationJobInput", "createBatch": "CreateBatchInput"}


def create_document(mutation: str, id_field: str) -> str:
    return (f"mutation($input: {INPUT_TYPES[mutation]}!) {{ {mutation}(input: $input) "
            f"{{ {id_field} accessControl {{ adminAccess }} }} }}")


@pytest.mark.parametrize("kind", sorted(CREATES))
async def test_replaying_a_create_after_losing_access_is_not_found(api: Api, kind: str
                                                                   ) -> None:
    mutation, id_field, set_access, arg, fields, query = CREATES[kind]
    document = create_document(mutation, id_field)
    given: dict[str, Any] = {**fields, "idempotencyKey": "k-1",
                             "accessControl": {"adminAccess": ["bob"]}}
    # given alice created the object with a key, and bob (an admin of it) removed her
    created = (await api.data(document, {"input": given}))[mutation]
    object_id = created[id_field]
    await api.data(f"""mutation($id: ID!) {{ {set_access}({arg}: $id,
        accessControl: {{adminAccess: ["bob"]}}) {{ {id_field} }} }}""",
                   {"id": object_id}, as_=BOB)
    query_answer = await api.execute(query, {"id": object_id}, as_=ALICE)
    assert query_answer["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    # when alice replays the create with her key
    replay = await api.execute(document, {"input": given}, as_=ALICE)

    # then it is NOT_FOUND, with the message of her query, and nothing of the object
    assert replay["data"] is None
    assert [error["extensions"]["code"] for error in replay["errors"]] == ["NOT_FOUND"]
    assert replay["errors"][0]["message"] == query_answer["errors"][0]["message"]
    # and bob's replay of his own (unused) key still creates his object
    bobs = (await api.data(document, {"input": given}, as_=BOB))[mutation]
    assert bobs[id_field] != object_id
