"""The express lane for subscriptions (``graph/schema/express.py``) answers exactly as
Strawberry's pipeline does.

A document's first subscription takes Strawberry's pipeline, which validates it; the same
document again takes the lane. Every case here is subscribed twice, on two connections,
and both must hear the same: the npm graphql-ws client's events, and on both WebSocket
protocols the very frames (raw text, byte for byte, through the ``websockets`` library),
and over SSE the graphql-sse client's events. A spy on the lane checks which
subscriptions it ran (none of the first connection's, all of the second's), so no
comparison passes vacuously; the operations recorded (metrics and log lines) must be the
same for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import websockets

import graph.schema.root
import graph.server.observability
from tests.helpers.graphql import ALICE, BOB, WORKER, Api
from tests.helpers.live import DEADLINE, LiveServer
from tests.helpers.node import node_script
from tests.helpers.waiting import eventually

from .conftest import CLAIM, PROGRESS, create_job, token

JOB = "subscription Job($id: ID!) { jobChanged(jobId: $id) { jobId status version " \
      "progress { percent } viewerCanCancel } }"
HIDDEN = "subscription Hidden($id: ID!) { jobChanged(jobId: $id) { jobId status } }"
MISSING = "subscription Missing($id: ID!) { jobChanged(jobId: $id) { jobId } }"
BAD_VARIABLE = "subscription BadVariable($id: ID!) { jobChanged(jobId: $id) { jobId } }"
BAD_ARGUMENT = "subscription BadArgument { jobsChanged(initial: -1) { kind jobId } }"
CURRENT = """subscription Current($type: String!) {
  jobsChanged(filter: {jobType: $type}, initial: 5) { kind jobId job { jobType status } } }"""
TERMINAL = ("error", "complete")


async def cases(http: Api) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each case's document (new to the server: a comment of its own) and variables."""
    mine = await create_job(http)
    await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)  # so that it can progress
    bobs = await create_job(http, "bobs", as_=BOB)  # alice may not read it: hidden = missing
    job_type = f"express-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        await create_job(http, job_type)
    fresh = f"# {uuid.uuid4()}\n"
    return {
        "Job": (fresh + JOB, {"id": mine}),
        "Hidden": (fresh + HIDDEN, {"id": bobs}),
        "Missing": (fresh + MISSING, {"id": str(uuid.uuid4())}),
        "BadVariable": (fresh + BAD_VARIABLE, {"id": None}),
        "BadArgument": (fresh + BAD_ARGUMENT, {}),
        "Current": (fresh + CURRENT, {"type": job_type}),
    }


