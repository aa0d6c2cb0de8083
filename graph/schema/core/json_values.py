"""The ``JSON`` scalar, as Strawberry defines it, but for literals naming variables.

graphql-core reads a JSON literal (``parameters: {k: $p}``) as it is, variables and all;
a variable the request leaves out became graphql-core's ``Undefined`` sentinel inside the
value, which reached the database encoder (a VALIDATION_ERROR naming a class of
graphql-core's). Here such an entry is left out, as in an input object, and such a list
item is null, as in a list of a nullable type (graphql-js does both)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import ListValueNode, ObjectValueNode, ValueNode, VariableNode
from graphql.utilities import value_from_ast_untyped
from strawberry.scalars import JSON

SPECIFICATION = ("https://ecma-international.org/wp-content/uploads/"
                 "ECMA-404_2nd_edition_december_2017.pdf")


def json_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    if isinstance(node, ObjectValueNode):
        return {field.name.value: json_literal(field.value, variables)
                for field in node.fields if not _missing(field.value, variables)}
    if isinstance(node, ListValueNode):
        return [None if _missing(item, variables) else json_literal(item, variables)
                for item in node.values]
    return value_from_ast_untyped(node, variables)


def _missing(node: ValueNode, variables: dict[str, Any] | None) -> bool:
    return isinstance(node, VariableNode) and node.name.value not in (variables or {})


JSONScalar = strawberry.scalar(
    name="JSON",
    description=("The `JSON` scalar type represents JSON values as specified by "
                 f"[ECMA-404]({SPECIFICATION})."),
    specified_by_url=SPECIFICATION,
    serialize=lambda value: value,
    parse_value=lambda value: value,
    parse_literal=json_literal,
)

SCALARS: dict[object, Any] = {JSON: JSONScalar}
"""For ``StrawberryConfig(scalar_map=...)``."""
