"""Hostile input: every mutation's arguments, generated, and MongoDB operator injection.

The property, for every mutation in ``schema.graphql`` and any caller: the server
answers (200, or 400/413 for a body that is not strict JSON or too large), every
error carries a documented code and none is a masked INTERNAL_SERVER_ERROR, values
of the wrong type are refused by GraphQL itself, and a refused request leaves every
collection of the database byte for byte as it was.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from bson import CodecOptions
from bson.raw_bson import RawBSONDocument
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repository.database import Store
from repository.errors import ErrorCode
from tests.graph.strategies import (
    Drawn,
    Ids,
    arguments,
    mutation_names,
    operation,
    strict_json,
)
from tests.helpers.graphql import (
    ADMIN,
    ALICE,
    ANON,
    BOB,
    WORKER,
    Api,
    Caller,
    make_settings,
    open_api,
)

HTTP_CODES = {400: "BAD_REQUEST", 413: "PAYLOAD_TOO_LARGE"}
RAW = CodecOptions(document_class=RawBSONDocument)
EXAMPLES = 30

hostile = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# -- the database, byte for byte ---------------------------------------------------------------


@dataclass
class Snapshot:
    digests: dict[str, tuple[int, str]]
    """Per collection: document count and a hash of the documents in ``_id`` order."""
    documents: dict[str, list[RawBSONDocument]] = field(repr=False)


DERIVED = {"history_feed", "job_history", "job_history_deletes"}
"""Written by the history writer from the change stream, on its own time (its lease and
position move while it runs): a refused mutation that wrote no job leaves no entry, and
the jobs themselves are compared."""


async def snapshot(store: Store) -> Snapshot:
    """Every collection in one aggregation (``$unionWith``), each document tagged with its
    collection: a snapshot per example, and a read per collection cost the suite ~13 ms of
    CPU an example more (17 against 4 ms, the database's part most of it)."""
    names = sorted(set(await store.db.list_collection_names()) - DERIVED)
    documents: dict[str, list[RawBSONDocument]] = {name: [] for name in names}
    if names:
        def tagged(name: str) -> list[dict[str, Any]]:
            return [{"$sort": {"_id": 1}}, {"$replaceWith": {"c": name, "d": "$$ROOT"}}]

        first, *rest = names
        pipeline = [*tagged(first),
                    *({"$unionWith": {"coll": name, "pipeline": tagged(name)}} for name in rest)]
        cursor = await store.db.get_collection(first, codec_options=RAW).aggregate(pipeline)
        for row in await cursor.to_list():
            documents[row["c"]].append(row["d"])
    digests = {}
    for name, docs in documents.items():
        digest = hashlib.sha256()
        for doc in docs:
            digest.update(doc.raw)
        digests[name] = (len(docs), digest.hexdigest())
    return Snapshot(digests, documents)


async def restore(store: Store, baseline: Snapshot) -> None:
    for name in (set(await store.db.list_collection_names()) - DERIVED) | set(baseline.documents):
        collection = store.db.get_collection(name, codec_options=RAW)
        await collection.delete_many({})
        if baseline.documents.get(name):
            await collection.insert_many(baseline.documents[name])


# -- a world to be hostile to ----------------------------------------------------------------

CREATE_JOB = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CLAIM = """mutation($types: [String!]) { claimJob(jobTypes: $types) { jobId } }"""
COMPLETE = """mutation($id: ID!) { completeJob(jobId: $id, results: {pages: 3}) { jobId } }"""
FAIL = """mutation($id: ID!) {
  failJob(jobId: $id, error: {code: "E", message: "broken"}) { jobId } }"""
CREATE_BATCH = """mutation($input: CreateBatchInput!) {
  createBatch(input: $input) { batchId jobs { edges { node { jobId } } } } }"""
CREATE_DOC = """mutation($input: CreateDocumentationJobInput!) {
  createDocumentationJob(input: $input) { jobId } }"""
DOC_STEP = {
    step: f"mutation($id: ID!) {{ {step}DocumentationJob(jobId: $id) {{ jobId }} }}"
    for step in ("start", "complete")
}
FAIL_DOC = """mutation($id: ID!) {
  failDocumentationJob(jobId: $id, errorMessage: "no") { jobId } }"""


async def create_job(api: Api, job_type: str, *, as_: Caller = ALICE, **extra: Any) -> str:
    data = await api.data(CREATE_JOB, {"input": {"jobType": job_type, **extra}}, as_=as_)
    return data["createJob"]["jobId"]


async def claim(api: Api, job_type: str) -> str:
    return (await api.data(CLAIM, {"types": [job_type]}, as_=WORKER))["claimJob"]["jobId"]


async def create_doc(api: Api, name: str, *, as_: Caller = ALICE) -> str:
    data = await api.data(CREATE_DOC, {"input": {
        "repositoryPath": f"/src/{name}", "repositoryName": name, "outputDirectory": "/docs"}},
        as_=as_)
    return data["createDocumentationJob"]["jobId"]


async def build_world(api: Api) -> Ids:
    """Jobs in every status (one held by WORKER, one PUBLIC, one only BOB may see),
    a batch, and documentation jobs in every status, mostly ALICE's."""
    ids = Ids()
    ids.jobs.append(await create_job(api, "pdf", accessControl={"readAccess": ["bob"]}))
    ids.jobs.append(await create_job(api, "pdf", accessControl={"visibility": "PUBLIC"}))
    ids.jobs.append(await create_job(api, "secret", as_=BOB))
    for job_type in ("claimed", "done", "broken"):
        await create_job(api, job_type, accessControl={"writeAccess": ["bob"]})
        ids.jobs.append(await claim(api, job_type))
    await api.data(COMPLETE, {"id": ids.jobs[-2]}, as_=WORKER)
    await api.data(FAIL, {"id": ids.jobs[-1]}, as_=WORKER)
    batch = (await api.data(CREATE_BATCH, {"input": {
        "batchName": "nightly", "jobs": [{"jobType": "pdf"}, {"jobType": "ocr"}]}}))
    ids.batches.append(batch["createBatch"]["batchId"])
    ids.jobs.extend(edge["node"]["jobId"] for edge in batch["createBatch"]["jobs"]["edges"])
    bobs = await api.data(CREATE_BATCH, {"input": {"batchName": "bob's",
                                                    "jobs": [{"jobType": "pdf"}]}}, as_=BOB)
    ids.batches.append(bobs["createBatch"]["batchId"])
    for name in ("pending", "running", "completed", "failed"):
        ids.documentation_jobs.append(await create_doc(api, name))
    await api.data(DOC_STEP["start"], {"id": ids.documentation_jobs[1]})
    await api.data(DOC_STEP["start"], {"id": ids.documentation_jobs[2]})
    await api.data(DOC_STEP["complete"], {"id": ids.documentation_jobs[2]})
    await api.data(FAIL_DOC, {"id": ids.documentation_jobs[3]})
    ids.documentation_jobs.append(await create_doc(api, "bobs", as_=BOB))
    return ids


class World:
    """The objects every test starts from, and the database they make."""

    def __init__(self, ids: Ids, baseline: Snapshot) -> None:
        self.ids = ids
        self.baseline = baseline

    def __repr__(self) -> str:  # short: Hypothesis prints it with every failing example
        return (f"World({len(self.ids.jobs)} jobs, {len(self.ids.batches)} batches, "
                f"{len(self.ids.documentation_jobs)} documentation jobs)")


_BUILT: list[World] = []


@pytest.fixture
async def world(api: Api, store: Store) -> World:
    """Built through the API by the first test; later tests get a copy of its documents
    in their own fresh database (a few inserts instead of two dozen requests)."""
    if _BUILT:
        await restore(store, _BUILT[0].baseline)
        return World(_BUILT[0].ids, await snapshot(store))
    ids = await build_world(api)
    _BUILT.append(World(ids, await snapshot(store)))
    return _BUILT[0]


# -- the property -------------------------------------------------------------------------------

callers = st.sampled_from([ALICE, ALICE, ADMIN, WORKER, BOB, ANON])


async def send(api: Api, query: str, variables: dict[str, Any], caller: Caller
               ) -> tuple[int, bytes, Any]:
    """POST exactly these variables; ``json.dumps`` escapes lone surrogates as ``\\udXXX``."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    response = await api.client.post(
        "/graphql", content=body,
        headers={"content-type": "application/json", **caller.headers(api.settings)})
    return response.status_code, body, response.json()


def codes_of(payload: dict[str, Any]) -> list[str]:
    return [(error.get("extensions") or {}).get("code") for error in payload.get("errors") or ()]


def check_answer(api: Api, mutation: str, drawn: Drawn, status: int, body: bytes,
                 payload: dict[str, Any]) -> bool:
    """Assert the answer is a coded, unmasked one; return whether the request was refused."""
    codes = codes_of(payload)
    if len(body) > api.settings.max_body_bytes:
        assert (status, codes) == (413, [HTTP_CODES[413]]), payload
        return True
    # the body is {"variables": {...}}: the variables object sits two levels down
    if not strict_json(drawn.variables, max_depth=api.settings.max_body_depth - 2):
        assert (status, codes) == (400, [HTTP_CODES[400]]), payload
        return True
    assert status == 200, payload
    assert "INTERNAL_SERVER_ERROR" not in codes, (drawn, payload)
    unknown = [code for code in codes if code not in ErrorCode.__members__]
    assert not unknown, (drawn, payload)
    for error in payload.get("errors") or ():
        assert error["message"] != "Internal server error"
    if drawn.invalid:
        assert set(codes) == {"GRAPHQL_VALIDATION_FAILED"}, (drawn.reasons, payload)
        assert payload.get("data") is None, payload
    elif not drawn.unsure:
        assert "GRAPHQL_VALIDATION_FAILED" not in codes, (drawn.variables, payload)
    result = (payload.get("data") or {}).get(mutation)
    return bool(codes) and result is None


@pytest.mark.parametrize("mutation", mutation_names())
@hostile
@given(data=st.data())
async def test_mutation_survives_hostile_arguments(
    api: Api, store: Store, world: World, mutation: str, data: st.DataObject
) -> None:
    query = operation(mutation)
    caller = data.draw(callers, label="caller")
    drawn = data.draw(arguments(mutation, world.ids), label="arguments")

    status, body, payload = await send(api, query, drawn.variables, caller)
    after = await snapshot(store)
    try:
        refused = check_answer(api, mutation, drawn, status, body, payload)
        result = (payload.get("data") or {}).get(mutation)
        if refused or (mutation == "claimJob" and result is None):
            assert after.digests == world.baseline.digests, (
                f"refused {mutation} changed the database", caller, drawn, payload)
        if mutation == "claimJob" and result is not None:
            types = drawn.variables.get("jobTypes")
            types = [types] if isinstance(types, str) else types
            if types:
                assert result["jobType"] in types, (types, result)
    finally:  # every example, failing ones too (shrinking), starts from the same world
        if after.digests != world.baseline.digests:
            await restore(store, world.baseline)


def test_every_mutation_is_covered() -> None:
    """The parametrization comes from schema.graphql, so a new mutation is covered too."""
    names = mutation_names()
    assert {"createJob", "claimJob", "completeJob", "createBatch", "createDocumentationJob",
            "addGeneratedFiles", "setDocumentationJobAccess"} <= set(names)
    for name in names:
        assert name in operation(name)


# -- MongoDB operator injection ------------------------------------------------------------

OPERATOR_OBJECTS: list[Any] = [
    {"$where": "sleep(1000) || true"},
    {"$gt": ""},
    {"a": {"$ne": None}},
    {"list": [{"$set": {"status": "COMPLETED"}}]},
    {"a.b": 1},
    {"nested": {"deeper": {"$expr": {"$eq": [1, 1]}}}},
]
OPERATOR_STRINGS = ['{"$ne": null}', '{"$gt": ""}', "$where", "$ne", '{"$regex": ".*"}', ".*",
                    "pdf' || 'a'=='a", '{"$in": ["pdf"]}']
OPERATOR_VALUES: list[Any] = [{"$ne": None}, {"$gt": ""}, {"$in": ["pdf"]}, [{"$ne": None}],
                              {"$where": "true"}]


async def test_operator_keys_in_stored_json_are_refused_and_nothing_is_stored(
    api: Api, store: Store, world: World
) -> None:
    processing = world.ids.jobs[3]  # held by WORKER
    for parameters in OPERATOR_OBJECTS:
        requests = {
            "parameters": (CREATE_JOB, {"input": {"jobType": "pdf", "parameters": parameters}},
                           ALICE),
            "jobs": (CREATE_BATCH, {"input": {"batchName": "b", "jobs": [
                {"jobType": "ok"}, {"jobType": "pdf", "parameters": parameters}]}}, ALICE),
            "results": (
                "mutation($id: ID!, $r: JSON) { completeJob(jobId: $id, results: $r) { jobId } }",
                {"id": processing, "r": parameters}, WORKER),
            "error.details": (
                """mutation($id: ID!, $d: JSON) {
                  failJob(jobId: $id, error: {code: "E", message: "m", details: $d}) { jobId } }""",
                {"id": processing, "d": parameters}, WORKER),
        }
        for argument, (query, variables, caller) in requests.items():
            body = await api.execute(query, variables, as_=caller)
            assert body["data"] is None, body
            [error] = body["errors"]
            assert error["extensions"]["code"] == "VALIDATION_ERROR", (argument, error)
            assert error["extensions"]["field"].startswith(
                "parameters" if argument == "jobs" else argument), (argument, error)
    assert (await snapshot(store)).digests == world.baseline.digests


async def test_operator_keys_inlined_in_the_document_do_not_parse(
    api: Api, store: Store, world: World
) -> None:
    body = await api.execute(
        'mutation { createJob(input: {jobType: "pdf", parameters: {q: {$where: "1"}}}) '
        "{ jobId } }")
    assert codes_of(body) == ["GRAPHQL_PARSE_FAILED"], body  # `$where` is no GraphQL name
    body = await api.execute(
        'mutation { createJob(input: {jobType: "pdf", parameters: {q: {a: "$where"}}}) '
        "{ jobId parameters } }")
    assert body["data"]["createJob"]["parameters"] == {"q": {"a": "$where"}}  # a value is data
    stored = await store.jobs.collection.find_one({"_id": body["data"]["createJob"]["jobId"]})
    assert stored is not None and stored["parameters"] == {"q": {"a": "$where"}}


JOBS = """query($filter: JobFilterInput, $after: String, $before: String) {
  jobs(filter: $filter, after: $after, before: $before) {
    totalCount edges { node { jobId jobType } } } }"""
DOCUMENTATION_JOBS = """query($f: DocumentationJobFilterInput) {
  documentationJobs(filter: $f) { totalCount edges { node { jobId } } } }"""


async def test_filters_treat_operator_strings_as_literals(api: Api, world: World) -> None:
    everything = await api.data(JOBS, {}, as_=ADMIN)
    assert everything["jobs"]["totalCount"] >= 9
    for literal in OPERATOR_STRINGS:
        for key in ("jobType", "batchId"):
            page = await api.data(JOBS, {"filter": {key: literal}}, as_=ADMIN)
            assert page["jobs"] == {"totalCount": 0, "edges": []}, (key, literal, page)
        docs = await api.data(DOCUMENTATION_JOBS, {"f": {"repositoryName": literal}}, as_=ADMIN)
        assert docs["documentationJobs"] == {"totalCount": 0, "edges": []}, literal


async def test_filters_refuse_objects_where_strings_are_expected(api: Api, world: World) -> None:
    for value in [*OPERATOR_VALUES, ["pdf", "ocr"], 1.5, True]:
        for key in ("jobType", "batchId", "status"):
            body = await api.execute(JOBS, {"filter": {key: value}}, as_=ADMIN)
            assert codes_of(body) == ["GRAPHQL_VALIDATION_FAILED"], (key, value, body)
            assert "data" not in body, body
        body = await api.execute(DOCUMENTATION_JOBS, {"f": {"repositoryName": value}}, as_=ADMIN)
        assert codes_of(body) == ["GRAPHQL_VALIDATION_FAILED"], (value, body)


ID_LOOKUPS = {
    "job": "query($id: ID!) { job(jobId: $id) { jobId } }",
    "batch": "query($id: ID!) { batch(batchId: $id) { batchId } }",
    "documentationJob": "query($id: ID!) { documentationJob(jobId: $id) { jobId } }",
}
ID_MUTATIONS = [
    ("deleteJob", "jobId"), ("retryJob", "jobId"), ("heartbeatJob", "jobId"),
    ("completeJob", "jobId"), ("deleteDocumentationJob", "jobId"),
    ("startDocumentationJob", "jobId"), ("deactivateBatch", "batchId"),
    ("activateBatch", "batchId"),
]


def id_mutation(name: str, argument: str) -> str:
    return f"mutation($id: ID!) {{ {name}({argument}: $id) {{ __typename }} }}"


async def test_operator_looking_ids_are_just_missing_ids(
    api: Api, store: Store, world: World
) -> None:
    for operator_id in OPERATOR_STRINGS:
        for name, query in ID_LOOKUPS.items():
            body = await api.execute(query, {"id": operator_id}, as_=ADMIN)
            assert codes_of(body) == ["NOT_FOUND"], body
            assert body["data"] == {name: None}
        inline = f"query {{ job(jobId: {json.dumps(operator_id)}) {{ jobId }} }}"
        assert codes_of(await api.execute(inline, as_=ADMIN)) == ["NOT_FOUND"]
        for name, argument in ID_MUTATIONS:
            body = await api.execute(id_mutation(name, argument), {"id": operator_id}, as_=ADMIN)
            assert codes_of(body) == ["NOT_FOUND"], (name, body)
    assert (await snapshot(store)).digests == world.baseline.digests


async def test_objects_where_an_id_is_expected_are_refused_by_graphql(
    api: Api, store: Store, world: World
) -> None:
    for value in [*OPERATOR_VALUES, [world.ids.jobs[0]], ["a", "b"], True, 1.5, {}]:
        for query in ID_LOOKUPS.values():
            body = await api.execute(query, {"id": value}, as_=ADMIN)
            assert codes_of(body) == ["GRAPHQL_VALIDATION_FAILED"], (value, body)
            assert "data" not in body
        for name, argument in ID_MUTATIONS:
            body = await api.execute(id_mutation(name, argument), {"id": value}, as_=ADMIN)
            assert codes_of(body) == ["GRAPHQL_VALIDATION_FAILED"], (name, value, body)
        body = await api.execute(
            "mutation($id: ID!, $m: String!) { failDocumentationJob(jobId: $id, errorMessage: $m)"
            " { jobId } }", {"id": world.ids.documentation_jobs[0], "m": value}, as_=ADMIN)
        assert codes_of(body) == ["GRAPHQL_VALIDATION_FAILED"], (value, body)
    assert (await snapshot(store)).digests == world.baseline.digests


async def test_claim_with_operator_job_types_claims_nothing(
    api: Api, store: Store, world: World
) -> None:
    for job_types in [[literal] for literal in OPERATOR_STRINGS] + [["$ne", "$gt"]]:
        body = await api.execute(CLAIM, {"types": job_types}, as_=WORKER)
        assert body == {"data": {"claimJob": None}}, (job_types, body)
    for job_types in [*OPERATOR_VALUES, [1.5], [None]]:
        body = await api.execute(CLAIM, {"types": job_types}, as_=WORKER)
        assert codes_of(body) == ["GRAPHQL_VALIDATION_FAILED"], (job_types, body)
    assert (await snapshot(store)).digests == world.baseline.digests
    # the same worker does claim a real job type: the refusals above were not vacuous
    claimed = await api.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
    assert claimed["claimJob"] is not None


def cursor_of(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CRAFTED_CURSORS = [
    cursor_of({"$gt": ""}),
    cursor_of({"created_at": {"$gt": 0}, "_id": {"$ne": None}}),
    cursor_of([{"$gt": 0}, "x"]),
    cursor_of([0, {"$ne": None}]),
    cursor_of([0, {"$gt": ""}, "extra"]),
    cursor_of([0, ["$in"]]),
    cursor_of([True, "x"]),
    cursor_of([1.5, "x"]),
    cursor_of([10**30, "x"]),
    cursor_of([-(10**30), "x"]),
    cursor_of([0, None]),
    cursor_of([None, "x"]),
    cursor_of("$where"),
    cursor_of(b"\xff\xfe\x00"),
    "$where",
    '{"$ne": null}',
    "====",
    "a",
]
CURSOR_QUERIES = {
    "jobs": "query($c: String) {{ jobs({direction}: $c) {{ totalCount }} }}",
    "batches": "query($c: String) {{ batches({direction}: $c) {{ totalCount }} }}",
    "documentationJobs":
        "query($c: String) {{ documentationJobs({direction}: $c) {{ totalCount }} }}",
    "batch.jobs": "query($c: String, $id: ID!) {{ batch(batchId: $id) {{ "
                  "jobs({direction}: $c) {{ totalCount }} }} }}",
}


async def test_crafted_cursors_are_validation_errors(
    api: Api, store: Store, world: World
) -> None:
    for cursor in CRAFTED_CURSORS:
        for direction in ("after", "before"):
            for listing, template in CURSOR_QUERIES.items():
                body = await api.execute(template.format(direction=direction),
                                         {"c": cursor, "id": world.ids.batches[0]}, as_=ADMIN)
                [error] = body["errors"]
                assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": direction}, (
                    listing, cursor, body)
    assert (await snapshot(store)).digests == world.baseline.digests


# -- bodies that are not (strict) JSON objects ------------------------------------------------


def mutation_body(parameters_json: str) -> bytes:
    query = 'mutation($p: JSON) { createJob(input: {jobType: "pdf", parameters: $p}) { jobId } }'
    return f'{{"query": {json.dumps(query)}, "variables": {{"p": {parameters_json}}}}}'.encode()


NOT_STRICT_JSON_OBJECTS = {
    "lone surrogate in a value": mutation_body('{"a": "\\ud800"}'),
    "lone surrogate in a key": mutation_body('{"\\udfff": 1}'),
    "reversed surrogate pair": mutation_body('{"a": "\\udc00\\ud800"}'),
    "NaN": mutation_body('{"a": NaN}'),
    "Infinity": mutation_body('{"a": 1e999}'),
    "nested 100000 deep": mutation_body("[" * 100_000 + "]" * 100_000),
    "integer beyond 64 bits, 1000 deep": mutation_body("[" * 1000 + str(2**64) + "]" * 1000),
    "invalid UTF-8": mutation_body('{"a": "x"}').replace(b'"x"', b'"\xff"'),
    "null body": b"null",
    "string body": b'"createJob"',
    "number body": b"17",
    "operationName object": json.dumps({
        "query": 'mutation { createJob(input: {jobType: "x"}) { jobId } }',
        "operationName": {"$ne": None}}).encode(),
}


async def test_bodies_that_are_not_strict_json_objects_are_400(
    api: Api, store: Store, world: World
) -> None:
    for name, body in NOT_STRICT_JSON_OBJECTS.items():
        response = await api.client.post(
            "/graphql", content=body,
            headers={"content-type": "application/json", **ALICE.headers(api.settings)})
        assert response.status_code == 400, (name, response.text)
        assert codes_of(response.json()) == ["BAD_REQUEST"], name
    # the same document with a sendable value is stored: the 400s were about the JSON
    response = await api.client.post(
        "/graphql", content=mutation_body('{"a": "\\ud83d\\ude00"}'),
        headers={"content-type": "application/json", **ALICE.headers(api.settings)})
    assert response.json()["data"]["createJob"]["jobId"]
    stored = await store.jobs.collection.find_one(
        {"_id": response.json()["data"]["createJob"]["jobId"]})
    assert stored is not None and stored["parameters"] == {"a": "\U0001f600"}


async def test_lone_surrogates_elsewhere_are_refused_before_execution(
    api: Api, store: Store, world: World
) -> None:
    response = await api.client.get("/graphql", params={
        "query": "query($id: ID!) { job(jobId: $id) { jobId } }",
        "variables": '{"id": "\\ud800"}'}, headers=ALICE.headers(api.settings))
    assert response.status_code == 400, response.text
    assert codes_of(response.json()) == ["BAD_REQUEST"]
    body = await api.execute('mutation { createJob(input: {jobType: "\\ud800"}) { jobId } }')
    assert codes_of(body) == ["GRAPHQL_PARSE_FAILED"], body
    assert (await snapshot(store)).digests == world.baseline.digests


@pytest.mark.parametrize("depth, number, status, code", [
    # beyond JOBGRAPH_MAX_BODY_DEPTH (64): refused as JSON, the same on every Python
    (1000, "1.5", 400, "BAD_REQUEST"),
    (1000, str(2**62), 400, "BAD_REQUEST"),
    (1000, "1e300", 400, "BAD_REQUEST"),
    (63, "1.5", 400, "BAD_REQUEST"),  # 63 lists inside the body's two objects: 65 levels
    # within it: parameters nested beyond their own limit (20) are a VALIDATION_ERROR
    (62, "1.5", 200, "VALIDATION_ERROR"),
    (60, str(2**62), 200, "VALIDATION_ERROR"),
    # integral and beyond 64 bits (read again exactly): refused, never rounded
    (60, "1e300", 200, "VALIDATION_ERROR"),
    (60, str(2**64), 200, "VALIDATION_ERROR"),
])
async def test_numbers_deep_in_a_body_get_a_coded_answer(
        api: Api, store: Store, depth: int, number: str, status: int, code: str) -> None:
    for _ in range(2):  # a document's first request, then the express lane
        response = await api.client.post(
            "/graphql", content=mutation_body("[" * depth + number + "]" * depth),
            headers={"content-type": "application/json", **ALICE.headers(api.settings)})
        assert response.status_code == status, response.text
        assert codes_of(response.json()) == [code]
    assert await store.jobs.collection.count_documents({}) == 0


async def test_the_body_depth_limit_is_configurable_and_named_in_the_refusal(
        mongo_uri: str, database_name: str) -> None:
    settings = make_settings(database=database_name, max_body_depth=8)
    async with open_api(settings, mongo_uri) as shallow:
        deep = await shallow.client.post(
            "/graphql", content=mutation_body("[" * 7 + "1" + "]" * 7),
            headers={"content-type": "application/json", **ALICE.headers(settings)})
        within = await shallow.client.post(
            "/graphql", content=mutation_body('{"a": ' * 6 + "1" + "}" * 6),
            headers={"content-type": "application/json", **ALICE.headers(settings)})

    assert deep.status_code == 400
    assert codes_of(deep.json()) == ["BAD_REQUEST"]
    assert "deeper than 8 levels" in deep.json()["errors"][0]["message"]
    assert within.status_code == 200 and within.json()["data"]["createJob"]["jobId"]


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30])
async def test_integers_beyond_64_bits_are_refused_not_rounded(
    api: Api, store: Store, number: int
) -> None:
    # given a number MongoDB cannot hold exactly, sent as JSON text
    query = 'mutation($p: JSON) { createJob(input: {jobType: "pdf", parameters: $p}) { jobId } }'
    body = json.dumps({"query": query, "variables": {"p": {"n": 0}}}).replace(
        '{"n": 0}', f'{{"n": {number}}}')
    # when
    response = await api.client.post("/graphql", content=body,
                                     headers={"content-type": "application/json",
                                              **ALICE.headers(api.settings)})
    # then it is refused, and no rounded copy is stored
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION_ERROR"
    assert await store.jobs.collection.count_documents({}) == 0
