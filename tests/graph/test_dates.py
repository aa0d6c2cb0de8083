"""DateTime inputs: instants at the edge of the range (valid ISO 8601, but outside what
the database holds once moved to UTC) are refused as bad input values naming where they
were given, in variables and in literals, in every DateTime input; never an internal
error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.helpers.graphql import ALICE, Api

from .documents import CREATE_JOB

EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T24:00:00"]
LISTS = {"jobs": "JobFilterInput", "batches": "BatchFilterInput",
         "documentationJobs": "DocumentationJobFilterInput"}
FIELDS = ["createdAfter", "createdBefore"]


def cases() -> list[tuple[str, str, str]]:
    return [(listing, field, edge) for listing in LISTS for field in FIELDS for edge in EDGES]


@pytest.mark.parametrize(("listing", "field", "edge"), cases())
async def test_an_instant_outside_the_range_is_refused_naming_its_field(
    api: Api, listing: str, field: str, edge: str
) -> None:
    requests = {
        # the instant as a variable of its own, inside an input variable, and as a literal
        "scalar variable": (f"query($d: DateTime) {{ {listing}(filter: {{{field}: $d}}) "
                            "{ totalCount } }", {"d": edge}, ["$d"]),
        "input variable": (f"query($f: {LISTS[listing]}) {{ {listing}(filter: $f) "
                           "{ totalCount } }", {"f": {field: edge}}, ["$f", field]),
        "literal": (f"{{ {listing}(filter: {{{field}: {json.dumps(edge)}}}) "
                    "{ totalCount } }", {}, [field]),
    }
    for kind, (query, variables, named) in requests.items():
        body = await api.execute(query, variables)
        assert "data" not in body or body["data"] is None, (kind, body)
        [error] = body["errors"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", (kind, error)
        assert all(name in error["message"] for name in named), (kind, error["message"])
        assert "range" in error["message"], (kind, error["message"])


async def test_instants_inside_the_range_still_filter_with_their_offset(api: Api) -> None:
    created = await api.data(CREATE_JOB, {"input": {"jobType": "dates"}})
    job_id = created["createJob"]["jobId"]
    now = datetime.now(UTC)
    # the same instants, written with offsets far from UTC and without one (UTC)
    before = (now - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=14))).isoformat()
    after = (now + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=-14))).isoformat()
    naive_after = (now + timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    query = """query($a: DateTime, $b: DateTime) {
      jobs(filter: {createdAfter: $a, createdBefore: $b}) { edges { node { jobId } } } }"""
    for a, b in [(before, after), (before, naive_after), ("0001-01-01T00:00:00Z", after),
                 (before, "9999-12-31T23:59:59Z")]:
        found = await api.data(query, {"a": a, "b": b}, as_=ALICE)
        assert [edge["node"]["jobId"] for edge in found["jobs"]["edges"]] == [job_id], (a, b)
    # and an interval that ends before the job began holds nothing
    assert (await api.data(query, {"a": "0001-01-01T00:00:00Z", "b": before}))["jobs"] == {
        "edges": []}


async def test_the_express_lane_refuses_them_too(api: Api) -> None:
    """A document this process has validated takes the express lane (graph/engine/express.py)
    from its second request on; its variables are coerced by the same scalar."""
    query = "query($d: DateTime) { jobs(filter: {createdAfter: $d}) { totalCount } }"
    assert (await api.data(query, {"d": "2025-01-01T00:00:00Z"}))["jobs"]["totalCount"] == 0
    for edge in EDGES:
        [error] = (await api.execute(query, {"d": edge}))["errors"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", error
        assert "$d" in error["message"] and "range" in error["message"]
