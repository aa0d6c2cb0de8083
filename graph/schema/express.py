"""Subscriptions of documents this process has already validated, past Strawberry's
operation pipeline.

``Schema.stream`` builds, per subscription, an execution context, an instance of every
extension, a context manager per hook (parse, validate, execute) and one more around each
result; in a reconnect storm that was about a fifth of what a subscriber cost to connect.
A subscription whose document the ``DocumentCache`` already validated without error (and
whose operation graphql-core would pick) takes this stream instead: graphql-core's
``subscribe`` through the engine's express lane, and around it what those extensions do
for a subscription, in one place: every error coded as ``ErrorCodes`` codes it, and the
operation recorded as ``Observability`` records it (``ErrorCodes.record``), when the
stream ends or, for a parked subscription, when its parking ends.

It yields what Strawberry's ``_stream`` yields, so every transport (both WebSocket
protocols, SSE, multipart) reads it unchanged: a ``PreExecutionError`` when graphql-core
refuses the operation (bad variables, a resolver that raised before its source existed),
else an ``ExecutionResult`` per event, and one with the error when the source raises.
``tests/clients/test_express_subscriptions.py`` runs each subscription both ways and
compares the frames.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

from graphql import DocumentNode
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from graph.engine.express import ExpressLane, as_graphql_error
from graph.realtime.parking import Parked

from .core.errors import client_error, code_of

Recorder = Callable[[Any, str | None, str, float, list[str]], None]


async def express_stream(lane: ExpressLane, record: Recorder, document: DocumentNode,
                         operation_name: str | None, context: Any, root: Any,
                         variables: dict[str, Any] | None, name: str | None,
                         extensions: dict[str, Any] | None
                         ) -> AsyncGenerator[ExecutionResult, None]:
    """The results of one subscription (see the module doc); ``operation_name`` is the name
    it is recorded under, ``name`` the ``operationName`` the client gave."""
    started = time.perf_counter()
    codes: list[str] = []

    def coded(result: ExecutionResult) -> ExecutionResult:
        if result.errors:
            result.errors = [client_error(error) for error in result.errors]
            codes.extend(code_of(error) for error in result.errors)
        return result

    parked = False
    try:
        try:
            source = await lane.subscribe(document, context, root, variables, name, extensions)
        except Exception as exc:  # as Strawberry's: a result in the stream, not a refusal
            yield coded(ExecutionResult(data=None, errors=[as_graphql_error(exc)]))
            return
        if isinstance(source, GraphQLExecutionResult):
            yield coded(PreExecutionError(data=None, errors=source.errors))
            return
        try:
            async with aclosing(source):  # type: ignore[type-var]  # an async generator
                async for result in source:
                    yield coded(ExecutionResult(data=result.data, errors=result.errors))
        except Exception as exc:  # graphql-core lets the source's own errors through
            yield coded(ExecutionResult(data=None, errors=[as_graphql_error(exc)]))
    except Parked as handed_over:  # goes on without this stream: recorded at its end
        parked = True
        so_far = list(codes)
        handed_over.finish = lambda later: record(
            context, operation_name, "subscription", time.perf_counter() - started,
            so_far + later)
        raise
    finally:
        if not parked:
            record(context, operation_name, "subscription", time.perf_counter() - started,
                   codes)
