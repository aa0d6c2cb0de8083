"""``jobgraph serve`` itself: what it prints per request, and the limits it gives uvicorn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.live import DEADLINE
from tests.helpers.serving import jobgraph_serve
from tests.helpers.waiting import eventually


async def test_serve_writes_one_request_line_and_no_uvicorn_access_lines(
    mongo_uri: str, database_name: str, store: Any, tmp_path: Path
) -> None:
    output = tmp_path / "serve.log"
    async with jobgraph_serve(mongo_uri, database_name, output) as served, httpx.AsyncClient(
            base_url=served.url, timeout=DEADLINE) as client:
        await client.get("/healthz")
        await client.post("/graphql", json={"query": "query Me { viewer { userId } }"},
                          headers={"X-Request-Id": "one-request"})
        await client.put("/graphql", json={"query": "query Me { viewer { userId } }"})

        def logged() -> list[dict[str, Any]]:
            lines = [json.loads(line) for line in served.lines() if line.startswith("{")]
            return lines if any(line.get("method") == "PUT" for line in lines) else []

        lines = await eventually(logged)
    # README (Observability): jobgraph.request replaces uvicorn's access log
    assert [line["message"] for line in lines if line["logger"] == "uvicorn.access"] == []
    requests = [(line["method"], line["path"], line["status"]) for line in lines
                if line["logger"] == "jobgraph.request"]
    assert requests == [("POST", "/graphql", 200), ("PUT", "/graphql", 405)]
    assert [line["request_id"] for line in lines if line.get("method") == "POST"] == [
        "one-request"]
