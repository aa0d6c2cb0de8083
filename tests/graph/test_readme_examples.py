"""README.md's examples are checked against the schema the code builds, so the docs
cannot drift from the API: every ```graphql block validates, every variables block fits
its operation, every query and mutation is shown, and every error code is listed."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    FieldNode,
    GraphQLSchema,
    OperationDefinitionNode,
    get_variable_values,
    parse,
    validate,
)

from graph.schema.root import build_schema
from repository.errors import ErrorCode, JobErrorCode

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)


def readme() -> str:
    return README.read_text()


def fenced_blocks(text: str) -> list[tuple[str, str, int, int]]:
    """(language, body, start, end) of every fenced block."""
    return [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(text)]


def examples() -> list[tuple[str, dict[str, Any] | None]]:
    """Each GraphQL block, with the JSON block right after it (its variables), if any."""
    text = readme()
    blocks = fenced_blocks(text)
    found = []
    for index, (language, body, _, end) in enumerate(blocks):
        if language != "graphql":
            continue
        variables = None
        if index + 1 < len(blocks):
            next_language, next_body, next_start, _ = blocks[index + 1]
            if next_language == "json" and not text[end:next_start].strip():
                variables = json.loads(next_body)
        found.append((body, variables))
    return found


def operation_of(document: str) -> OperationDefinitionNode:
    [operation] = [d for d in parse(document).definitions
                   if isinstance(d, OperationDefinitionNode)]
    return operation


def example_id(example: tuple[str, Any]) -> str:
    operation = operation_of(example[0])
    return operation.name.value if operation.name else "anonymous"


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema()._schema


EXAMPLES = examples()


def test_readme_has_graphql_examples() -> None:
    assert len(EXAMPLES) >= 30


@pytest.mark.parametrize(("document", "variables"), EXAMPLES,
                         ids=[example_id(e) for e in EXAMPLES])
def test_readme_example_is_valid_against_the_schema(
        schema: GraphQLSchema, document: str, variables: dict[str, Any] | None) -> None:
    assert validate(schema, parse(document)) == []
    if variables is not None:
        coerced = get_variable_values(schema, operation_of(document).variable_definitions,
                                      variables)
        assert not isinstance(coerced, list), [error.message for error in coerced]


def test_readme_shows_every_query_and_mutation(schema: GraphQLSchema) -> None:
    shown: dict[str, set[str]] = defaultdict(set)
    for document, _ in EXAMPLES:
        operation = operation_of(document)
        shown[operation.operation.value] |= {
            selection.name.value for selection in operation.selection_set.selections
            if isinstance(selection, FieldNode)}

    assert schema.query_type is not None and schema.mutation_type is not None
    assert set(schema.query_type.fields) - shown["query"] == set()
    assert set(schema.mutation_type.fields) - shown["mutation"] == set()


def test_readme_curl_example_is_a_valid_request(schema: GraphQLSchema) -> None:
    shell = [body for language, body, _, _ in fenced_blocks(readme()) if language == "sh"]
    bodies = [match for body in shell for match in re.findall(r"-d '(.*?)'", body, re.DOTALL)]

    assert bodies, "the README should show a curl request with a JSON body"
    for body in bodies:
        request = json.loads(body)
        document = parse(request["query"])
        assert validate(schema, document) == []
        operation = operation_of(request["query"])
        coerced = get_variable_values(schema, operation.variable_definitions or [],
                                      request.get("variables") or {})
        assert not isinstance(coerced, list), [error.message for error in coerced]


def test_readme_error_table_lists_every_code() -> None:
    text = readme()
    errors = text[text.index("## Errors"):text.index("## Pagination")]

    missing = [code for code in ErrorCode if f"| `{code}` |" not in errors]

    assert missing == []


def test_readme_keeps_its_sections_in_order() -> None:
    text = readme()

    positions = [text.index(heading) for heading in (
        "## Quick start", "## GraphQL operations", "## Errors", "## Pagination")]

    assert positions == sorted(positions)


def test_readme_lists_every_job_error_code_jobgraph_sets() -> None:
    text = readme()
    section = text[text.index("### Job error codes"):text.index("## Pagination")]

    missing = [code for code in JobErrorCode if f"| `{code}` |" not in section]

    assert missing == []
