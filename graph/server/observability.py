"""Request ids, one log line per GraphQL request, and the request metrics.

``RequestObservability`` (ASGI middleware) gives every HTTP request and WebSocket a
request id (the client's ``X-Request-Id`` when it is sane, else a new one), echoes it
in the response, counts open WebSockets and logs one line per HTTP request.
``Observability`` (schema extension) gives every error its code (``ErrorCodes``) and
measures each GraphQL operation: over HTTP it fills in the request's line; over a
WebSocket it logs one line per operation.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql.error import GraphQLError
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.types import StreamExecutionResult

from graph.realtime.parking import Parked
from graph.schema.core.errors import ErrorCodes, client_error, code_of
from repository.errors import ErrorCode

from .expiry import forget as forget_expiry
from .metrics import Metrics

logger = logging.getLogger("jobgraph.request")

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
GRAPHQL_PATH = "/graphql"
MAX_REFUSAL_BYTES = 16 * 1024
CLIENT_GONE = 499
"""The status a request is logged with when its client left before it was answered
(nginx's "client closed request"); it is sent to no one."""
# Refusals that happen before any operation runs, by HTTP status.
STATUS_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    405: ErrorCode.BAD_REQUEST,
    406: ErrorCode.NOT_ACCEPTABLE,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    500: ErrorCode.INTERNAL_SERVER_ERROR,
}


@dataclass
class Observation:
    """What one HTTP request or WebSocket is known by; kept in ``scope["state"]``."""

    request_id: str
    transport: str
    operation_name: str | None = None
    operation_type: str | None = None
    user_id: str | None = None
    error_codes: list[str] = field(default_factory=list)


def request_id_of(scope: Scope) -> str | None:
    observation = (scope.get("state") or {}).get("observation")
    return observation.request_id if observation else None


def _metrics_of(scope: Scope) -> Metrics | None:
    app = scope.get("app")
    return getattr(getattr(app, "state", None), "metrics", None)


class RequestObservability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the coroutine instead of awaiting it: one frame fewer for as long as a
        # WebSocket lasts.
        if scope["type"] not in ("http", "websocket"):
            return self.app(scope, receive, send)
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = (incoming if incoming and _SANE_REQUEST_ID.fullmatch(incoming)
                      else uuid.uuid4().hex)
        observation = Observation(request_id, scope["type"])
        scope.setdefault("state", {})["observation"] = observation
        if scope["type"] == "http":
            return self._http(scope, receive, send, observation)
        return self._websocket(scope, receive, send, observation)

    async def _http(self, scope: Scope, receive: Receive, send: Send,
                    observation: Observation) -> None:
        started = time.perf_counter()
        status = 500
        refusal = bytearray()  # the body of an error answered before any operation ran
        is_graphql = scope.get("path") == GRAPHQL_PATH

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = observation.request_id
            elif (message["type"] == "http.response.body" and is_graphql and status >= 400
                  and not observation.error_codes and len(refusal) < MAX_REFUSAL_BYTES):
                refusal.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # gone before its body was read: nothing to answer and nothing went wrong
            # here (it was a 500, a traceback and an INTERNAL_SERVER_ERROR in /metrics)
            status = CLIENT_GONE
        finally:
            if (is_graphql and status >= 400 and status != CLIENT_GONE
                    and not observation.error_codes):
                self._count_refusal(scope, observation, status, bytes(refusal))
            self._log_http(scope, observation, status, time.perf_counter() - started)

    def _count_refusal(self, scope: Scope, observation: Observation, status: int,
                       body: bytes) -> None:
        """Refused before an operation ran (401, 406, 413, a mutation over GET...): the
        codes are the ones in the body the client got, else named after the status."""
        try:
            errors = orjson.loads(body)["errors"]
            codes = [error["extensions"]["code"] for error in errors]
        except Exception:
            code = STATUS_CODES.get(status)
            codes = [code.value if code else f"HTTP_{status}"]
        observation.error_codes.extend(codes)
        if (metrics := _metrics_of(scope)) is not None:
            for code in codes:
                metrics.error(code)

    def _log_http(self, scope: Scope, observation: Observation, status: int,
                  seconds: float) -> None:
        path = scope.get("path", "")
        is_graphql = path == GRAPHQL_PATH
        # Probes and scrapes every few seconds are noise at INFO.
        level = logging.INFO if is_graphql or status >= 500 else logging.DEBUG
        logger.log(level, "%s %s %d", scope.get("method"), path, status, extra={
            "request_id": observation.request_id,
            "transport": "http",
            "method": scope.get("method"),
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "operation_name": observation.operation_name,
            "operation_type": observation.operation_type,
            "user_id": observation.user_id,
            "error_codes": observation.error_codes,
        })

    async def _websocket(self, scope: Scope, receive: Receive, send: Send,
                         observation: Observation) -> None:
        metrics = _metrics_of(scope)
        accepted_at: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal accepted_at
            if message["type"] == "websocket.accept" and accepted_at is None:
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", observation.request_id.encode()))
                message = {**message, "headers": headers}
                accepted_at = time.perf_counter()
                if metrics is not None:
                    metrics.websocket_opened()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            forget_expiry(scope)
            if accepted_at is not None:
                if metrics is not None:
                    metrics.websocket_closed()
                logger.info("WebSocket %s closed", scope.get("path", ""), extra={
                    "request_id": observation.request_id,
                    "transport": "websocket",
                    "path": scope.get("path", ""),
                    "duration_ms": round((time.perf_counter() - accepted_at) * 1000, 2),
                })


