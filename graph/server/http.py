"""GraphQL over HTTP as the GraphQL-over-HTTP specification describes it.

- ``Accept: application/graphql-response+json`` gets that media type, and
  requests that fail before execution (syntax, validation) get 400 without a
  ``data`` entry; ``application/json`` (and no Accept) keeps 200 for them.
- A mutation over GET is 405; an unacceptable Accept is 406.
- A subscription streams as Server-Sent Events (``Accept: text/event-stream``, the
  graphql-sse protocol's distinct connections mode) or as Apollo's multipart
  subscriptions (``multipart/mixed;subscriptionSpec=1.0``); asked for as plain JSON it
  is 406 UNSUPPORTED_TRANSPORT.
- A body above the configured size is refused with 413 before it is parsed.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from functools import partial
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import GraphQLError, get_operation_ast
from graphql import OperationType as DocumentOperation
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from graph.auth.tokens import Authenticator, UnauthenticatedError
from graph.config.settings import Settings
from graph.engine.sharing import ENCODINGS
from graph.schema.core.context import Context
from graph.schema.core.errors import client_error, code_of
from repository.access import ANONYMOUS
from repository.database import deadline
from repository.errors import ErrorCode

from . import bodies
from .error_bodies import error_body
from .expiry import close_on_expiry
from .express import ExpressRequests
from .fanout import FanOut
from .graphiql import graphiql_page
from .sockets import GraphQLWsHandler, TextFrames, TransportWsHandler

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
REQUEST_ERROR_CODES = {ErrorCode.GRAPHQL_PARSE_FAILED, ErrorCode.GRAPHQL_VALIDATION_FAILED,
                       ErrorCode.QUERY_TOO_COMPLEX}
"""Errors that mean the operation never ran (the spec's request errors)."""


SUBSCRIPTION_PROTOCOLS = (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL,
                          MULTIPART_SUBSCRIPTION_PROTOCOL, GRAPHQL_SSE_PROTOCOL)
"""Both WebSocket protocols, and over HTTP Apollo's multipart subscriptions and
Server-Sent Events (graphql-sse's distinct connections mode)."""


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header; None when nothing fits."""
    if not accept:
        return JSON
    offered = []
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        offered.append((media.lower(), quality))
    for preferred in sorted(offered, key=lambda item: -item[1]):
        media, quality = preferred
        if quality <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            return GRAPHQL_RESPONSE
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return None


TOKEN_PARAMS = ("Authorization", "authorization", "authToken", "token")

def strip_request_error(payload: GraphQLHTTPResponse | dict[str, Any], errors: Any) -> bool:
    """Whether the answer is a request error (the operation never ran, for instance a
    variable of the wrong type); if so its ``data`` entry goes, as the spec wants."""
    if payload.get("data") is None and {code_of(e) for e in errors or ()} & REQUEST_ERROR_CODES:
        payload.pop("data", None)
        return True
    return False


class CodedHTTPException(HTTPException):
    """An HTTP refusal whose body carries ``code`` instead of BAD_REQUEST."""

    def __init__(self, status_code: int, reason: str, code: ErrorCode) -> None:
        super().__init__(status_code, reason)
        self.code = code


def stream_needed() -> CodedHTTPException:
    return CodedHTTPException(
        406, "a subscription over HTTP needs `Accept: text/event-stream` (Server-Sent Events) "
        "or `Accept: multipart/mixed;subscriptionSpec=1.0`, or a WebSocket",
        ErrorCode.UNSUPPORTED_TRANSPORT)


async def disconnected(request: Request) -> None:
    """Returns once the HTTP client has disconnected (its body has been read by then, so
    the next ASGI message is ``http.disconnect``)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class GraphQLView(GraphQL[Context, None]):
    websocket_adapter_class = TextFrames
    graphql_transport_ws_handler_class = TransportWsHandler
    graphql_ws_handler_class = GraphQLWsHandler

    def __init__(self, schema: Any, *, settings: Settings, store_getter: Any,
                 hub_getter: Any = None, **options: Any) -> None:
        super().__init__(schema, graphql_ide="graphiql" if settings.graphiql else None,
                         allowed_origins=settings.cors_origins,
                         subscription_protocols=SUBSCRIPTION_PROTOCOLS,
                         # enforced with a coded error in graph/realtime/subscriptions.py
                         max_subscriptions_per_connection=None,
                         connection_init_wait_timeout=timedelta(
                             seconds=settings.websocket_init_timeout_seconds),
                         **options)
        self.settings = settings
        self.authenticator = Authenticator(settings)
        self.store_getter = store_getter
        self.hub_getter = hub_getter or (lambda: None)
        self.express = ExpressRequests(self)
        self.fanout = FanOut(settings)
        """Parked WebSocket subscriptions (``fanout.py``)."""

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page(request)  # ours: assets from the package, not a CDN

    def __call__(  # type: ignore[override]  # returns the awaitable: no frame of ours
        self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            # handed on, not awaited here: no frame of ours for as long as a WebSocket lasts
            return super().__call__(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        media = negotiate(request.headers.get("accept"))
        if media is None and self._get_stream_transport_from_headers(request.headers):
            media = JSON  # a stream's events are framed by its transport; refusals are JSON
        if media is None and not self.should_render_graphql_ide(
                self.request_adapter_class(request)):
            response: Response = JSONResponse(
                error_body(ErrorCode.NOT_ACCEPTABLE, f"responses are {GRAPHQL_RESPONSE} or {JSON}"),
                status_code=406)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["media_type"] = media or JSON
        try:
            # one deadline for all the request's database work (DATABASE_UNAVAILABLE after)
            with deadline(self.settings.mongodb_timeout_ms / 1000):
                express = await self.express.answer(request, media) if media else None
                response = express or await self.run(request)
        except UnauthenticatedError as exc:
            response = self._json({"errors": [{"message": exc.message,
                                               "extensions": {"code": exc.code}}]},
                                   media or JSON, 401)
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        except HTTPException as exc:
            response = self._json(error_body(getattr(exc, "code", ErrorCode.BAD_REQUEST),
                                             exc.reason), media or JSON, exc.status_code)
        await response(scope, receive, send)

    def response_status(self, payload: dict[str, Any], errors: Any, media: str) -> int:
        """400 for a request error answered as graphql-response+json, else 200."""
        return 400 if strip_request_error(payload, errors) and media == GRAPHQL_RESPONSE else 200

    def _json(self, data: Any, media: str, status: int) -> Response:
        return Response(self.encode_json(data), status_code=status, media_type=media)

    def encode_json(self, data: object) -> bytes:
        """orjson; a subscription event's result shared by several subscribers (an HTTP
        stream's ``{"data": ...}``) is encoded once for all of them."""
        return ENCODINGS.encoded(data, orjson.dumps)

    def decode_json(self, data: str | bytes) -> object:
        """Strict JSON, nested no deeper than the configured limit (``bodies.decode``)."""
        return bodies.decode(data, self.settings.max_body_depth)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return super().parse_json(data)
        except HTTPException as exc:  # the depth limit is named; other bad JSON is not
            if isinstance(exc.__cause__, bodies.TooDeep):
                raise HTTPException(400, f"The request body is refused: {exc.__cause__.msg} "
                                    "(JOBGRAPH_MAX_BODY_DEPTH)") from None
            raise

    async def parse_http_body(self, request: Any) -> Any:
        try:
            data = await super().parse_http_body(request)
        except AttributeError:  # Strawberry's ``data.get`` on a body of null, "text", 1, ...
            raise HTTPException(400, "The request body must be a JSON object") from None
        for item in data if isinstance(data, list) else (data,):
            if not isinstance(item.operation_name, str | None):
                raise HTTPException(400, "The GraphQL operation's `operationName` must be a "
                                    "string or null, if provided.")
        if (not isinstance(data, list) and data.protocol != "http"
                and negotiate(request.headers.get("accept")) is not None
                and not self._is_subscription(data)):
            data.protocol = "http"
        return data

    def _is_subscription(self, data: Any) -> bool:
        """Whether the operation is a subscription. Strawberry streams whatever the Accept
        header allows a stream for, but clients such as urql list text/event-stream and
        multipart/mixed for every request: what JSON can answer, JSON answers."""
        documents = self.express.lane.documents
        if documents is None or not isinstance(data.query, str):
            return False
        try:
            document, _ = documents.parsed(data.query)
        except GraphQLError:
            return False  # answered (as JSON) by Strawberry's parse error
        operation = get_operation_ast(document, data.operation_name)
        return operation is not None and operation.operation is DocumentOperation.SUBSCRIPTION

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        if isinstance(request, WebSocket):
            # The connection-init payload authenticates the socket (see realtime).
            identity = None
        else:
            identity = self.authenticator.identify(request.headers)
        return Context(
            store=self.store_getter(),
            settings=self.settings,
            principal=identity.principal if identity else ANONYMOUS,
            request=request,
            hub=self.hub_getter(),
            expires_at=identity.expires_at if identity else None,
            caller_gone=None if isinstance(request, WebSocket) else partial(
                disconnected, request),
        )

    async def on_ws_connect(self, context: Context) -> dict[str, Any] | None:
        """Authenticate a WebSocket from its connection-init payload, else its handshake.

        A bad token refuses the connection; a good one's expiry closes the socket
        with 4401 at that moment.
        """
        params = context.connection_params or {}
        token = next((params[key] for key in TOKEN_PARAMS if isinstance(params.get(key), str)),
                     None)
        if token is not None:
            headers = {"authorization": token if " " in token else f"Bearer {token}"}
        else:
            headers = {key.lower(): value for key, value in params.items()
                       if isinstance(value, str)}
            headers = {**dict(context.request.headers), **headers}
        try:
            identity = self.authenticator.identify(headers)
        except UnauthenticatedError as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code}) from None
        context.authenticate(identity.principal, identity.expires_at)
        context.connection_params = None  # verified: keep no copy of the token
        if identity.expires_at is not None:
            close_on_expiry(context.request, identity.expires_at)
        return {"userId": identity.principal.user_id}

    async def execute_single(self, request: Any, request_adapter: Any, *args: Any,
                             **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(request, request_adapter, *args, **kwargs)
        except HTTPException as exc:
            cause = exc.__cause__
            if not isinstance(cause, InvalidOperationTypeError):
                raise
            if cause.operation_type is OperationType.SUBSCRIPTION:  # see Schema.execute
                raise stream_needed() from None
            if request_adapter.method == "GET":
                raise HTTPException(405, "mutations need POST") from None
            raise

    async def process_result(self, request: Request, result: ExecutionResult
                             ) -> GraphQLHTTPResponse:
        if result.errors:
            # Parse errors are raised inside ParserCache's hook and so escape the schema's
            # extensions (ErrorCodes never sees them); map whatever still lacks a code.
            result.errors = [error if "code" in (error.extensions or {}) else client_error(error)
                             for error in result.errors]
        data = await super().process_result(request, result)
        if strip_request_error(data, result.errors):
            request.state.request_error = True
        return data

    async def get_sub_response(self, request: Request) -> Response:  # type: ignore[override]
        sub_response = await super().get_sub_response(request)
        request.state.sub_response = sub_response
        return sub_response

    def run(  # type: ignore[override]  # a plain function handing on an awaitable
        self, request: Any, context: Any = None, root_value: Any = None) -> Awaitable[Any]:
        if isinstance(request, WebSocket):  # handed on: no frame of ours per connection
            return super().run(request, context or UNSET, root_value or UNSET)
        return self._run_http(request, context, root_value)

    async def _run_http(self, request: Any, context: Any, root_value: Any) -> Any:
        response = await super().run(request, context or UNSET, root_value or UNSET)
        if isinstance(request, Request) and isinstance(response, Response):
            media = request.scope.get("state", {}).get("media_type", JSON)
            if response.media_type == JSON or response.headers.get("content-type", "").startswith(
                    JSON):
                response.headers["content-type"] = media
                if media == GRAPHQL_RESPONSE and getattr(request.state, "request_error", False):
                    response.status_code = 400
        return response
