"""The ``jobgraph`` command: serve, export-schema, token, seed-demo, demo-worker,
dispatcher."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from graph.auth.tokens import (
    KNOWN_ROLES,
    UnauthenticatedError,
    generate_secret,
    load_keys,
    mint_token,
)
from graph.config.logs import configure_logging
from graph.config.settings import Settings, SettingsError, load_settings
from repository.database import EmbeddedServer, default_data_dir
from repository.errors import DomainError

from .demo import DemoError

DEFAULT_URL = "http://127.0.0.1:8000/graphql"
DEMO_USER = "demo"
DEMO_ROLE = "worker"
DEMO_TTL_SECONDS = 24 * 3600


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobgraph", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (embedded database if no URI)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")

    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")

    token = commands.add_parser("token", help="mint a JWT with JOBGRAPH_JWT_SECRET")
    token.add_argument("--sub", required=True, help="user id (the token's subject)")
    token.add_argument("--role", action="append", default=[], choices=sorted(KNOWN_ROLES))
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")

    seed = commands.add_parser("seed-demo", help="create sample jobs, batches and "
                               "documentation jobs of several users on a running server")
    seed.add_argument("--url", default=DEFAULT_URL, help=f"GraphQL endpoint ({DEFAULT_URL})")

    worker = commands.add_parser("demo-worker", help="claim jobs on a running server and "
                                 "drive them to the end, slowly enough to watch")
    worker.add_argument("--url", default=DEFAULT_URL, help=f"GraphQL endpoint ({DEFAULT_URL})")
    worker.add_argument("--jobs", type=int, help="stop after this many jobs (default: never)")
    worker.add_argument("--job-type", action="append", dest="job_types",
                        help="only claim jobs of this type (repeatable)")
    worker.add_argument("--delay", type=float, default=0.7, help="seconds between steps")
    worker.add_argument("--fail-rate", type=float, default=0.2,
                        help="share of jobs failed on purpose (0..1)")
    worker.add_argument("--worker-id", default="demo-worker", help="the worker's user id")

    dispatcher = commands.add_parser(
        "dispatcher", help="run the scheduler and the webhook dispatcher without the API "
        "(JOBGRAPH_MONGODB_URI required; set JOBGRAPH_DISPATCHER=false on the API processes)")
    dispatcher.add_argument("--metrics-port", type=int,
                            help="serve Prometheus metrics on this port (default: none)")
    dispatcher.add_argument("--metrics-host", default="127.0.0.1",
                            help="address for --metrics-port (127.0.0.1)")

    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (SettingsError, DomainError, UnauthenticatedError, ValueError, DemoError) as exc:
        print(f"jobgraph: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = load_settings()
    configure_logging(settings)
    load_keys(settings)  # an unusable key stops here, before the database starts
    server: EmbeddedServer | None = None
    if settings.mongodb_uri is None:
        data_dir = settings.data_dir or default_data_dir()
        server = EmbeddedServer(data_dir=Path(data_dir))
        print(f"jobgraph: starting the embedded database (data in {data_dir})", file=sys.stderr)
        os.environ["JOBGRAPH_MONGODB_URI"] = server.start()
    banner = ensure_session_secret(settings, os.environ, args.host, args.port)
    shared_secret: Path | None = None
    if banner:
        print(banner, file=sys.stderr)
        if server is not None:
            shared_secret = share_session_secret(settings, os.environ["JOBGRAPH_JWT_SECRET"])
    # uvicorn re-raises SIGTERM after its graceful shutdown; this handler turns it
    # into SystemExit so the embedded database below is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run("graph.server.app:create_app", factory=True, host=args.host, port=args.port,
                    workers=args.workers, **uvicorn_options(settings))
    finally:
        if shared_secret is not None:
            shared_secret.unlink(missing_ok=True)
        if server is not None:
            server.stop()
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How ``serve`` runs uvicorn (the benchmark's server runs the same way)."""
    from graph.server.websocket_protocol import UVICORN_PROTOCOLS

    return {"log_level": settings.log_level.lower(), "proxy_headers": True,
            **UVICORN_PROTOCOLS,
            # a WebSocket message is bounded like a request body: a larger frame is
            # refused from its header (close 1009), never read whole
            "ws_max_size": settings.max_body_bytes,
            "ws_per_message_deflate": settings.websocket_compression,
            # our handler (JSON) formats uvicorn's lines too; each request is logged
            # once, by RequestObservability, with its request id
            "log_config": None, "access_log": False}


