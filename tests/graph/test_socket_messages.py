"""Well-formed JSON of the wrong shape on a WebSocket, on both protocols, answered as each
protocol's specification says, never by a crashed connection handler (1006) or a
traceback in the log.

- graphql-transport-ws (graphql-ws's PROTOCOL.md): "Receiving a message of a type or
  format which is not specified in this document will result in an immediate socket
  closure with the event 4400: <error-message>."
- graphql-ws (subscriptions-transport-ws's PROTOCOL.md): a message that cannot be parsed
  is answered with ``connection_error``, "which does not disconnect the client, just
  ignore[s] the message"; an operation that fails before execution gets ``error`` with
  its id. The socket keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from tests.helpers.live import DEADLINE, LiveServer, live_server

QUERY = "query Me { viewer { userId anonymous } }"

# Each is valid JSON; none is a message the protocol specifies.
NOT_AN_OBJECT = ["[]", '[{"type": "ping"}]', '"ping"', "1", "null", "true"]
BAD_ENVELOPE = [
    "{}",
    '{"type": 5}',
    '{"type": null}',
    '{"type": ["subscribe"]}',
    '{"type": "' + "x" * 300 + '"}',  # a close reason holds at most 123 bytes
]


def transport_ws_shapes() -> list[str]:
    def subscribe(**fields: Any) -> str:
        return json.dumps({"type": "subscribe", **fields})

    payload = {"query": QUERY}
    return [*NOT_AN_OBJECT, *BAD_ENVELOPE,
            subscribe(id={}, payload=payload),
            subscribe(id=["1"], payload=payload),
            subscribe(id=1, payload=payload),
            subscribe(id=None, payload=payload),
            subscribe(id="", payload=payload),
            subscribe(payload=payload),
            subscribe(id="1", payload=None),
            subscribe(id="1", payload=[]),
            subscribe(id="1", payload="{ viewer { userId } }"),
            subscribe(id="1"),
            subscribe(id="1", payload={}),
            subscribe(id="1", payload={"query": 5}),
            subscribe(id="1", payload={"query": ["{ viewer { userId } }"]}),
            subscribe(id="1", payload={**payload, "variables": []}),
            subscribe(id="1", payload={**payload, "variables": "{}"}),
            subscribe(id="1", payload={**payload, "operationName": 5}),
            subscribe(id="1", payload={**payload, "operationName": {}}),
            subscribe(id="1", payload={**payload, "extensions": []}),
            json.dumps({"type": "complete", "id": {}}),
            json.dumps({"type": "complete", "id": 1}),
            json.dumps({"type": "complete"}),
            json.dumps({"type": "ping", "payload": []}),
            json.dumps({"type": "pong", "payload": "x"}),
            json.dumps({"type": "next", "id": "1", "payload": {}}),  # server to client only
            ]


def graphql_ws_shapes() -> list[tuple[str, str]]:
    """(message, the answer expected: connection_error, or error for operation 9)."""
    def start(**fields: Any) -> str:
        return json.dumps({"type": "start", **fields})

    payload = {"query": QUERY}
    connection = [*NOT_AN_OBJECT, *BAD_ENVELOPE, "not JSON", '{"type": "start"',
                  '{"type": "start", "id": "9", "payload": {"query": "{ a }", "variables": '
                  + "[" * 100 + "]" * 100 + "}}",  # deeper than JOBGRAPH_MAX_BODY_DEPTH
                  start(id={}, payload=payload),
                  start(id=["1"], payload=payload),
                  start(id=None, payload=payload),
                  start(payload=payload),
                  json.dumps({"type": "stop", "id": {}}),
                  json.dumps({"type": "stop"})]
    operation = [start(id="9", payload=None),
                 start(id="9", payload=[]),
                 start(id="9"),
                 start(id="9", payload={}),
                 start(id="9", payload={"query": 5}),
                 start(id="9", payload={**payload, "variables": []}),
                 start(id="9", payload={**payload, "operationName": 5})]
    return ([(shape, "connection_error") for shape in connection]
            + [(shape, "error") for shape in operation])


@pytest.fixture
async def live(settings: Any, mongo_uri: str, store: Any) -> AsyncIterator[LiveServer]:
    async with live_server(settings, mongo_uri) as server:
        yield server


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.INFO)
    yield caplog
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def opened(server: LiveServer, protocol: str) -> Any:
    socket = await websockets.connect(server.ws_url, subprotocols=[protocol],
                                      open_timeout=DEADLINE)
    await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))["type"] == \
        "connection_ack"
    return socket


async def closed_with(socket: Any) -> tuple[int | None, str | None]:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))
            assert message["type"] in ("ping", "pong"), message
    return socket.close_code, socket.close_reason


async def test_graphql_transport_ws_closes_with_4400_on_a_message_of_the_wrong_shape(
    live: LiveServer, no_tracebacks: Any
) -> None:
    outcomes = {}
    for shape in transport_ws_shapes():
        socket = await opened(live, "graphql-transport-ws")
        await socket.send(shape)
        outcomes[shape[:60]] = (await closed_with(socket))[0]
    assert outcomes == dict.fromkeys(outcomes, 4400)


async def test_graphql_transport_ws_closes_with_4400_before_connection_init_too(
    live: LiveServer, no_tracebacks: Any
) -> None:
    for shape in ["[]", '{"id": {}, "type": "subscribe", "payload": null}',
                  '{"type": "connection_init", "payload": []}']:
        async with websockets.connect(live.ws_url, subprotocols=["graphql-transport-ws"],
                                      open_timeout=DEADLINE) as socket:
            await socket.send(shape)
            code, reason = await closed_with(socket)
        assert code == 4400, (shape, code, reason)
        assert reason


async def test_graphql_ws_answers_a_message_of_the_wrong_shape_and_keeps_serving(
    live: LiveServer, no_tracebacks: Any
) -> None:
    socket = await opened(live, "graphql-ws")
    try:
        for shape, expected in graphql_ws_shapes():
            await socket.send(shape)
            answer = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))
            assert answer["type"] == expected, (shape, answer)
            assert answer["payload"]["extensions"]["code"] == "BAD_REQUEST", (shape, answer)
            assert answer["payload"]["message"], (shape, answer)
            if expected == "error":
                assert answer["id"] == "9", (shape, answer)
        # and the same socket still runs an operation, operation id 9 included
        await socket.send(json.dumps({"type": "start", "id": "9", "payload": {"query": QUERY}}))
        answer = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))
        assert answer == {"type": "data", "id": "9", "payload": {
            "data": {"viewer": {"userId": None, "anonymous": True}}}}
    finally:
        await socket.close()


@pytest.mark.parametrize(("protocol", "kind", "answer"), [
    ("graphql-transport-ws", "subscribe", "error"), ("graphql-ws", "start", "error")])
async def test_an_unknown_operation_name_is_a_coded_error_on_both_protocols(
    live: LiveServer, no_tracebacks: Any, protocol: str, kind: str, answer: str
) -> None:
    socket = await opened(live, protocol)
    try:
        await socket.send(json.dumps({"type": kind, "id": "1", "payload": {
            "query": QUERY, "operationName": "Nope"}}))
        message = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))
    finally:
        await socket.close()
    assert (message["type"], message["id"]) == (answer, "1")
    errors = message["payload"] if isinstance(message["payload"], list) else [message["payload"]]
    assert [error["extensions"]["code"] for error in errors] == ["BAD_REQUEST"]
    assert 'Unknown operation named "Nope"' in errors[0]["message"]
