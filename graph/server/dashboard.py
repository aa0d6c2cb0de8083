"""The dashboard at ``/ui``: a browser app on the public GraphQL API, served from the package.

No build step and nothing from another origin: the page loads our ES modules
(static/dashboard/*.js) and the vendored Preact, htm and graphql-ws client
(static/dashboard/vendor/, VERSIONS.md there; refreshed by scripts/vendor_dashboard.sh)
through an import map. Every path under ``/ui/`` answers the same app shell, so the
app's own URLs can be reloaded and shared; the app reads the path and renders the page.
Switched off with ``JOBGRAPH_DASHBOARD=false`` (then ``/ui`` is 404 like any unknown path).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Scope

from graph.config.settings import Settings

from .graphiql import Assets

ASSETS = Path(__file__).parent / "static" / "dashboard"
PREFIX = "/ui"
MOUNT = f"{PREFIX}/static"

IMPORTS = {
    "preact": "./static/vendor/preact-11.2.0/preact.mjs",
    "preact/hooks": "./static/vendor/preact-11.2.0/hooks.mjs",
    "htm": "./static/vendor/htm-3.1.1/htm.mjs",
    "graphql-ws": "./static/vendor/graphql-ws-6.4.2/client.js",
}
"""The bare module names the vendored files and ours import, relative to the page's base
(``<base href=".../ui/">``), so the app works under a path prefix too."""
IMPORT_MAP = json.dumps({"imports": IMPORTS}, indent=1, sort_keys=True)
IMPORT_MAP_HASH = "sha256-" + base64.b64encode(
    hashlib.sha256(IMPORT_MAP.encode()).digest()).decode()

# 'self' only, plus the one inline script the page has: its import map, by its hash (a
# browser cannot load an import map from a file). Styles come from style.css only; the
# app sets widths through the CSSOM, which the policy allows. No framing (the buttons
# change things), no plugins, no forms posting elsewhere.
CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src 'self' '{IMPORT_MAP_HASH}'; style-src 'self'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'; frame-ancestors 'none'"
)
REVALIDATE = "no-cache"
JAVASCRIPT = "text/javascript; charset=utf-8"


def _shell(root_path: str, settings: Settings) -> str:
    base = html.escape(f"{root_path}{PREFIX}/")
    flags = (f'data-dev-user-header="{str(settings.dev_trust_user_header).lower()}" '
             f'data-graphiql="{str(settings.graphiql).lower()}"')
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<base href="{base}">
<title>jobgraph</title>
<link rel="icon" href="static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="static/style.css">
<script type="importmap">{IMPORT_MAP}</script>
<script type="module" src="static/app.js"></script>
</head>
<body {flags}>
<noscript><p>The jobgraph dashboard needs JavaScript. The API itself answers at
<a href="../graphql">../graphql</a>.</p></noscript>
<div id="app"></div>
</body>
</html>
"""


class DashboardAssets(Assets):
    """Our modules are revalidated, vendored ones (a versioned folder) kept for good;
    every module is served as JavaScript, whatever the system's MIME table says about
    ``.mjs`` (a browser refuses a module of another type)."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if str(full_path).endswith((".js", ".mjs")):
            response.headers["content-type"] = JAVASCRIPT
        return response


def dashboard_routes(settings: Settings) -> list[BaseRoute]:
    """The shell on ``/ui`` and every path below it, the files under ``/ui/static/``;
    none when the dashboard is off."""
    if not settings.dashboard:
        return []

    def shell(request: Request) -> Response:
        root_path = request.scope.get("root_path", "").rstrip("/")
        return HTMLResponse(_shell(root_path, settings), headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": REVALIDATE,
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY"})

    return [
        Mount(MOUNT, app=DashboardAssets(directory=ASSETS), name="dashboard-assets"),
        Route(PREFIX, shell, methods=["GET", "HEAD"]),
        Route(f"{PREFIX}/{{path:path}}", shell, methods=["GET", "HEAD"]),
    ]
