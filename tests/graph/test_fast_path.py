"""The fast executor (graph/engine/executor.py) answers exactly as graphql-core does.

Every document runs twice, once through ``FastExecutor`` and once through Strawberry's
own executor, over the same data (well-formed, and broken in the ways that produce
errors), and the responses must be equal: data, and errors with their messages, paths
and locations, in the same order.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
import weakref
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from types import SimpleNamespace
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pytest
import strawberry
from strawberry.relay import GlobalID
from strawberry.scalars import JSON
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph.engine.executor import FastExecutor
from graph.engine.plans import LEAF, LEAF_LIST, TYPENAME, Bail, compile_leaves
from repository.database import STORED_UTC


@strawberry.enum
class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Shade(Enum):
    """Not in the schema; its RED has Color.RED's value."""

    RED = "red"


class LaterDate(datetime):
    def isoformat(self, *args: Any, **kwargs: Any) -> str:
        return "later: " + super().isoformat(*args, **kwargs)


@strawberry.type
class Leaf:
    name: str
    size: int | None
    color: Color
    tags: list[str]
    maybe_tags: list[str | None] | None
    when: datetime | None
    data: JSON | None


@strawberry.type
class Node:
    id: strawberry.ID
    label: str
    leaf: Leaf | None
    required_leaf: Leaf
    leaves: list[Leaf]
    optional_leaves: list[Leaf | None] | None
    children: list[Node]

    @strawberry.field
    @staticmethod
    def shout(root: Any, suffix: str = "!") -> str:
        return root.label.upper() + suffix

    @strawberry.field
    def last_leaves(self, last: Annotated[int | None, strawberry.argument()] = None
                    ) -> list[Leaf]:
        return self.leaves if last is None else self.leaves[-last:]

    @strawberry.field
    @staticmethod
    def boom(root: Any) -> str | None:
        raise ValueError(f"boom {root.id}")

    @strawberry.field
    @staticmethod
    def boom_required(root: Any) -> str:
        raise ValueError(f"required boom {root.id}")

    @strawberry.field
    @staticmethod
    async def later(root: Any, info: strawberry.Info) -> Leaf | None:
        await asyncio.sleep(0)
        return root.leaf

    @strawberry.field
    @staticmethod
    async def later_required(root: Any, fail: bool = False) -> Leaf:
        await asyncio.sleep(0)
        if fail:
            raise ValueError(f"later failed {root.id}")
        return root.required_leaf


@strawberry.type
class Query:
    @strawberry.field
    @staticmethod
    def nodes(info: strawberry.Info) -> list[Node]:
        return info.context["nodes"]

    @strawberry.field
    @staticmethod
    def node(info: strawberry.Info) -> Node | None:
        return info.context["nodes"][0] if info.context["nodes"] else None

    @strawberry.field
    @staticmethod
    async def required_nodes(info: strawberry.Info) -> list[Node]:
        return info.context["nodes"]


@strawberry.input
class LeafInput:
    name: str
    size: int | None = None
    color: Color = Color.RED
    tags: list[str] = strawberry.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.name == "invalid":
            raise ValueError("an input that refuses itself")


@strawberry.type
class Mutation:
    @strawberry.mutation
    @staticmethod
    def add_leaf(info: strawberry.Info, leaf: LeafInput, note: str | None = None) -> Leaf:
        return SimpleNamespace(name=leaf.name + (note or ""), size=leaf.size, color=leaf.color,
                               tags=leaf.tags, maybe_tags=None, when=WHEN, data=None)

    @strawberry.mutation
    @staticmethod
    async def add_leaves(leaves: list[LeafInput]) -> list[Leaf]:
        await asyncio.sleep(0)
        return [SimpleNamespace(name=leaf.name, size=leaf.size, color=leaf.color,
                                tags=leaf.tags, maybe_tags=None, when=None, data={"n": 1})
                for leaf in leaves]

    @strawberry.mutation
    @staticmethod
    async def refuse(leaf: LeafInput) -> Leaf:
        raise ValueError(f"refused {leaf.name}")


FAST = strawberry.Schema(query=Query, mutation=Mutation, execution_context_class=FastExecutor)
GENERIC = strawberry.Schema(query=Query, mutation=Mutation,
                            execution_context_class=StrawberryGraphQLCoreExecutionContext)