def session_secret_path(settings: Settings) -> Path:
    """Where ``serve`` keeps its generated secret while it runs (embedded mode only)."""
    return Path(settings.data_dir or default_data_dir()).parent / "session-jwt-secret"


def share_session_secret(settings: Settings, secret: str) -> Path:
    """Let ``token``, ``seed-demo`` and ``demo-worker`` in another terminal sign tokens
    this session's server accepts. Owner-only, and removed when the server stops."""
    path = session_secret_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret)
    return path


def client_settings() -> Settings:
    """Settings for the client commands: the configured secret, else the running
    development server's session secret."""
    settings = load_settings()
    if settings.jwt_secret is None:
        path = session_secret_path(settings)
        if path.exists():
            return settings.model_copy(update={"jwt_secret": path.read_text().strip()})
    return settings


def ensure_session_secret(
    settings: Settings, environ: MutableMapping[str, str], host: str, port: int
) -> str | None:
    """With no JWT key configured, put a fresh secret into ``environ`` (the server's
    processes read it from there) and return a banner with a ready demo token."""
    if settings.jwt_secret or settings.jwt_public_key:
        return None
    secret = environ["JOBGRAPH_JWT_SECRET"] = generate_secret()
    session = settings.model_copy(update={"jwt_secret": secret})
    demo = mint_token(session, DEMO_USER, [DEMO_ROLE], ttl=DEMO_TTL_SECONDS)
    return (
        "jobgraph: no JOBGRAPH_JWT_SECRET set, so one was generated for this session.\n"
        f"  GraphiQL: http://{host}:{port}/graphql\n"
        f'  Headers tab: {{"Authorization": "Bearer {demo}"}}\n'
        f"  (user {DEMO_USER!r}, role {DEMO_ROLE}, valid {DEMO_TTL_SECONDS // 3600} h)\n"
        "  Set JOBGRAPH_JWT_SECRET yourself to keep tokens valid across restarts and to mint "
        "more with `jobgraph token --sub USER`."
    )


def _export_schema(args: argparse.Namespace) -> int:
    from graph.schema.root import export_sdl

    sdl = export_sdl()
    if args.output:
        args.output.write_text(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


def _token(args: argparse.Namespace) -> int:
    print(mint_token(client_settings(), args.sub, args.role, ttl=args.ttl))
    return 0


def _seed_demo(args: argparse.Namespace) -> int:
    from .demo import seed_demo

    asyncio.run(seed_demo(args.url, client_settings()))
    return 0


def _demo_worker(args: argparse.Namespace) -> int:
    from .demo import demo_worker

    if not 0 <= args.fail_rate <= 1:
        raise ValueError("--fail-rate must be between 0 and 1")
    try:
        finished = asyncio.run(demo_worker(
            args.url, client_settings(), worker_id=args.worker_id, job_types=args.job_types,
            jobs=args.jobs, step_delay=args.delay, fail_rate=args.fail_rate))
    except KeyboardInterrupt:
        return 0
    print(f"demo-worker: finished {finished} jobs", file=sys.stderr)
    return 0


def _dispatcher(args: argparse.Namespace) -> int:
    from .dispatcher import run_dispatcher

    settings = load_settings()
    configure_logging(settings)
    asyncio.run(run_dispatcher(settings, metrics_port=args.metrics_port,
                               metrics_host=args.metrics_host))
    return 0


COMMANDS = {"serve": _serve, "export-schema": _export_schema, "token": _token,
            "seed-demo": _seed_demo, "demo-worker": _demo_worker, "dispatcher": _dispatcher}

if __name__ == "__main__":
    raise SystemExit(main())
