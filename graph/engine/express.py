"""Execution of documents this process has already validated, straight through graphql-core.

Around the execution itself, Strawberry's ``Schema.execute`` spends about as much CPU as
reading one job from the database: a context manager per extension per request and a
middleware manager (``Schema.stream`` the same per subscription, plus a context manager
per hook around every result). An operation whose document the ``DocumentCache`` already
parsed and validated without error needs none of that: the lane runs graphql-core's
``execute`` or ``subscribe`` with the schema's executor and the same arguments Strawberry
would pass. Which operations may take it, and what is done around it, is the caller's
business (``graph/server/express.py`` for HTTP, ``graph/schema/express.py`` for
subscriptions).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from inspect import isawaitable
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    subscribe,
)
from strawberry.execution import optimized_is_awaitable

from .internals import EXECUTOR_OPTION

QUERIES_AND_MUTATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
SUBSCRIPTIONS = frozenset({OperationType.SUBSCRIPTION})


def as_graphql_error(error: BaseException) -> GraphQLError:
    """An exception as Strawberry reports it (its ``_coerce_error``): a GraphQLError as it
    is, anything else wrapped."""
    if isinstance(error, GraphQLError):
        return error
    return GraphQLError(str(error), original_error=error if isinstance(error, Exception)
                        else None)


def pick_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation graphql-core will run; None when it would refuse to pick one."""
    found = None
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if name is None:
            if found is not None:
                return None
            found = definition
        elif definition.name is not None and definition.name.value == name:
            return definition
    return found


class ExpressLane:
    """Prepared queries and mutations of one Strawberry schema, executed directly."""

    def __init__(self, schema: Any) -> None:
        self.documents = getattr(schema, "documents", None)
        self.graphql_schema = schema._schema
        executor = schema.execution_context_class
        self.executor = {EXECUTOR_OPTION: executor} if executor is not None else {}

    def prepared(self, query: str, name: str | None,
                 kinds: Collection[OperationType] = QUERIES_AND_MUTATIONS,
                 ) -> tuple[DocumentNode, OperationDefinitionNode] | None:
        """The validated document and its operation, if one of ``kinds``; None if not
        known valid."""
        if self.documents is None:
            return None
        document = self.documents.ready(query)
        if document is None:
            return None
        operation = pick_operation(document, name)
        if operation is None or operation.operation not in kinds:
            return None
        return document, operation

    async def execute(self, document: DocumentNode, context: Any, variables: dict[str, Any] | None,
                      name: str | None, extensions: dict[str, Any] | None) -> ExecutionResult:
        try:
            result = execute(
                self.graphql_schema, document, root_value=None, context_value=context,
                variable_values=variables, operation_name=name,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # no TypeGuard
                operation_extensions=extensions,
                **self.executor)
            if isawaitable(result):
                result = await result
        except Exception as exc:  # as Schema.execute: the caller maps (and masks) errors
            result = ExecutionResult(None, [as_graphql_error(exc)])
        return result

    async def subscribe(self, document: DocumentNode, context: Any, root: Any,
                        variables: dict[str, Any] | None, name: str | None,
                        extensions: dict[str, Any] | None
                        ) -> AsyncIterator[ExecutionResult] | ExecutionResult:
        """The response stream, or the result that refused it (bad variables, a resolver
        that raised before its source existed). Raises what ``subscribe`` raised, which
        Strawberry answers differently (a result in the stream, not a refusal)."""
        result = subscribe(self.graphql_schema, document, root_value=root, context_value=context,
                           variable_values=variables, operation_name=name,
                           operation_extensions=extensions, **self.executor)
        if isawaitable(result):
            result = await result
        return result
