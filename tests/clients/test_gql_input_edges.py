"""Inputs at their edges, sent with Python's gql over HTTP: a counter summed past what
GraphQL's ``Int`` can carry, and a JSON literal naming a variable the request leaves out.
Both were found by a tester (breaker5) and predate the argument conversion of issue 19."""

from __future__ import annotations

from typing import Any

from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport

from tests.helpers.graphql import ALICE, WORKER, Caller
from tests.helpers.live import LiveServer

from .conftest import token

INT_MAX = 2**31 - 1


def client(live: LiveServer, settings: Any, caller: Caller) -> Client:
    return Client(transport=HTTPXAsyncTransport(
        url=f"{live.url}/graphql",
        headers={"Authorization": f"Bearer {token(settings, caller)}"}))


async def outcome(session: Any, document: str, variables: dict[str, Any] | None = None
                  ) -> tuple[Any, list[dict[str, Any]]]:
    """The data and the errors of one request."""
    try:
        return await session.execute(GraphQLRequest(document, variable_values=variables)), []
    except TransportQueryError as error:
        return error.data, list(error.errors or [])


async def test_statistics_summed_past_int_leave_the_documentation_job_readable(
    live: LiveServer, settings: Any
) -> None:
    # given a running documentation job with totalTokensUsed at Int's largest value
    async with client(live, settings, ALICE) as alice, \
            client(live, settings, WORKER) as worker:
        created, _ = await outcome(alice, """mutation { createDocumentationJob(input: {
          repositoryPath: "/src", repositoryName: "big", outputDirectory: "/o"}) { jobId } }""")
        job_id = created["createDocumentationJob"]["jobId"]
        await outcome(worker, "mutation { claimDocumentationJob { jobId } }")
        add = """mutation($id: ID!, $n: Int) { addDocumentationJobStatistics(jobId: $id,
          increments: {totalTokensUsed: $n}) { statistics { totalTokensUsed } } }"""
        _, errors = await outcome(worker, add, {"id": job_id, "n": INT_MAX})
        assert errors == []

        # when the worker adds to it once more
        _, errors = await outcome(worker, add, {"id": job_id, "n": INT_MAX})

        # then it is refused as a VALIDATION_ERROR, or taken within Int; either way the job stays
        # readable (the sum was stored and every later read of the field failed, as a
        # GRAPHQL_VALIDATION_FAILED without a path)
        assert all(error["extensions"]["code"] == "VALIDATION_ERROR" for error in errors), errors
        data, errors = await outcome(alice, """query($id: ID!) { documentationJob(jobId: $id) {
          statistics { totalTokensUsed } } }""", {"id": job_id})
        assert errors == [], errors
        assert 0 <= data["documentationJob"]["statistics"]["totalTokensUsed"] <= INT_MAX


async def test_a_json_literal_naming_an_omitted_variable_is_stored_without_it(
    live: LiveServer, settings: Any
) -> None:
    # when a JSON literal names $p and the request leaves $p out
    async with client(live, settings, ALICE) as alice:
        data, errors = await outcome(alice, """mutation($p: JSON) { createJob(input: {
          jobType: "json-literal", parameters: {k: $p, n: 1}}) { parameters } }""", {})

    # then the job is created as an input object would be: the entry left out (the
    # graphql-core sentinel reached the database encoder: a VALIDATION_ERROR on "value"
    # naming graphql.pyutils.undefined.UndefinedType)
    assert errors == [], errors
    assert data["createJob"]["parameters"] == {"n": 1}


async def test_token_sums_past_int_leave_documentation_job_stats_answering(
    live: LiveServer, settings: Any
) -> None:
    # given two documentation jobs of one repository, each with 1.5 billion tokens (each
    # within Int, their sum not)
    async with client(live, settings, ALICE) as alice, \
            client(live, settings, WORKER) as worker:
        for _ in range(2):
            created, _ = await outcome(alice, """mutation { createDocumentationJob(input: {
              repositoryPath: "/src", repositoryName: "busy", outputDirectory: "/o"}) {
              jobId } }""")
            job_id = created["createDocumentationJob"]["jobId"]
            claimed, _ = await outcome(worker, "mutation { claimDocumentationJob { jobId } }")
            assert claimed["claimDocumentationJob"]["jobId"] == job_id
            _, errors = await outcome(worker, """mutation($id: ID!) {
              addDocumentationJobStatistics(jobId: $id,
              increments: {totalTokensUsed: 1500000000}) { version } }""", {"id": job_id})
            assert errors == [], errors

        # when their owner asks for the tokens per repository
        data, errors = await outcome(alice, """{ documentationJobStats {
          tokensByRepository { key tokens } } }""")

    # then the stats answer (they failed whole: "Int cannot represent non 32-bit signed
    # integer value: 3000000000", coded GRAPHQL_VALIDATION_FAILED, data null)
    assert errors == [], errors
    assert data["documentationJobStats"]["tokensByRepository"][0]["key"] == "busy"


async def test_a_negative_number_of_log_entries_is_refused_as_first_is(
    live: LiveServer, settings: Any
) -> None:
    # given a job
    async with client(live, settings, ALICE) as alice:
        created, _ = await outcome(alice, """mutation { createJob(input: {jobType: "neg"}) {
          jobId } }""")
        job_id = created["createJob"]["jobId"]

        # when its log is asked for with a negative count, as a page can be
        _, errors = await outcome(alice, """query($id: ID!) { job(jobId: $id) {
          logs(last: -1) { seq } } }""", {"id": job_id})
        _, page_errors = await outcome(alice, "{ jobs(first: -1) { edges { cursor } } }")

    # then both are refused alike (the log answered [] as if the job had none)
    assert [error["extensions"]["code"] for error in errors] == ["VALIDATION_ERROR"], errors
    assert [error["extensions"]["code"] for error in page_errors] == ["VALIDATION_ERROR"]
    assert errors[0]["extensions"]["field"] == "last"