WHEN = datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)


def leaf(name: str, **changes: Any) -> SimpleNamespace:
    values = {"name": name, "size": 3, "color": Color.RED, "tags": ["a", "b"],
              "maybe_tags": ["x", None], "when": WHEN, "data": {"k": [1, 2]}}
    return SimpleNamespace(**{**values, **changes})


def node(number: int, **changes: Any) -> SimpleNamespace:
    values = {"id": f"n{number}", "label": f"node {number}", "leaf": leaf(f"l{number}"),
              "required_leaf": leaf(f"r{number}"),
              "leaves": [leaf(f"a{number}"), leaf(f"b{number}", size=None, when=None)],
              "optional_leaves": [leaf(f"o{number}"), None], "children": []}
    return SimpleNamespace(**{**values, **changes})


def forest() -> list[SimpleNamespace]:
    return [node(1, children=[node(11), node(12)]), node(2), node(3, leaf=None)]


def broken(nodes: list[SimpleNamespace], where: str) -> list[SimpleNamespace]:
    """The same data with one value that graphql-core must refuse or null out."""
    nodes = copy.deepcopy(nodes)
    target = nodes[1]
    if where == "non-null leaf":
        target.label = None
    elif where == "nested non-null leaf":
        target.leaves[1].name = None
    elif where == "non-null object":
        target.required_leaf = None
    elif where == "int overflow":
        target.leaves[0].size = 2**40
    elif where == "bad enum":
        target.leaf.color = "green"
    elif where == "null list item":
        target.leaves = [target.leaves[0], None]
    elif where == "null in leaf list":
        target.leaf.tags = ["a", None]
    elif where == "not a list":
        target.leaves = "oops"
    elif where == "missing attribute":
        del target.leaf.name
    elif where == "deep child":
        nodes[0].children[1].required_leaf.color = 7
    elif where == "enum values":  # the member's value, as models may hold it
        target.leaf.color = "blue"
        target.leaves[0].color = "BLUE"  # its name is not its value
    elif where == "unhashable enum":
        target.leaf.color = ["red"]
    elif where == "other enum":
        target.leaf.color = Shade.RED
    elif where == "dates":
        target.leaf.when = LaterDate(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        target.leaves[0].when = date(2026, 1, 2)
        target.leaves[1].when = "2026-01-02"
    return nodes


BREAKS = ["intact", "non-null leaf", "nested non-null leaf", "non-null object", "int overflow",
          "bad enum", "null list item", "null in leaf list", "not a list", "missing attribute",
          "deep child", "enum values", "unhashable enum", "other enum", "dates"]

LEAF_FIELDS = "name size color tags maybeTags when data __typename"

DOCUMENTS = {
    "plain fields and aliases": f"""
        {{ nodes {{ id label theLabel: label leaf {{ {LEAF_FIELDS} }}
                    requiredLeaf {{ {LEAF_FIELDS} }} leaves {{ {LEAF_FIELDS} }}
                    optionalLeaves {{ name size }} children {{ id requiredLeaf {{ color }} }}
                    __typename }} }}""",
    "fragments": """
        query { node { ...Top ... on Node { leaf { ...LeafBits size } } } nodes { ...Top } }
        fragment Top on Node { id leaf { name } leaves { ...LeafBits } ... { label } }
        fragment LeafBits on Leaf { name color tags alias: when }""",
    "skip and include": """
        query Q($yes: Boolean!, $no: Boolean!) {
          nodes { id label @include(if: $yes) shout @skip(if: $yes)
                  leaf @include(if: $no) { name } leaves { name @skip(if: $no) size } } }""",
    "resolvers with arguments": """
        query Q($last: Int, $suffix: String!) {
          nodes { id shout(suffix: $suffix) quiet: shout lastLeaves(last: $last) { name }
                  all: lastLeaves { name size } } }""",
    "errors in resolvers": """
        { nodes { id boom leaf { name } } node { id boom } }""",
    "non-null resolver error": """
        { nodes { id label boomRequired } }""",
    "async fields": """
        query Q($fail: Boolean!) {
          nodes { id later { name color } laterRequired(fail: $fail) { name tags }
                  children { id later { name } } } }""",
    "async root list": """
        { requiredNodes { id label leaves { name size color } requiredLeaf { when } } }""",
}
VARIABLES: dict[str, Any] = {"yes": True, "no": False, "last": 1, "suffix": "?", "fail": False}

MUTATIONS = {
    "one field, literal input": """
        mutation { addLeaf(leaf: {name: "a", size: 2, color: BLUE, tags: ["x"]}, note: "!") {
          name size color tags when __typename } }""",
    "one field, input in a variable": """
        mutation M($leaf: LeafInput!) { added: addLeaf(leaf: $leaf) { name size color } }""",
    "list of inputs, async": """
        mutation M($leaf: LeafInput!) { addLeaves(leaves: [$leaf, {name: "b"}]) {
          name tags data } }""",
    "an input that refuses itself": """
        mutation { addLeaf(leaf: {name: "invalid"}) { name } }""",
    "a resolver error in a non-null root": """
        mutation { refuse(leaf: {name: "c"}) { name } }""",
    "several fields, in order": """
        mutation M($leaf: LeafInput!) { first: addLeaf(leaf: $leaf) { name }
          second: refuse(leaf: $leaf) { name } third: addLeaves(leaves: []) { name } }""",
}


@pytest.mark.parametrize("leaf", [{"name": "v", "size": 5, "color": "BLUE"},
                                  {"name": "invalid"}, {"name": "v", "size": 2**40}],
                         ids=["valid", "refused", "overflow"])
@pytest.mark.parametrize("document", sorted(MUTATIONS))
def test_mutations_with_input_objects_answer_alike(document: str, leaf: dict[str, Any]) -> None:
    fast = run(FAST, MUTATIONS[document], forest(), {"leaf": leaf})
    generic = run(GENERIC, MUTATIONS[document], forest(), {"leaf": leaf})
    assert fast == generic


def run(schema: strawberry.Schema, document: str, nodes: list[Any],
        variables: dict[str, Any]) -> dict[str, Any]:
    result = asyncio.run(schema.execute(document, variable_values=variables,
                                        context_value={"nodes": nodes}))
    return {"data": result.data,
            "errors": [error.formatted for error in result.errors or ()]}


@pytest.mark.parametrize("document", sorted(DOCUMENTS))
@pytest.mark.parametrize("where", BREAKS)
def test_the_fast_executor_answers_like_graphql_core(document: str, where: str) -> None:
    # given
    nodes = broken(forest(), where) if where != "intact" else forest()

    # when
    fast = run(FAST, DOCUMENTS[document], nodes, VARIABLES)
    generic = run(GENERIC, DOCUMENTS[document], nodes, VARIABLES)

    # then
    assert fast == generic


@pytest.mark.parametrize("variables", [{"yes": False, "no": True, "last": None, "suffix": "",
                                        "fail": True},
                                       {"yes": True, "no": True, "last": 0, "suffix": "x",
                                        "fail": True}])
@pytest.mark.parametrize("document", ["skip and include", "resolvers with arguments",
                                      "async fields"])
def test_variables_change_the_answer_alike(document: str, variables: dict[str, Any]) -> None:
    fast = run(FAST, DOCUMENTS[document], forest(), variables)
    generic = run(GENERIC, DOCUMENTS[document], forest(), variables)
    assert fast == generic


INSTANTS = [
    WHEN, WHEN.replace(microsecond=0), WHEN.replace(microsecond=1), WHEN.replace(tzinfo=None),
    datetime(1, 1, 1, tzinfo=UTC), datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    WHEN.replace(tzinfo=STORED_UTC), WHEN.replace(tzinfo=STORED_UTC, microsecond=0),
    WHEN.replace(tzinfo=timezone(timedelta(hours=5, minutes=30))),
    WHEN.replace(tzinfo=timezone(timedelta(hours=-3, seconds=15))),
    WHEN.replace(tzinfo=ZoneInfo("Europe/Paris")), WHEN.replace(fold=1, tzinfo=UTC),
    LaterDate(2026, 1, 2, tzinfo=UTC), date(2026, 1, 2),
]


def test_instants_are_written_as_isoformat_writes_them() -> None:
    """UTC datetimes go through orjson on the fast path: the text must not change, for
    any microsecond, year or zone (every other zone, and subclasses, keep isoformat)."""
    # given: each instant as a leaf, the database's own UTC among them
    nodes = [node(number, leaf=leaf(f"l{number}", when=when))
             for number, when in enumerate(INSTANTS)]
    document = "{ nodes { leaf { when } } }"

    # when
    fast = run(FAST, document, nodes, {})
    generic = run(GENERIC, document, nodes, {})

    # then
    assert fast == generic
    assert [n["leaf"]["when"] for n in fast["data"]["nodes"]] == [
        when.isoformat() for when in INSTANTS]


def test_compiled_leaves_read_any_attribute_name_and_bail_as_the_loop_did() -> None:
    """Attribute names that are not identifiers (or are keywords) are read with getattr;
    a missing attribute and a null in a non-null leaf hand the object to graphql-core."""
    # given: leaves named by a keyword, by a non-identifier and plainly, one nullable
    leaves = [(LEAF, "kind", "class", True, str), (LEAF, "dashed", "a-b", False, str),
              (TYPENAME, "__typename"), (LEAF_LIST, "tags", "tags", True, str, True)]
    fill = compile_leaves("Thing", ["kind", "other", "dashed", "__typename", "tags"], leaves)

    def thing(**values: Any) -> SimpleNamespace:
        return SimpleNamespace(**{"class": 1, "a-b": None, "tags": [2, 3], **values})

    # when / then: the response in response order, the other field left for later
    assert fill(thing()) == {"kind": "1", "other": None, "dashed": None,
                             "__typename": "Thing", "tags": ["2", "3"]}
    assert list(fill(thing())) == ["kind", "other", "dashed", "__typename", "tags"]
    for broken_thing in (thing(**{"class": None}), thing(tags=[1, None]), thing(tags="x"),
                         SimpleNamespace(**{"a-b": 1, "tags": []})):
        with pytest.raises(Bail):
            fill(broken_thing)


class Tracker:
    """Lives as long as the node holding it."""


def test_a_value_the_fast_path_hands_to_graphql_core_is_not_kept_alive(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Falling back raised one shared exception whose traceback grew by a frame per raise,
    and kept each frame (with the objects it read) alive for as long as the process."""
    # given: a node whose non-null label is missing, read many times (the error's log
    # record, which holds its traceback, is not kept by the test's log capture)
    monkeypatch.setattr(logging.getLogger("strawberry.execution"), "disabled", True)
    sources = [broken(forest(), "non-null leaf") for _ in range(50)]
    for nodes in sources:
        nodes[1].tracker = Tracker()
    alive = [weakref.ref(nodes[1].tracker) for nodes in sources]

    # when
    for nodes in sources:
        assert run(FAST, DOCUMENTS["plain fields and aliases"], nodes, VARIABLES)["errors"]
    del sources, nodes
    gc.collect()

    # then
    assert [ref() for ref in alive if ref() is not None] == []


def test_the_same_document_twice_with_other_variables_is_not_answered_from_a_cache() -> None:
    # given: one document whose selection depends on a variable
    document = DOCUMENTS["skip and include"]

    # when
    first = run(FAST, document, forest(), {**VARIABLES, "yes": True})
    second = run(FAST, document, forest(), {**VARIABLES, "yes": False})

    # then
    assert "label" in first["data"]["nodes"][0] and "shout" not in first["data"]["nodes"][0]
    assert "shout" in second["data"]["nodes"][0] and "label" not in second["data"]["nodes"][0]


def test_the_api_schema_uses_the_fast_executor() -> None:
    from graph.schema.root import build_schema

    assert build_schema().execution_context_class is FastExecutor


# -- the API's own schema, over in-memory repositories ------------------------------

API_PAGE = """
query Page($first: Int!, $withLogs: Boolean!, $ids: [ID!]!) {
  jobs(first: $first) {
    edges { cursor node { ...Job batch { batchName status counts { total pending } } } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
  one: job(jobId: "job-1") { ...Job error { code details } previousErrors { message } }
  nodes(ids: $ids) {
    __typename id
    ... on SecretaryJob { jobId status }
    ... on BatchJob { batchName counts { total } }
  }
}
fragment Job on SecretaryJob {
  __typename id jobId jobType status parameters createdAt updatedAt results batchId owner
  processingStartedAt completedAt claimedBy leaseExpiresAt attempts maxAttempts retryable
  logSeq version progress { step percent message }
  logs(last: 2) @include(if: $withLogs) { timestamp level message seq attempt }
  accessControl { visibility readAccess adminAccess }
}
"""


class FakeJobs:
    def __init__(self, jobs: list[Any]) -> None:
        self.jobs = jobs

    async def get(self, principal: Any, job_id: str) -> Any:
        from repository.errors import NotFoundError

        for job in self.jobs:
            if job.job_id == job_id:
                return job
        raise NotFoundError(f"job {job_id!r} not found")

    async def list(self, principal: Any, job_filter: Any, page: Any) -> Any:
        from repository.pagination import Page

        items = self.jobs[:page.size]
        return Page(items, [f"c-{job.job_id}" for job in items], len(self.jobs) > page.size,
                    False)

    async def count(self, principal: Any, job_filter: Any) -> int:
        return len(self.jobs)

    async def get_many(self, principal: Any, ids: list[str]) -> dict[str, Any]:
        return {job.job_id: job for job in self.jobs if job.job_id in ids}


class FakeBatches:
    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches

    async def get_many(self, principal: Any, ids: list[str], *, with_counts: bool = True
                       ) -> dict[str, Any]:
        return {batch.batch_id: batch for batch in self.batches if batch.batch_id in ids}

    async def counts(self, ids: list[str]) -> dict[str, Any]:
        from repository.models import BatchCounts

        return {batch_id: BatchCounts(pending=2, completed=1) for batch_id in ids}


def api_models(where: str) -> tuple[list[Any], list[Any]]:
    from repository.models import (
        AccessControl,
        BatchJob,
        JobProgress,
        JobStatus,
        LogEntry,
        SecretaryJob,
    )

    batches = [BatchJob(batch_id=f"batch-{n}", batch_name=f"b{n}", created_at=WHEN,
                        updated_at=WHEN, access_control=AccessControl(read_access=["u"]))
               for n in range(2)]
    jobs = [SecretaryJob(
        job_id=f"job-{n}", job_type="pdf", status=JobStatus.PROCESSING, parameters={"n": n},
        created_at=WHEN, updated_at=WHEN, progress=JobProgress("ocr", n, None),
        logs=[LogEntry(WHEN, "info", f"line {seq}", seq, 1) for seq in range(1, 4)],
        access_control=AccessControl(read_access=["u"]), batch_id=f"batch-{n % 3}"
        if n % 3 < 2 else None, error={"code": "E", "message": "m", "details": None},
        previous_errors=[{"code": "P", "message": "earlier", "details": None}])
        for n in range(5)]
    if where == "null non-null field":
        jobs[2].job_type = None
    elif where == "bad log level":
        jobs[3].logs[-1].level = "loud"
    elif where == "null progress step":
        jobs[1].progress.step = None
    return jobs, batches


@pytest.mark.parametrize("where", ["intact", "null non-null field", "bad log level",
                                   "null progress step"])
@pytest.mark.parametrize("with_logs", [True, False])
def test_the_api_schema_answers_alike_with_either_executor(where: str, with_logs: bool
                                                           ) -> None:
    from graph.config.settings import Settings
    from graph.schema.core.context import Context
    from graph.schema.root import build_schema
    from repository.access import Principal
    from repository.limits import Limits

    fast = build_schema()
    generic = build_schema()
    generic.execution_context_class = StrawberryGraphQLCoreExecutionContext
    jobs, batches = api_models(where)
    ids = [str(GlobalID("SecretaryJob", "job-2")), str(GlobalID("BatchJob", "batch-1")),
           str(GlobalID("SecretaryJob", "missing"))]

    def answer(schema: strawberry.Schema) -> dict[str, Any]:
        store = SimpleNamespace(jobs=FakeJobs(jobs), batches=FakeBatches(batches),
                                limits=Limits())
        context = Context(store=store, settings=Settings(),  # type: ignore[arg-type]
                          principal=Principal("u"))
        result = asyncio.run(schema.execute(API_PAGE, variable_values={
            "first": 4, "withLogs": with_logs, "ids": ids}, context_value=context))
        return {"data": result.data, "errors": [e.formatted for e in result.errors or ()]}

    assert answer(fast) == answer(generic)