class Observability(ErrorCodes):
    """Per operation: every error's code (``ErrorCodes``), then name, type, caller,
    duration and codes to metrics and logs.

    One extension for both: Strawberry builds a context manager per hook of each
    extension, per request, and a subscription holds its ``on_operation`` ones for as
    long as it runs (about 1.4 KB each with thousands of subscribers).
    """

    def __init__(self, *, execution_context: Any = None) -> None:
        super().__init__()
        self.stream_codes: list[str] = []
        self.streamed = False

    @staticmethod
    def record(app_context: Any, name: str | None, operation_type: str, seconds: float,
               codes: list[str]) -> None:
        record_operation(app_context, name, operation_type, seconds, codes)

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        raised: list[str] = []
        parked = False
        try:
            yield from super().on_operation()  # gives every error of the result its code
        except Parked as handed_over:  # goes on without this pipeline: recorded at its end
            parked = True
            handed_over.finish = self._finisher(started)
            raise
        except Exception as exc:
            raised.extend(_codes_of_exception(exc))
            raise
        finally:
            if not parked:
                self._finish(time.perf_counter() - started, raised)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Counted before the result leaves: a transport that ends the stream with it (a
        refused subscription's ``error``) never resumes this hook."""
        self.streamed = True
        coding = super().on_stream_result(result)
        next(coding)  # every error coded (ErrorCodes)
        self.stream_codes.extend(code_of(e) for e in getattr(result, "errors", None) or ())
        yield
        next(coding, None)

    def _finisher(self, started: float) -> Callable[[list[str]], None]:
        """What records a parked subscription when it ends: only what the record needs,
        not this extension (which holds the operation's whole execution context)."""
        context = self.execution_context
        app_context, name = context.context, context.operation_name
        codes = list(self.stream_codes)

        def finish(later: list[str]) -> None:
            record_operation(app_context, name, "subscription",
                             time.perf_counter() - started, codes + later)

        return finish

    def _finish(self, seconds: float, raised: list[str]) -> None:
        context = self.execution_context
        if self.streamed:
            codes = self.stream_codes
        else:
            result = context.result
            codes = [code_of(e) for e in getattr(result, "errors", None) or ()]
        try:
            operation_type = context.operation_type.value
        except Exception:  # unparsable document, or no operation by that name
            operation_type = "unknown"
        record_operation(context.context, context.operation_name, operation_type, seconds,
                         codes + raised)


def record_operation(app_context: Any, name: str | None, operation_type: str, seconds: float,
                     codes: list[str]) -> None:
    """One GraphQL operation done: to the metrics, and to the request's log line (HTTP)
    or a line of its own (WebSocket)."""
    principal = getattr(app_context, "principal", None)
    user_id = getattr(principal, "user_id", None)
    scope: Scope = getattr(getattr(app_context, "request", None), "scope", None) or {}
    metrics = _metrics_of(scope)
    if metrics is not None:
        metrics.operation_finished(
            name, operation_type, None if operation_type == "subscription" else seconds, codes)
    observation: Observation | None = (scope.get("state") or {}).get("observation")
    if observation is not None and observation.transport == "http":
        observation.operation_name = name
        observation.operation_type = operation_type
        observation.user_id = user_id
        observation.error_codes.extend(codes)
        return
    logger.info("%s %s", operation_type, name or "(anonymous)", extra={
        "request_id": observation.request_id if observation else None,
        "transport": observation.transport if observation else None,
        "operation_name": name,
        "operation_type": operation_type,
        "user_id": user_id,
        "duration_ms": round(seconds * 1000, 2),
        "error_codes": codes,
    })


def _codes_of_exception(exc: Exception) -> list[str]:
    """The code a client will see for an exception that escaped the operation."""
    if isinstance(exc, GraphQLError) and exc.original_error is None:
        return [code_of(client_error(exc))]  # e.g. a syntax error raised while parsing
    if type(exc).__module__.startswith("strawberry"):
        return []  # e.g. a mutation over GET: the view answers with an HTTP status
    return [ErrorCode.INTERNAL_SERVER_ERROR.value]
