"""GraphiQL served from the installed package, so that it works with no internet.

The page loads React, GraphiQL and its explorer plugin from files vendored at pinned
versions (static/graphiql/VERSIONS.md; refreshed by scripts/vendor_graphiql.sh), served
under ``/graphql/static/``, never from a CDN. Its Content-Security-Policy lets it load and
connect to its own origin only. Headers (a pasted bearer token) stay in memory unless the
user turns on GraphiQL's "Persist headers".
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from graph.config.settings import Settings

ASSETS = Path(__file__).parent / "static" / "graphiql"
MOUNT = "/graphql/static"

STYLES = (
    "graphiql-3.8.3/graphiql.min.css",
    "plugin-explorer-1.0.2/style.css",
)
SCRIPTS = (
    "react-18.2.0/react.production.min.js",
    "react-dom-18.2.0/react-dom.production.min.js",
    "graphiql-3.8.3/graphiql.min.js",
    "plugin-explorer-1.0.2/index.umd.js",
    "jobgraph-graphiql.js",
)

# 'self' only: nothing from another origin, even if a vendored file tried. Styles may be
# inline because GraphiQL's dialogs insert <style> elements; fonts are data: URLs in its CSS.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; object-src 'none'"
)

# A directory named after its package's version never changes: browsers may keep it.
VERSIONED = re.compile(r".+-\d+(\.\d+)+$")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def _page() -> str:
    # Relative to /graphql (the page's URL), so that it also works under a path prefix.
    base = MOUNT.lstrip("/")
    links = "\n".join(f'<link rel="stylesheet" href="{html.escape(f"{base}/{name}")}">'
                      for name in STYLES)
    scripts = "\n".join(f'<script src="{html.escape(f"{base}/{name}")}"></script>'
                        for name in SCRIPTS)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jobgraph · GraphiQL</title>
<link rel="icon" href="data:,">
{links}
<style>
body {{ margin: 0; height: 100%; width: 100%; }}
#graphiql {{ height: 100vh; display: flex; }}
.graphiql-explorer-actions select {{ margin-left: 4px; }}
</style>
</head>
<body>
<div id="graphiql" class="graphiql-container">Loading…</div>
{scripts}
</body>
</html>
"""


PAGE = _page()


def graphiql_page(request: Request) -> Response:
    """The GraphiQL page that ``GET /graphql`` renders for a browser."""
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                                       "Cache-Control": REVALIDATE,
                                       "X-Content-Type-Options": "nosniff"})


class Assets(StaticFiles):
    """The vendored files, cached for good where their directory names a version."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        folder = os.path.basename(os.path.dirname(full_path))
        response.headers["Cache-Control"] = IMMUTABLE if VERSIONED.match(folder) else REVALIDATE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def graphiql_routes(settings: Settings) -> list[BaseRoute]:
    """The assets' route; none when GraphiQL is off (JOBGRAPH_GRAPHIQL=false)."""
    if not settings.graphiql:
        return []
    return [Mount(MOUNT, app=Assets(directory=ASSETS), name="graphiql-assets")]

