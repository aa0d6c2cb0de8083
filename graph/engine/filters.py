"""A list query's ``filter`` argument given outside GraphQL (the export endpoints' JSON
query parameter), coerced by the schema's own rules: the same input type, the same
scalars (dates), the same enums, the same errors. Whatever the list's filter input gains,
this gains too, with no code here."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, get_variable_values, parse

from repository.errors import ValidationError

from .internals import convert_arguments, graphql_schema


class ListFilter:
    """The ``filter`` argument of ``Query.<field>``."""

    def __init__(self, schema: Any, field: str) -> None:
        self.schema = schema
        definition = schema.get_field_for_type(field, "Query")
        [self.argument] = [a for a in definition.arguments if a.python_name == "filter"]
        type_name = graphql_schema(schema).query_type.fields[field].args["filter"].type
        document = parse(f"query($filter: {type_name}) {{ __typename }}")
        operation = document.definitions[0]
        assert isinstance(operation, OperationDefinitionNode)
        self.definitions = operation.variable_definitions

    def empty(self) -> Any:
        """The input with nothing given: every object."""
        return self.argument.type.of_type()

    def parse(self, raw: str | None, decode: Callable[[str], Any] = json.loads) -> Any:
        """The Strawberry input (None when ``raw`` is None); VALIDATION_ERROR naming
        ``filter`` when it is not JSON or does not fit the input type.

        ``decode`` is the server's strict JSON reader, so that a lone surrogate or nesting
        past the body depth limit is refused here as in a /graphql body, not a 500 later."""
        if raw is None:
            return None
        try:
            value = decode(raw)
        except (ValueError, RecursionError):
            raise ValidationError("filter", "is not valid JSON (or nests too deeply)"
                                  ) from None
        coerced = get_variable_values(graphql_schema(self.schema), self.definitions or (),
                                      {"filter": value}, max_errors=1)
        if isinstance(coerced, list):
            error: GraphQLError = coerced[0]
            raise ValidationError("filter", error.message.replace("Variable '$filter' has ",
                                                                  ""))
        converter = self.schema.schema_converter
        return convert_arguments(coerced.coerced, [self.argument], converter.scalar_registry,
                                 self.schema.config)["filter"]
