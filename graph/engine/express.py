"""An express lane for requests whose document is already known to be valid.

Around the execution itself, Strawberry's view and ``Schema.execute`` spend about as
much CPU as reading one job from the database: a request adapter, content-type
parsing, a context manager per extension per request, a middleware manager. A single
query or mutation POSTed as JSON whose document this process has already parsed and
validated without error needs none of that, so the lane does exactly what that path
would do, in one place: the same context (and authentication), graphql-core's
``execute`` with the same executor and arguments, the error codes ``ErrorCodes`` gives,
the record ``Observability`` makes, and the same response bytes, status and media type.

Everything else takes Strawberry's path, unchanged: a document seen for the first time
(which puts it in the cache), one that failed validation, GET, batches, subscriptions,
streaming Accept headers, an unknown ``operationName`` and any malformed body.
``tests/graph/test_express.py`` sends each request both ways and compares the answers.
"""

from __future__ import annotations

import time
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode, OperationType, execute
from starlette.requests import Request
from starlette.responses import Response
from strawberry.execution import optimized_is_awaitable
from strawberry.schema._graphql_core import execution_context_class_kwargs

from graph.schema.core.errors import client_error, code_of
from graph.server.observability import record_operation

if TYPE_CHECKING:
    from graph.server.http import GraphQLView

BODY_KEYS = frozenset({"query", "variables", "operationName", "extensions"})
STREAMING = ("multipart", "event-stream")


def _operation(document: Any, name: str | None) -> OperationDefinitionNode | None:
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


def _body_fields(data: Any) -> tuple[str, dict | None, str | None, dict | None] | None:
    if type(data) is not dict or not data.keys() <= BODY_KEYS:
        return None
    query, variables = data.get("query"), data.get("variables")
    name, extensions = data.get("operationName"), data.get("extensions")
    if (type(query) is not str or (variables is not None and type(variables) is not dict)
            or (name is not None and type(name) is not str)
            or (extensions is not None and type(extensions) is not dict)):
        return None
    return query, variables, name, extensions


class ExpressLane:
    def __init__(self, view: GraphQLView) -> None:
        self.view = view
        schema = view.schema
        self.documents = getattr(schema, "documents", None)
        self.graphql_schema = schema._schema
        self.executor = execution_context_class_kwargs(schema.execution_context_class)

    async def answer(self, request: Request, media: str) -> Response | None:
        """The response to ``request``, or None when it must take Strawberry's path."""
        headers = request.headers
        if (self.documents is None or request.method != "POST"
                or headers.get("content-type", "").partition(";")[0].strip().lower()
                != "application/json"
                or any(kind in headers.get("accept", "") for kind in STREAMING)):
            return None
        try:
            fields = _body_fields(self.view.decode_json(await request.body()))
        except ValueError:
            return None
        if fields is None:
            return None
        query, variables, name, extensions = fields
        document = self.documents.ready(query)
        if document is None:
            return None
        operation = _operation(document, name)
        if operation is None or operation.operation is OperationType.SUBSCRIPTION:
            return None
        context = await self.view.get_context(request, None)
        started = time.perf_counter()
        try:
            result = execute(
                self.graphql_schema, document, root_value=None, context_value=context,
                variable_values=variables, operation_name=name,
                is_awaitable=optimized_is_awaitable, operation_extensions=extensions,
                **self.executor)
            if isawaitable(result):
                result = await result
        except Exception as exc:  # as Schema.execute: masked and logged by client_error
            result = ExecutionResult(None, [GraphQLError(str(exc), original_error=exc)])
        errors = [client_error(error) for error in result.errors or ()]
        record_operation(context, operation.name.value if operation.name else None,
                         operation.operation.value, time.perf_counter() - started,
                         [code_of(error) for error in errors])
        payload: dict[str, Any] = {"data": result.data}
        if errors:
            payload["errors"] = [error.formatted for error in errors]
        status = self.view.response_status(payload, errors, media)
        return Response(self.view.encode_json(payload), status_code=status, media_type=media)
