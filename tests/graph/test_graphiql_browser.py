"""GraphiQL in a real browser (Debian's Chromium driven by Playwright) with no internet:
every request to another origin is aborted, and none may be attempted. A query runs with a
bearer token typed into the Headers tab, then a subscription shows a job's lifecycle, which
the test drives over HTTP, in the result pane. The token stays out of the browser's storage
unless the user turns on "Persist headers"."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from graph.auth.tokens import mint_token
from tests.helpers.graphql import ALICE, WORKER, Api
from tests.helpers.live import DEADLINE, live_server
from tests.helpers.tools import require_module, require_tool
from tests.helpers.waiting import eventually

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 # no internet: no other host even resolves
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
WAIT_MS = DEADLINE * 1000

VIEWER = "query Who {\n  viewer {\n    userId\n    anonymous\n  }\n}\n"
JOB_CHANGED = ("subscription Watch {\n  jobChanged(jobId: \"%s\") {\n    jobId\n    status\n"
               "    progress {\n      percent\n    }\n  }\n}\n")
CREATE_JOB = "mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"
CLAIM = "mutation { claimJob(jobTypes: [\"graphiql\"]) { jobId } }"
PROGRESS = """mutation($id: ID!, $p: Int!) {
  updateJobProgress(jobId: $id, progress: {step: "s", percent: $p}) { version } }"""
COMPLETE = "mutation($id: ID!) { completeJob(jobId: $id, results: {ok: true}) { version } }"

EDITOR = "document.querySelector(%r).CodeMirror"
QUERY_EDITOR = EDITOR % ".graphiql-query-editor .CodeMirror"
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
RESULT = EDITOR % ".graphiql-response .CodeMirror"
STORAGE = "() => JSON.stringify({...window.localStorage})"


@pytest.fixture
async def live(settings: Any, mongo_uri: str, store: Any) -> AsyncIterator[Any]:
    async with live_server(settings, mongo_uri) as server:
        yield server


@pytest.fixture
async def http(live: Any, settings: Any) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=live.url, timeout=DEADLINE) as client:
        yield Api(client, settings)


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme), parts.netloc


class Browser:
    """What the page did besides what the test asked: requests elsewhere, sockets, errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.foreign: list[str] = []
        self.sockets: list[str] = []
        self.errors: list[str] = []


@asynccontextmanager
async def graphiql(live: Any) -> AsyncIterator[Browser]:
    """GraphiQL open in Chromium, which may reach the server's origin only."""
    chromium = require_tool("chromium", "Debian: apt-get install chromium")
    playwright = require_module("playwright.async_api")
    own = origin(live.url)
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            page = await context.new_page()
            seen = Browser(page)

            async def only_own_origin(route: Any) -> None:
                if origin(route.request.url) == own:
                    await route.continue_()
                else:
                    seen.foreign.append(route.request.url)
                    await route.abort()

            await context.route("**/*", only_own_origin)
            page.on("console", lambda m: m.type == "error" and seen.errors.append(m.text))
            page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
            page.on("websocket", lambda ws: seen.sockets.append(ws.url))
            await open_graphiql(page, live)
            yield seen
        finally:
            await browser.close()
    assert seen.foreign == [], "GraphiQL tried to reach another origin"
    assert seen.errors == []


async def open_graphiql(page: Any, live: Any) -> None:
    await page.goto(f"{live.url}/graphql")
    await page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=WAIT_MS)


async def type_headers(page: Any, headers: dict[str, str]) -> None:
    await page.get_by_role("button", name="Headers", exact=True).click()
    await page.locator(HEADERS_EDITOR).click()
    await page.keyboard.insert_text(json.dumps(headers))


async def run_operation(page: Any, text: str, name: str) -> None:
    """Put ``text`` in the query editor and run it, once GraphiQL has read its operation
    (it does so 100 ms after an edit; a click before runs the previous one)."""
    await page.evaluate(f"(q) => {QUERY_EDITOR}.setValue(q)", text)
    await page.wait_for_function(f"(name) => {QUERY_EDITOR}.operationName === name", arg=name,
                                 timeout=WAIT_MS)
    await page.locator(".graphiql-execute-button").click()


async def result_pane(page: Any) -> Any:
    """The result pane's JSON, or None while it is empty or not JSON yet."""
    text = await page.evaluate(f"() => {RESULT}.getValue()")
    try:
        return json.loads(text)
    except ValueError:
        return None


