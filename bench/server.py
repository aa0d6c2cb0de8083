"""The app ``bench`` serves with uvicorn: the API as ``jobgraph serve`` builds it, plus the
bare baseline endpoints mounted in the same process (``/bare/...``)."""

from __future__ import annotations

from starlette.applications import Starlette

from graph.auth.tokens import Authenticator
from graph.config.settings import load_settings
from graph.server.app import create_app as create_api

from .bare import bare_routes


def create_app() -> Starlette:
    settings = load_settings()
    app = create_api(settings)
    for route in bare_routes(Authenticator(settings)):
        app.router.routes.append(route)
    return app
