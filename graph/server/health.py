"""Liveness and readiness for load balancers and orchestrators.

``/healthz``: the process answers (restart it if not). ``/readyz``: it can serve, so
MongoDB answers a ping in time and, when there is a realtime hub, its change stream
runs; 503 otherwise (take the instance out of rotation, don't restart it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

logger = logging.getLogger("jobgraph.health")

READY_SECONDS = 2.0
"""The longest a readiness probe waits for MongoDB (probes usually time out soon after)."""


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    body: dict[str, Any] = {}
    ready = True
    store = getattr(state, "store", None)
    if store is None:
        ready, body["database"] = False, "not started"
    else:
        seconds = min(READY_SECONDS, state.settings.mongodb_timeout_ms / 1000)
        try:
            await asyncio.wait_for(store.client.admin.command("ping"), seconds)
            body["database"] = "ok"
        except Exception as exc:  # the detail (hosts, ports) is for the log, not the probe
            detail = (str(exc).splitlines() or [""])[0]
            logger.warning("not ready: MongoDB did not answer a ping: %s %s",
                           type(exc).__name__, detail)
            ready, body["database"] = False, "unavailable"
    hub = getattr(state, "hub", None)
    running = getattr(hub, "running", None)
    if isinstance(running, bool):
        body["change_stream"] = "running" if running else "stopped"
        ready = ready and running
    body["status"] = "ready" if ready else "unavailable"
    return JSONResponse(body, status_code=200 if ready else 503)
