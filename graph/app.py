"""The Starlette application: lifespan opens the database and ensures indexes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from repository.database import Store, make_client, ping

from .http import GraphQLView, error_body
from .schema import build_schema
from .settings import Settings, load_settings

logger = logging.getLogger("jobgraph.app")


class BodySizeLimit:
    """Refuse request bodies above the limit with 413, before anyone reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            error_body("PAYLOAD_TOO_LARGE", f"the request body exceeds {self.max_bytes} bytes"),
            status_code=413)
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(
    settings: Settings | None = None,
    *,
    mongodb_uri: str | None = None,
    client_options: dict[str, Any] | None = None,
) -> Starlette:
    """The ASGI app. ``mongodb_uri`` overrides settings; ``client_options`` go to pymongo
    (tests pass command listeners to count round trips)."""
    settings = settings or load_settings()
    uri = mongodb_uri or settings.mongodb_uri
    if uri is None:
        raise RuntimeError("create_app needs a MongoDB URI: set JOBGRAPH_MONGODB_URI or use "
                           "`jobgraph serve`, which starts the embedded database")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = make_client(uri, timeout_ms=settings.mongodb_timeout_ms,
                             **(client_options or {}))
        await ping(client, uri)
        store = Store(client, settings.database, settings.limits)
        await store.ensure_indexes()
        app.state.store = store
        try:
            yield
        finally:
            await client.close()

    view = GraphQLView(build_schema(settings), settings=settings,
                       store_getter=lambda: app.state.store)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await request.app.state.store.client.admin.command("ping")
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "database": str(exc).splitlines()[0]},
                                status_code=503)
        return JSONResponse({"status": "ready", "database": "ok"})

    app = Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