async def shows(page: Any, check: Any) -> Any:
    """The result pane's JSON once ``check`` accepts it."""
    async def current() -> Any:
        value = await result_pane(page)
        return value if value is not None and check(value) else None
    try:
        return await eventually(current, deadline=DEADLINE)
    except TimeoutError:
        raise AssertionError(f"result pane shows {await result_pane(page)!r}") from None


def job_state(status: str, percent: int | None) -> Any:
    def check(result: Any) -> bool:
        state = (result.get("data") or {}).get("jobChanged") or {}
        return state.get("status") == status and (
            (state.get("progress") or {}).get("percent") == percent)
    return check


async def test_graphiql_runs_a_query_and_a_subscription_with_no_internet(
        live: Any, http: Api, settings: Any, tmp_path: Any) -> None:
    job_id = (await http.data(CREATE_JOB, {"input": {"jobType": "graphiql"}},
                              as_=ALICE))["createJob"]["jobId"]
    token = mint_token(settings, "alice")

    async with graphiql(live) as browser:
        page = browser.page
        # given GraphiQL, loaded with no internet, with its explorer plugin
        await page.get_by_role("button", name="Show GraphiQL Explorer").click()
        await page.locator(".graphiql-explorer-root").get_by_text(
            "viewer", exact=True).wait_for(timeout=WAIT_MS)

        # when the bearer token is typed into the Headers tab and a query runs
        await type_headers(page, {"Authorization": f"Bearer {token}"})
        await run_operation(page, VIEWER, "Who")

        # then the result pane shows the signed-in viewer
        assert await shows(page, lambda r: "viewer" in r.get("data", {})) == {
            "data": {"viewer": {"userId": "alice", "anonymous": False}}}

        # when a subscription to the job runs and the job is driven over HTTP meanwhile,
        # each step once the previous one is on screen (the pane shows the latest event)
        await run_operation(page, JOB_CHANGED % job_id, "Watch")
        await shows(page, job_state("PENDING", None))
        await http.data(CLAIM, as_=WORKER)
        await shows(page, job_state("PROCESSING", None))
        await http.data(PROGRESS, {"id": job_id, "p": 40}, as_=WORKER)
        await shows(page, job_state("PROCESSING", 40))
        await http.data(COMPLETE, {"id": job_id}, as_=WORKER)

        # then each event appears in the result pane, the last one too
        final = await shows(page, job_state("COMPLETED", 40))
        await page.screenshot(path=str(tmp_path / "graphiql.png"))
        stored = await page.evaluate(STORAGE)

    assert final["data"]["jobChanged"]["jobId"] == job_id
    assert (tmp_path / "graphiql.png").stat().st_size > 10_000
    # over a WebSocket to the page's own origin
    assert browser.sockets
    assert {urlsplit(url)[:3] for url in browser.sockets} == {("ws", origin(live.url)[1],
                                                               "/graphql")}
    # the history was kept, the token was not
    assert "subscription Watch" in stored
    assert token not in stored


async def test_graphiql_persists_headers_only_when_the_user_turns_it_on(
        live: Any, settings: Any) -> None:
    token = mint_token(settings, "alice")
    async with graphiql(live) as browser:
        page = browser.page
        await type_headers(page, {"Authorization": f"Bearer {token}"})
        await run_operation(page, VIEWER, "Who")
        await shows(page, lambda r: "viewer" in r.get("data", {}))
        assert token not in await page.evaluate(STORAGE)

        # when the user turns on "Persist headers" and comes back later
        await page.get_by_role("button", name="Open settings dialog").click()
        persist = page.locator(".graphiql-dialog-section").filter(has_text="Persist headers")
        await persist.get_by_role("button", name="On", exact=True).click()
        await page.keyboard.press("Escape")
        await run_operation(page, VIEWER.replace("Who", "Again"), "Again")
        await shows(page, lambda r: "viewer" in r.get("data", {}))
        await open_graphiql(page, live)

        # then the token is back in the Headers tab
        await page.get_by_role("button", name="Headers", exact=True).click()
        assert token in await page.locator(HEADERS_EDITOR).inner_text()

        # when the user turns it off again and comes back
        await page.get_by_role("button", name="Open settings dialog").click()
        await persist.get_by_role("button", name="Off", exact=True).click()
        await page.keyboard.press("Escape")
        await open_graphiql(page, live)

        # then no copy of the token is left in storage, history included
        stored = await page.evaluate(STORAGE)
        assert "query Again" in stored
        assert token not in stored
