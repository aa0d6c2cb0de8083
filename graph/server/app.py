"""The Starlette application: lifespan opens the database and ensures indexes."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from graph.config.logs import configure_logging
from graph.config.settings import Settings, load_settings
from graph.loops.automation import Automation
from graph.loops.history import HistoryWriter
from graph.loops.reaper import Reaper
from graph.realtime.hub import Hub
from graph.schema.root import build_schema
from repository.database import DatabaseError, Store, deadline, make_client, ping
from repository.errors import ErrorCode

from .dashboard import dashboard_routes
from .error_bodies import error_body, routing_refusal
from .export import export_routes
from .graphiql import graphiql_routes
from .health import healthz, readyz
from .http import GraphQLView
from .metrics import Metrics, metrics_endpoint
from .observability import GRAPHQL_PATH, REQUEST_ID_HEADER, Observability, RequestObservability

logger = logging.getLogger("jobgraph.app")
GRAPHQL_METHODS = ("GET", "POST")
SHUTDOWN_DATABASE_SECONDS = 2.0
"""The database time the background loops have, all together, to stop."""
YOUNG_OBJECTS = 20_000
"""Allocations between two collections of the youngest generation (Python's default: 700).
A request's objects are freed by their count of references when it ends; a collection
that runs first must walk every one of them (about 100k instructions per job read at
700). The older generations are collected as many times less often."""


class BodySizeLimit:
    """Refuse request bodies above the limit with 413, before anyone reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            # handed on, not awaited here: no frame of ours for as long as a WebSocket lasts
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
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
            error_body(ErrorCode.PAYLOAD_TOO_LARGE,
                       f"the request body exceeds {self.max_bytes} bytes"),
            status_code=413)
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class App(Starlette):
    """Starlette, except that ``/graphql`` goes from the request observer straight to the
    view, past the router and the exception middleware.

    A WebSocket held seven more frames (about 4 KB) for as long as it lasted through the
    middleware stack and the router, and each frame it was sent went through one more
    wrapper; none of those layers does anything to a WebSocket (CORS and the body limit
    are HTTP's, and the error middlewares only re-raise). A GET or POST takes our own
    middleware (the request observer, CORS, the body limit) and Starlette's 500 answer,
    now inside the request observer so that it carries its id, but not the router's match and
    the exception middleware's wrappers, which only refuse what the router refuses
    (about 40k instructions of a 2,400k job read).
    Any other method or socket, and a ``/graphql`` under a root path, take the whole way.
    (``Starlette.__call__`` stays a coroutine function: uvicorn tells ASGI 3 from ASGI 2
    by it.)"""

    graphql_view: ASGIApp | None = None
    graphql_socket: ASGIApp | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        view, socket = self.graphql_view, self.graphql_socket
        if view is None or socket is None:
            return stack
        http = view
        for cls, args, kwargs in reversed(self.user_middleware):
            if cls is RequestObservability:  # Starlette's 500 inside it: with its id
                http = ServerErrorMiddleware(http, debug=self.debug)
            http = cls(http, *args, **kwargs)
        router = self.router

        def route(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
            # returns the awaitable: no frame of ours
            if scope.get("path") == GRAPHQL_PATH:  # lifespan has none
                if scope["type"] == "websocket":
                    return socket(scope, receive, send)
                if scope["type"] == "http" and scope.get("method") in GRAPHQL_METHODS and not (
                        scope.get("root_path")):
                    # what the router would have added
                    scope.update(router=router, endpoint=view, path_params={})
                    return http(scope, receive, send)
            return stack(scope, receive, send)

        return route


def create_app(
    settings: Settings | None = None,
    *,
    mongodb_uri: str | None = None,
    client_options: dict[str, Any] | None = None,
) -> Starlette:
    """The ASGI app. ``mongodb_uri`` overrides settings; ``client_options`` go to pymongo
    (tests pass command listeners to count round trips)."""
    settings = settings or load_settings()
    configure_logging(settings)
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
        await _ensure_retention(store, settings)
        app.state.store = store
        hub = Hub(store.db, queue_size=settings.subscriber_queue_size,
                  max_subscribers=settings.max_subscriptions_per_process,
                  max_per_user=settings.max_subscriptions_per_user,
                  max_anonymous=settings.max_anonymous_subscriptions,
                  metrics=app.state.metrics)
        await hub.start()
        app.state.hub = hub
        reaper = Reaper(store.jobs, settings.reaper_interval_seconds, store.documentation_jobs)
        reaper.start()
        app.state.reaper = reaper
        history = HistoryWriter(store, poll_seconds=settings.history_poll_seconds)
        with contextlib.suppress(DatabaseError):  # the changes from now on are recorded
            await history.open()
        history.start()
        app.state.history = history
        automation = Automation(store, settings, app.state.metrics)
        if settings.dispatcher:
            automation.start()
        app.state.automation = automation
        # What exists now (modules, the schema, the client) lives as long as the app: out
        # of the collector's sight, full collections get shorter (each stalls every request
        # and delivery; with 1,000 subscribers one took 200-300 ms). Unfrozen on shutdown.
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_OBJECTS, *thresholds[1:])
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            # what the loops write on their way out (positions, leases) and the client's
            # goodbye (endSessions) within one budget: with the database gone each waited
            # out its timeout, 11 s in all, past Docker's 10 s stop; what is not written
            # is what a crash leaves
            with deadline(SHUTDOWN_DATABASE_SECONDS):
                await automation.stop()
                await reaper.stop()
                await history.stop()
                await hub.stop()
                await client.close()

    view = GraphQLView(build_schema(settings, Observability), settings=settings,
                       store_getter=lambda: app.state.store,
                       hub_getter=lambda: getattr(app.state, "hub", None))

    graphql_route = Route(GRAPHQL_PATH, view, methods=list(GRAPHQL_METHODS))
    assert graphql_route.methods is not None
    graphql_route.methods.discard("HEAD")  # Starlette adds it with GET; the view refuses it
    app: App = App(
        routes=[
            graphql_route,
            WebSocketRoute(GRAPHQL_PATH, view),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            *export_routes(view),
            *graphiql_routes(settings),
            *dashboard_routes(settings),
        ],
        lifespan=lifespan,
        exception_handlers={StarletteHTTPException: routing_refusal},
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:  # outside BodySizeLimit, so a browser can read a 413 too
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER], max_age=600)
    app.add_middleware(RequestObservability)  # outermost: every response gets its id
    app.graphql_view = view
    app.graphql_socket = RequestObservability(
        lambda scope, receive, send: view.run(WebSocket(scope, receive=receive, send=send)))
    return app


async def _ensure_retention(store: Store, settings: Settings) -> None:
    ttl = await store.jobs.ensure_retention(settings.finished_job_ttl_seconds)
    if settings.finished_job_ttl_seconds is None and ttl is not None:
        logger.warning(
            "JOBGRAPH_FINISHED_JOB_TTL_SECONDS is not set, but the TTL index 'finished_ttl' "
            "left by an earlier configuration still deletes finished jobs %d s after they "
            "finish; drop it (db.jobs.dropIndex('finished_ttl')) to keep them", ttl)
