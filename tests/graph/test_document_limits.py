"""Document limits cost time linear in the document, and refuse what is too big.

A reviewer's 1 KB document (n fragments, each spreading the next twice) stayed under
the depth, alias and token limits while Strawberry's limiters walked 2**n spreads on
the event loop: n=20 froze the process for seconds, n=40 for hours.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from graphql import get_introspection_query, parse, validate
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

from graph.engine.limits import DocumentLimits
from graph.schema.root import build_schema
from tests.helpers.graphql import Api, make_settings
from tests.helpers.live import live_server


def fragment_bomb(n: int, field: str = "jobId", *, aliased: bool = False) -> str:
    """n fragments on SecretaryJob, each spreading the next twice."""
    head = "a: " if aliased else ""
    fragments = [f"fragment F{i} on SecretaryJob {{ {head}{field} ...F{i + 1} ...F{i + 1} }}"
                 for i in range(n)]
    fragments.append(f"fragment F{n} on SecretaryJob {{ {field} }}")
    return "query { job(jobId: \"x\") { ...F0 } } " + " ".join(fragments)


def test_measures_are_linear_in_fragments_even_when_the_expansion_is_astronomic() -> None:
    limits = DocumentLimits(max_depth=12, max_aliases=30, max_fields=2000)

    started = time.process_time()
    errors = limits.check(parse(fragment_bomb(300), max_tokens=None))
    spent = time.process_time() - started

    # job + (2**301 - 1) jobId fields: counted exactly, not walked
    assert [error.message for error in errors] == [
        f"the document selects {2**301} fields once its fragments are expanded. "
        "Allowed: 2000"]
    assert errors[0].extensions == {"code": "QUERY_TOO_COMPLEX"}
    assert spent < 5  # walking the spreads would not end before the universe does


def test_aliases_count_every_spread_as_written_out() -> None:
    limits = DocumentLimits(max_depth=12, max_aliases=30, max_fields=10**9)

    messages = [error.message for error in limits.check(parse(fragment_bomb(5, aliased=True)))]

    assert messages == ["31 aliases found. Allowed: 30"]  # F0 once, F1 twice, ... F4 16 times


def test_a_fragment_cycle_is_left_to_validation() -> None:
    document = parse("query { job(jobId: \"x\") { ...A } } "
                     "fragment A on SecretaryJob { jobId ...B } "
                     "fragment B on SecretaryJob { status ...A }")

    assert DocumentLimits(12, 30, 2000).check(document) == []


DOCUMENTS = [
    "{ viewer { userId } }",
    "{ jobs { edges { node { jobId batch { batchId jobs { edges { node { jobId } } } } } } } }",
    "query Deep { jobs { edges { node { batch { jobs { edges { node { batch { batchId } } } } }"
    " } } } }",
    "{ a: viewer { userId } b: viewer { u: userId } ...V } fragment V on Query { c: viewer { "
    "roles } }",
    "{ jobs { edges { node { ...J ... on SecretaryJob { progress { step } } } } } } "
    "fragment J on SecretaryJob { jobId batch { ...B } } fragment B on BatchJob { batchId }",
    "{ __schema { types { name fields { name type { name ofType { name } } } } } }",
    "query One { viewer { userId } } query Two { x: jobs { edges { node { jobId } } } }",
]


@pytest.mark.parametrize("max_depth", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("max_aliases", [0, 1, 2, 3])
@pytest.mark.parametrize("document", DOCUMENTS)
def test_depth_and_aliases_refuse_what_strawberrys_limiters_refuse(
        document: str, max_depth: int, max_aliases: int) -> None:
    schema = build_schema()._schema
    node = parse(document)
    rules = (*QueryDepthLimiter(max_depth=max_depth).validation_rules,
             *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules)
    theirs = {error.message for error in validate(schema, node, rules)}  # once per node

    ours = [error.message for error in DocumentLimits(max_depth, max_aliases, 10**9).check(node)]

    assert sorted(ours) == sorted(theirs)


def test_the_introspection_query_of_graphiql_fits_the_default_limits() -> None:
    settings = make_settings()
    limits = DocumentLimits(settings.max_query_depth, settings.max_aliases,
                            settings.max_query_fields)

    assert limits.check(parse(get_introspection_query(descriptions=True))) == []


async def test_a_fragment_bomb_is_refused_over_http(api: Api) -> None:
    error = await api.error(fragment_bomb(40))

    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
    assert "fields" in error["message"]


async def test_healthz_answers_while_a_fragment_bomb_is_refused(mongo_uri: str,
                                                                database_name: str) -> None:
    settings = make_settings(database=database_name)
    bomb = {"query": fragment_bomb(40)}
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url, timeout=30) as client:

        async def health_latency() -> float:
            await asyncio.sleep(0)  # let the bomb go first
            started = time.monotonic()
            response = await client.get("/healthz")
            assert response.status_code == 200
            return time.monotonic() - started

        refused, latency = await asyncio.gather(client.post("/graphql", json=bomb),
                                                health_latency())

    assert refused.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert latency < 1.0


def test_fields_under_introspection_count_too() -> None:
    fragments = " ".join(f"fragment T{i} on __Type {{ name ofType {{ ...T{i + 1} }} "
                         f"interfaces {{ ...T{i + 1} }} }}" for i in range(30))
    document = parse(f"{{ __schema {{ types {{ ...T0 }} }} }} {fragments} "
                     "fragment T30 on __Type { name }")

    errors = DocumentLimits(12, 30, 2000).check(document)

    assert [error.extensions for error in errors] == [{"code": "QUERY_TOO_COMPLEX"}]


def heavy_but_within_limits(variant: int) -> str:
    """~1,200 tokens whose validation compares hundreds of same-named fields pairwise
    (0.3 s of CPU each on the 2-core machine)."""
    return "{ " + " ".join(["viewer { userId }"] * 300) + f" v: viewer {{ r{variant}: roles }} }}"


async def test_validating_new_documents_does_not_hold_the_event_loop(mongo_uri: str,
                                                                     database_name: str) -> None:
    settings = make_settings(database=database_name)
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url, timeout=120) as client:
        heavy = [asyncio.create_task(client.post("/graphql", json={
            "query": heavy_but_within_limits(variant)})) for variant in range(6)]
        await asyncio.sleep(0.05)  # the first validation has started

        health = await client.get("/healthz")
        unfinished = sum(not task.done() for task in heavy)
        answers = await asyncio.gather(*heavy)

    assert health.status_code == 200
    assert unfinished >= 3, "/healthz waited for the validations"
    assert all(answer.status_code == 200 and "errors" not in answer.json()
               for answer in answers)
