"""The express lane for GraphQL over HTTP: a request the engine can run directly.

A single query or mutation POSTed as JSON whose document this process has already
validated skips Strawberry's view; the lane does exactly what that path would do, in
one place: the same context (and authentication), the engine's execution, the error
codes ``ErrorCodes`` gives, the record ``Observability`` makes, and the same response
bytes, status and media type.

Everything else takes Strawberry's path, unchanged: a document seen for the first time
(which puts it in the cache), one that failed validation, GET, batches, subscriptions,
streaming Accept headers, an unknown ``operationName`` and any malformed body.
``tests/graph/test_express.py`` sends each request both ways and compares the answers.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from graph.engine.express import ExpressLane
from graph.schema.core.errors import client_error, code_of

from .observability import record_operation

if TYPE_CHECKING:
    from .http import GraphQLView

BODY_KEYS = frozenset({"query", "variables", "operationName", "extensions"})
STREAMING = ("multipart", "event-stream")


def _body_fields(data: Any) -> tuple[str, dict[str, Any] | None, str | None,
                                     dict[str, Any] | None] | None:
    if type(data) is not dict or not data.keys() <= BODY_KEYS:
        return None
    query, variables = data.get("query"), data.get("variables")
    name, extensions = data.get("operationName"), data.get("extensions")
    if (type(query) is not str or (variables is not None and type(variables) is not dict)
            or (name is not None and type(name) is not str)
            or (extensions is not None and type(extensions) is not dict)):
        return None
    return query, variables, name, extensions


class ExpressRequests:
    def __init__(self, view: GraphQLView) -> None:
        self.view = view
        self.lane = ExpressLane(view.schema)

    async def answer(self, request: Request, media: str) -> Response | None:
        """The response to ``request``, or None when it must take Strawberry's path."""
        headers = request.headers
        if (self.lane.documents is None or request.method != "POST"
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
        prepared = self.lane.prepared(query, name)
        if prepared is None:
            return None
        document, operation = prepared
        context = await self.view.get_context(request, None)
        started = time.perf_counter()
        result = await self.lane.execute(document, context, variables, name, extensions)
        errors = [client_error(error) for error in result.errors or ()]
        record_operation(context, operation.name.value if operation.name else None,
                         operation.operation.value, time.perf_counter() - started,
                         [code_of(error) for error in errors])
        payload: dict[str, Any] = {"data": result.data}
        if errors:
            payload["errors"] = [error.formatted for error in errors]
        status = self.view.response_status(payload, errors, media)
        return Response(self.view.encode_json(payload), status_code=status, media_type=media)
