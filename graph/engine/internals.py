"""Every use of a dependency's internals, in one place, with why.

Strawberry and graphql-core are pinned to a minor series in ``pyproject.toml`` because
the engine relies on what follows; an upgrade starts here (``tests/graph/test_fast_path.py``
compares the fast executor with graphql-core's own on 100+ documents).

- ``ExecutionContext`` (Strawberry's ``StrawberryGraphQLCoreExecutionContext``): the fast
  executor extends it; graphql-core 3.3's hooks it overrides (``execute_fields``,
  ``complete_value``, ``collect_subfields``, ``handle_field_error``,
  ``settle_in_background``, ``get_stream_usage``) change between minor releases.
  Public: the ``execution_context_class`` option, not the class.
- ``DEFINITION_BACKREF`` (``GraphQLCoreConverter``): where a graphql-core field keeps its
  Strawberry field, the only way from one to the other. No public alternative.
- ``isoformat`` (``strawberry.schema.types.base_scalars``): recognises Strawberry's
  date/time scalars, so they serialize without a call per value. None public.
- ``convert_arguments`` (``strawberry.types.arguments``): input-object arguments become
  Strawberry inputs exactly as its resolver wrapper makes them. None public.
- ``graphql_schema``: the graphql-core schema Strawberry keeps as ``_schema``, where
  ``graph/engine/filters.py`` coerces a list filter given outside GraphQL (the export
  endpoints) by the schema's own input rules. None public.
- ``gather_with_cancel`` (``graphql.pyutils``): sibling fields awaited as graphql-core
  3.3 awaits them, the rest cancelled on an error (``asyncio.gather`` does not cancel).
- ``validate_document`` (``strawberry.schema.schema``): Strawberry's validation with its
  rule set, once per document. Public: ``graphql.validate`` with the rules by hand.
- ``provided_operation_name``: the ``operationName`` a request gave, which Strawberry's
  ``ExecutionContext`` keeps private (its public ``operation_name`` falls back to the first
  operation's, and Strawberry then runs that one, where the GraphQL spec refuses).
- ``EXECUTOR_OPTION``: graphql-core 3.3's ``execute(executor_class=...)``, which
  Strawberry's private ``_graphql_core.execution_context_class_kwargs`` only names.

Overridden hooks of public classes, which a minor release may rename: graphql-core's
``ValuesOfCorrectTypeRule.is_valid_value_node`` (``graph/engine/literals.py``, checked by
``tests/graph/test_dates.py``) and Strawberry's WebSocket handlers' ``handle_message`` and
``ASGIWebSocketAdapter.iter_json`` (``graph/server/sockets.py``, checked by
``tests/graph/test_socket_messages.py``).

``is_leaf_type`` replaces ``strawberry.types.arguments._is_leaf_type`` with the public
``strawberry.scalars.is_scalar`` and the enum definition type (a lazy type counts as
not a leaf, which only sends it through ``convert_arguments``: exact either way).
"""

from __future__ import annotations

from typing import Any

from graphql.pyutils.gather_with_cancel import gather_with_cancel
from strawberry.scalars import is_scalar
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext as ExecutionContext
from strawberry.schema.schema import validate_document
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.types.base_scalars import isoformat
from strawberry.types.arguments import convert_arguments
from strawberry.types.enum import StrawberryEnumDefinition

DEFINITION_BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF
EXECUTOR_OPTION = "executor_class"


def graphql_schema(schema: Any) -> Any:
    return schema._schema


def provided_operation_name(execution_context: Any) -> str | None:
    return execution_context._provided_operation_name  # type: ignore[no-any-return]


def is_leaf_type(type_: Any, scalar_registry: Any) -> bool:
    """Whether Strawberry passes an argument of this type to resolvers unconverted."""
    return is_scalar(type_, scalar_registry) or isinstance(type_, StrawberryEnumDefinition)


__all__ = [
    "DEFINITION_BACKREF",
    "EXECUTOR_OPTION",
    "ExecutionContext",
    "convert_arguments",
    "gather_with_cancel",
    "graphql_schema",
    "is_leaf_type",
    "isoformat",
    "provided_operation_name",
    "validate_document",
]
