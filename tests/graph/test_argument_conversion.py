"""Resolver arguments the fast path converts itself (``graph/engine/arguments.py``) are
the ones Strawberry's ``convert_arguments`` makes: for every mutation of the API, over
hostile but well-typed variables drawn from ``schema.graphql``, both conversions give
equal values (input dataclasses compared field by field), or the same error."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse
from graphql.execution.values import get_argument_values, get_variable_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.engine.internals import convert_arguments
from graph.engine.plans import DIRECT, field_kind
from graph.schema.root import build_schema
from tests.graph.strategies import Ids, arguments, mutation_names, operation

SCHEMA = build_schema()
GRAPHQL = SCHEMA._schema
IDS = Ids(jobs=["job-1"], batches=["batch-1"], documentation_jobs=["doc-1"])


def converted(convert: Any, *call: Any, **options: Any) -> Any:
    try:
        return ("value", convert(*call, **options))
    except Exception as exc:  # an input that refuses itself refuses both ways alike
        return ("error", type(exc), str(exc))


@pytest.mark.parametrize("mutation", mutation_names())
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_fast_conversion_equals_strawberrys(mutation: str, data: Any) -> None:
    field_def = GRAPHQL.mutation_type.fields[mutation]
    kind = field_kind(GRAPHQL.mutation_type, field_def, GRAPHQL)
    if kind[0] is not DIRECT or kind[-1] is None:
        return  # no conversion at all (leaf arguments), or graphql-core's own path
    ours, strawberry_arguments, registry, config = kind[-1]
    drawn = data.draw(arguments(mutation, IDS))
    if drawn.invalid or drawn.unsure:
        return
    document = parse(operation(mutation))
    [definition] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    variables = get_variable_values(GRAPHQL, definition.variable_definitions or (),
                                    drawn.variables)
    if isinstance(variables, list):  # refused by coercion: nothing reaches a resolver
        return
    node = definition.selection_set.selections[0]
    raw = get_argument_values(field_def, node, variables)
    assert ours is not None, f"{mutation}: its arguments keep Strawberry's conversion"
    assert converted(ours, raw) == converted(
        convert_arguments, raw, strawberry_arguments, scalar_registry=registry, config=config)


SUBSCRIPTIONS = {
    "jobChanged": ("subscription($id: ID!) { jobChanged(jobId: $id) { jobId } }",
                   {"id": "job-1"}),
    "jobsChanged": ("subscription($f: JobSubscriptionFilter, $i: Int!) { "
                    "jobsChanged(filter: $f, initial: $i) { kind } }",
                    {"f": {"status": "PENDING", "jobType": "pdf", "batchId": None}, "i": 3}),
    "batchChanged": ("subscription($id: ID!) { batchChanged(batchId: $id) { batchId } }",
                     {"id": "batch-1"}),
    "documentationJobChanged": ("subscription($id: ID!) { documentationJobChanged("
                                "jobId: $id) { jobId } }", {"id": "doc-1"}),
    "jobLogs": ("subscription($id: ID!) { jobLogs(jobId: $id, after: 7) { lastSeq } }",
                {"id": "job-1"}),
    "jobHistory": ("subscription($id: ID!) { jobHistory(jobId: $id, fromStart: true) "
                   "{ __typename } }", {"id": "job-1"}),
}


def started_with(subscribe: Any, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The arguments a subscription field's source was started with (its frame's locals,
    before it runs), as graphql-core calls ``subscribe``."""
    [definition] = parse(query).definitions
    assert isinstance(definition, OperationDefinitionNode)
    coerced = get_variable_values(GRAPHQL, definition.variable_definitions or (), variables)
    assert not isinstance(coerced, list), coerced
    node = definition.selection_set.selections[0]
    field_def = GRAPHQL.subscription_type.fields[node.name.value]  # type: ignore[attr-defined]
    raw_info = object()
    source = subscribe(None, raw_info, **get_argument_values(field_def, node, coerced))
    if not hasattr(source, "ag_frame"):  # Strawberry's wrapper: a coroutine around it
        try:
            source.send(None)
        except StopIteration as done:
            source = done.value
    found = dict(source.ag_frame.f_locals)
    info = found.pop("info")
    assert info._raw_info is raw_info
    return found


def test_subscription_sources_start_with_the_arguments_strawberry_gives(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every subscription field starts its source without Strawberry's wrapper
    (``direct_subscribers``), with the arguments the wrapper passes."""
    import graph.schema.root

    monkeypatch.setattr(graph.schema.root, "direct_subscribers", lambda *_: None)
    wrapped = build_schema()._schema.subscription_type.fields
    assert set(SUBSCRIPTIONS) == set(GRAPHQL.subscription_type.fields)
    for name, (query, variables) in SUBSCRIPTIONS.items():
        direct = GRAPHQL.subscription_type.fields[name].subscribe
        assert direct is not wrapped[name].subscribe, name
        ours = started_with(direct, query, variables)
        theirs = started_with(wrapped[name].subscribe, query, variables)
        assert ours == theirs, name
    jobs = started_with(GRAPHQL.subscription_type.fields["jobsChanged"].subscribe,
                        *SUBSCRIPTIONS["jobsChanged"])
    assert jobs["filter"].job_type == "pdf" and jobs["initial"] == 3
