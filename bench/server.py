"""The app ``bench`` serves: the API as ``jobgraph serve`` builds it, plus the bare baseline
endpoints mounted in the same process (``/bare/...``). ``python -m bench.server --port P
--workers N`` runs it under uvicorn with ``serve``'s options (its WebSocket protocol, so
subscriptions are parked as in production, its logging)."""

from __future__ import annotations

import argparse

from starlette.applications import Starlette

from graph.auth.tokens import Authenticator
from graph.commands.cli import uvicorn_options
from graph.config.logs import configure_logging
from graph.config.settings import load_settings
from graph.server.app import create_app as create_api

from .bare import bare_routes


def create_app() -> Starlette:
    settings = load_settings()
    app = create_api(settings)
    for route in bare_routes(Authenticator(settings)):
        app.router.routes.append(route)
    return app


def main() -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = load_settings()
    configure_logging(settings)
    uvicorn.run("bench.server:create_app", factory=True, host="127.0.0.1", port=args.port,
                workers=args.workers, **uvicorn_options(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
