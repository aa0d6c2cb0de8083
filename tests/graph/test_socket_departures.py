"""A client that leaves while its subscription is being sent something is no error of the
server's: nothing at ERROR in the log (a tester saw "Exception in worker task" and "Task
exception was never retrieved" tracebacks at ERROR for clients dropping mid-stream, 48 in
158,000 connections, which would page an operator who alerts on errors)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.websockets import WebSocket, WebSocketState
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from graph.server.sockets import GraphQLWsHandler, TextFrames, TransportWsHandler


async def test_a_send_on_a_socket_the_server_closed_is_a_departure() -> None:
    async def nothing(*_: Any) -> Any:
        raise AssertionError("nothing is sent on a closed socket")

    socket = WebSocket({"type": "websocket", "path": "/graphql", "headers": []},
                       receive=nothing, send=nothing)
    socket.application_state = WebSocketState.DISCONNECTED  # a close was sent
    with pytest.raises(WebSocketDisconnected):
        await TextFrames(None, socket, socket).send_json({"type": "next"})  # type: ignore[arg-type]


async def test_an_operation_whose_client_left_is_not_logged_as_an_error(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    handler = TransportWsHandler.__new__(TransportWsHandler)
    await handler.handle_task_exception(WebSocketDisconnected())
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    # anything else still is
    await handler.handle_task_exception(ValueError("boom"))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "Exception in worker task"]


async def test_a_legacy_operation_whose_client_left_ends_quietly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def sending_to_a_gone_client(*_: Any) -> None:
        raise WebSocketDisconnected

    monkeypatch.setattr(BaseGraphQLWSHandler, "handle_async_results", sending_to_a_gone_client)
    handler = GraphQLWsHandler.__new__(GraphQLWsHandler)
    # its task ends without an exception nobody would read
    assert await handler.handle_async_results("1", "subscription { x }", None, None) is None