@pytest.fixture
def lane(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The operations the express lane ran, in order."""
    ran: list[str | None] = []
    stream = graph.schema.root.express_stream

    def spy(*args: Any, **kwargs: Any) -> Any:
        ran.append(args[3])  # the operation's name
        return stream(*args, **kwargs)

    monkeypatch.setattr(graph.schema.root, "express_stream", spy)
    return ran


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every subscription recorded for metrics and logs: name, type and error codes."""
    seen: list[tuple[Any, ...]] = []
    record = graph.server.observability.record_operation

    def spy(app_context: Any, name: str | None, kind: str, seconds: float,
            codes: list[str]) -> None:
        if kind == "subscription":
            seen.append((name, kind, tuple(codes)))
        record(app_context, name, kind, seconds, codes)

    monkeypatch.setattr(graph.server.observability, "record_operation", spy)
    return seen


class Frames:
    """One raw WebSocket connection's text frames, by operation id."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.by_id: dict[str, list[str]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.socket:
            assert isinstance(raw, str), f"a binary frame: {raw!r}"
            operation_id = json.loads(raw).get("id")
            if operation_id is not None:
                self.by_id.setdefault(operation_id, []).append(raw)

    def kinds(self, operation_id: str) -> list[str]:
        return [json.loads(raw)["type"] for raw in self.by_id.get(operation_id, [])]


async def connect(live: LiveServer, protocol: str, settings: Any) -> Frames:
    socket = await websockets.connect(live.ws_url, subprotocols=[protocol],  # type: ignore[list-item]
                                      open_timeout=DEADLINE)
    await socket.send(json.dumps({"type": "connection_init", "payload": {
        "Authorization": f"Bearer {token(settings, ALICE)}"}}))
    ack = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))
    assert ack["type"] == "connection_ack", ack
    return Frames(socket)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_each_case_sends_the_same_frames_both_ways(
        live: LiveServer, http: Api, settings: Any, lane: list[str | None],
        records: list[tuple[Any, ...]], protocol: str) -> None:
    # given six subscriptions, each subscribed on a first connection, then on a second
    subscriptions = await cases(http)
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    data = "next" if protocol == "graphql-transport-ws" else "data"
    connections: list[Frames] = []
    for _ in range(2):
        frames = await connect(live, protocol, settings)
        connections.append(frames)
        for name, (query, variables) in subscriptions.items():
            await frames.socket.send(json.dumps({"id": name, "type": start, "payload": {
                "query": query, "variables": variables}}))
        # each has answered (the current state, or its end) before the next connection
        await eventually(lambda frames=frames: all(frames.kinds(name) for name in subscriptions))
        await eventually(lambda frames=frames: all(
            set(frames.kinds(name)) & {*TERMINAL} for name in subscriptions
            if name not in ("Job", "Current")) and len(frames.kinds("Current")) == 3)
        if not lane:  # the first connection's: none through the lane
            await eventually(lambda: len(records) == len(subscriptions) - 2)  # 2 still open
    # when the job changes
    await http.data(PROGRESS, {"id": subscriptions["Job"][1]["id"], "p": 42}, as_=WORKER)
    await eventually(lambda: all(frames.kinds("Job") == [data, data] for frames in connections))
    # then the lane ran every one of the second connection's, none of the first's
    assert sorted(lane, key=str) == sorted(subscriptions)
    # and both connections got the same frames, byte for byte
    first, second = (frames.by_id for frames in connections)
    assert second == first
    assert json.loads(first["Job"][1])["payload"]["data"]["jobChanged"]["progress"] == {
        "percent": 42}
    assert [json.loads(raw)["type"] for raw in first["BadVariable"]] == ["error"]
    for name in ("Hidden", "Missing"):
        [error] = json.loads(first[name][0])["payload"]["errors"]
        assert error["extensions"]["code"] == "NOT_FOUND", first[name]
    # and once both are closed, each operation was recorded the same both ways
    for frames in connections:
        await frames.socket.close()
    await eventually(lambda: len(records) == 2 * len(subscriptions))
    codes = {"Job": (), "Current": (), "Hidden": ("NOT_FOUND",), "Missing": ("NOT_FOUND",),
             "BadVariable": ("GRAPHQL_VALIDATION_FAILED",), "BadArgument": ("VALIDATION_ERROR",)}
    assert Counter(records) == Counter({(name, "subscription", codes[name]): 2
                                        for name in subscriptions}), records


@pytest.mark.usefixtures("node_clients")
async def test_the_graphql_ws_client_hears_the_same_both_ways(
        live: LiveServer, http: Api, settings: Any, lane: list[str | None]) -> None:
    subscriptions = await cases(http)
    subscribers = [{"label": name, "token": token(settings, ALICE), "query": query,
                    "variables": variables} for name, (query, variables) in subscriptions.items()]
    heard: list[dict[str, list[Any]]] = []
    scripts = []
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            lines: dict[str, list[Any]] = {name: [] for name in subscriptions}
            heard.append(lines)
            script = await stack.enter_async_context(node_script("graphql-ws-many.mjs", {
                "url": live.ws_url, "subscribers": subscribers}))
            scripts.append(script)
            await read_until(script, lines, lambda lines=lines: all(
                lines[name] for name in subscriptions) and len(lines["Current"]) == 3 and all(
                "complete" in lines[name][-1] or "error" in lines[name][-1]
                for name in subscriptions if name not in ("Job", "Current")))
        assert sorted(lane, key=str) == sorted(subscriptions)
        await http.data(PROGRESS, {"id": subscriptions["Job"][1]["id"], "p": 42}, as_=WORKER)
        for script, lines in zip(scripts, heard, strict=True):
            await read_until(script, lines, lambda lines=lines: len(lines["Job"]) == 2)
    assert heard[1] == heard[0]
    assert heard[0]["Job"][1]["next"]["data"]["jobChanged"]["progress"] == {"percent": 42}
    assert [line["next"]["errors"][0]["extensions"]["code"] for line in heard[0]["Missing"]
            if "next" in line] == ["NOT_FOUND"]


async def read_until(script: Any, lines: dict[str, list[Any]], done: Callable[[], bool]) -> None:
    while not done():
        line = await script.next()
        label = line.pop("label")
        if "connected" not in line:
            lines[label].append(line)


@pytest.mark.usefixtures("node_clients")
async def test_the_graphql_sse_client_hears_the_same_both_ways(
        live: LiveServer, http: Api, settings: Any, lane: list[str | None]) -> None:
    subscriptions = await cases(http)
    ends = {"Current": lambda lines: sum("next" in line for line in lines) == 3,
            "Missing": lambda lines: "complete" in lines[-1] or "error" in lines[-1],
            "BadVariable": lambda lines: "complete" in lines[-1] or "error" in lines[-1]}
    heard: dict[str, list[Any]] = {}
    for name, done in ends.items():
        query, variables = subscriptions[name]
        both = []
        for _ in range(2):
            async with node_script("graphql-sse-subscribe.mjs", {
                    "url": f"{live.url}/graphql", "token": token(settings, ALICE),
                    "query": query, "variables": variables}) as script:
                lines: list[dict[str, Any]] = [await script.next()]
                while not done(lines):
                    lines.append(await script.next())
                both.append(lines)
        assert both[1] == both[0], name
        heard[name] = both[0]
    assert lane == list(ends)
    assert [line["next"]["data"]["jobsChanged"]["kind"] for line in heard["Current"]
            ] == ["CURRENT"] * 3
    assert heard["Missing"][0]["next"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    [refused] = heard["BadVariable"][0]["next"]["errors"]
    assert refused["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
