"""A real webhook receiver on loopback: a small Starlette app served by uvicorn in the
test's event loop. It records every request as received and answers as the test says
(by default 204), so tests see exactly what went over the wire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from repository.database import free_port

from .live import serving


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    answer: Callable[[Received], Awaitable[int]] | None = None
    """Decides the status of each request (it may also wait); None answers 204."""

    def by_id(self) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = {}
        for request in self.requests:
            found.setdefault(request.id, []).append(request)
        return found


@asynccontextmanager
async def receiver(path: str = "/hook") -> AsyncIterator[Receiver]:
    port = free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}{path}")

    async def hook(request: Request) -> Response:
        received = Received(dict(request.headers), await request.body())
        state.requests.append(received)
        status = 204 if state.answer is None else await state.answer(received)
        return Response(status_code=status)

    app = Starlette(routes=[Route(path, hook, methods=["POST"])])
    async with serving(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                      lifespan="off"), force_exit=True):
        yield state
