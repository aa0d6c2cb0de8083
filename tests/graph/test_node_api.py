"""Relay's global object identification: `id` on every entity, `node` and `nodes`."""

from __future__ import annotations

import base64

import pytest

from tests.helpers.graphql import ALICE, BOB, Api

from .documents import CREATE_BATCH, CREATE_DOCUMENTATION_JOB, CREATE_JOB

NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on SecretaryJob { jobId } ... on BatchJob { batchId } ... on DocumentationJob { jobId } } }"""
NODES = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"""
DOC_INPUT = {"repositoryPath": "/src/app", "repositoryName": "app", "outputDirectory": "/out"}


async def entities(api: Api) -> dict[str, tuple[str, str]]:
    """One of each entity, created by alice: type name -> (global id, own id)."""
    job = (await api.data(CREATE_JOB, {"input": {"jobType": "pdf"}}))["createJob"]
    batch = (await api.data(CREATE_BATCH, {"input": {"batchName": "b", "jobs": [
        {"jobType": "pdf"}]}}))["createBatch"]
    doc = (await api.data(CREATE_DOCUMENTATION_JOB, {"input": DOC_INPUT}))[
        "createDocumentationJob"]
    found = {}
    for type_name, query, own in (
            ("SecretaryJob", "query($i: ID!) { job(jobId: $i) { id } }", job["jobId"]),
            ("BatchJob", "query($i: ID!) { batch(batchId: $i) { id } }", batch["batchId"]),
            ("DocumentationJob", "query($i: ID!) { documentationJob(jobId: $i) { id } }",
             doc["jobId"])):
        data = await api.data(query, {"i": own})
        found[type_name] = (next(iter(data.values()))["id"], own)
    return found


async def test_every_entity_has_a_global_id_that_node_resolves(api: Api) -> None:
    # given
    made = await entities(api)

    for type_name, (global_id, own_id) in made.items():
        # when
        node = (await api.data(NODE, {"id": global_id}))["node"]

        # then: the same object, its type named, its own id kept beside the global one
        assert node["__typename"] == type_name
        assert node["id"] == global_id
        assert own_id in node.values()
        assert base64.b64decode(global_id).decode() == f"{type_name}:{own_id}"


async def test_nodes_answer_in_the_order_asked_with_null_for_the_unreadable(api: Api) -> None:
    made = await entities(api)
    job_id, _ = made["SecretaryJob"]
    missing = base64.b64encode(b"SecretaryJob:no-such-job").decode()
    ids = [made["BatchJob"][0], missing, job_id, made["DocumentationJob"][0]]

    mine = (await api.data(NODES, {"ids": ids}))["nodes"]
    theirs = await api.execute(NODES, {"ids": ids}, as_=BOB)

    assert [node and node["__typename"] for node in mine] == [
        "BatchJob", None, "SecretaryJob", "DocumentationJob"]
    # hidden looks exactly like missing: null, and no error that tells them apart
    assert theirs == {"data": {"nodes": [None, None, None, None]}}


async def test_node_of_a_hidden_object_is_null_like_a_missing_one(api: Api) -> None:
    made = await entities(api)
    missing = base64.b64encode(b"SecretaryJob:no-such-job").decode()

    hidden = await api.execute(NODE, {"id": made["SecretaryJob"][0]}, as_=BOB)
    absent = await api.execute(NODE, {"id": missing}, as_=BOB)

    assert hidden == absent == {"data": {"node": None}}


@pytest.mark.parametrize("bad", ["not base64 at all!", base64.b64encode(b"no colon").decode(),
                                 base64.b64encode(b"Viewer:alice").decode(), ""])
async def test_a_malformed_or_foreign_global_id_is_a_validation_error(api: Api, bad: str
                                                                       ) -> None:
    error = await api.error(NODE, {"id": bad})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "id"}


async def test_nodes_refuses_more_ids_than_a_page(api: Api) -> None:
    ids = [base64.b64encode(f"SecretaryJob:{n}".encode()).decode()
           for n in range(api.settings.max_page_size + 1)]

    error = await api.error(NODES, {"ids": ids})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "ids"}


async def test_global_ids_are_stable_and_differ_between_types(api: Api) -> None:
    made = await entities(api)

    again = await entities(api)

    assert len({global_id for global_id, _ in made.values()}) == 3
    assert made["SecretaryJob"][0] != again["SecretaryJob"][0]
    job_id = made["SecretaryJob"][1]
    twice = [(await api.data("query($i: ID!) { job(jobId: $i) { id } }", {"i": job_id}))[
        "job"]["id"] for _ in range(2)]
    assert twice == [made["SecretaryJob"][0]] * 2


async def test_a_node_is_the_same_object_on_alices_page(api: Api) -> None:
    made = await entities(api)

    page = await api.data("{ jobs { edges { node { id jobId } } } }", as_=ALICE)

    assert {"id": made["SecretaryJob"][0], "jobId": made["SecretaryJob"][1]} in [
        edge["node"] for edge in page["jobs"]["edges"]]
