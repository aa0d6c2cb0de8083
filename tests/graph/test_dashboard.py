"""The dashboard is served from the package with nothing from another origin: every /ui/
path answers the app shell (so its URLs reload and share), every module the app imports is
served here (ours revalidated, vendored ones cached for good), the vendored files are the
npm packages' own with their licenses, the wheel ships them, and the switch turns it off.
(tests/graph/test_dashboard_browser.py runs it in Chromium.)"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from graph.server.dashboard import ASSETS, CONTENT_SECURITY_POLICY, IMPORTS, MOUNT
from tests.graph.test_graphiql import ABSOLUTE, CSS_REFERENCES, JS_LOADS, local, references
from tests.helpers.graphql import Api, make_settings, open_api

ROOT = Path(__file__).resolve().parents[2]
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
VENDOR = ASSETS / "vendor"
IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)
BASE = re.compile(r'<base href="([^"]+)">')
# static imports and re-exports of an ES module: statements, not words in a string
MODULE_IMPORTS = re.compile(
    r"""(?m)(?:^|;)\s*(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?["']([^"']+)["']""")
DYNAMIC_IMPORTS = re.compile(r"""\bimport\s*\(""")


async def shell(api: Api, path: str = "/ui") -> httpx.Response:
    response = await api.client.get(path, headers=BROWSER)
    assert response.status_code == 200, path
    assert response.headers["content-type"].startswith("text/html")
    return response


def module_graph_from(page_url: str, html: str) -> tuple[str, dict[str, str]]:
    """The entry module's URL and the import map's addresses, as the browser resolves them."""
    base = urljoin(page_url, BASE.search(html).group(1))
    entry = [ref for tag, ref in references(html) if tag == "script"]
    assert len(entry) == 1
    imports = json.loads(IMPORT_MAP.search(html).group(1))["imports"]
    return urljoin(base, entry[0]), {name: urljoin(base, url) for name, url in imports.items()}


async def test_every_ui_path_answers_the_same_shell_with_a_strict_policy(api: Api) -> None:
    pages = [await shell(api, path) for path in
             ("/ui", "/ui/", "/ui/jobs", "/ui/jobs/0b9f-x?status=FAILED", "/ui/no/such/page")]

    assert len({page.text for page in pages}) == 1
    html, headers = pages[0].text, pages[0].headers
    # nothing from another origin, by the page and by its policy
    assert ABSOLUTE.findall(html) == []
    assert all(local(ref) for _, ref in references(html))
    policy = headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    assert ABSOLUTE.findall(policy) == [] and "*" not in policy and "unsafe" not in policy
    # the one inline script, the import map, is allowed by its hash and nothing else
    inline = IMPORT_MAP.search(html).group(1)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}';" in policy
    assert html.count("<script") == 2
    assert headers["cache-control"] == "no-cache"
    assert headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in policy


async def test_every_module_the_app_imports_is_served_here(api: Api) -> None:
    # given the modules the browser would load: the entry, then whatever each imports
    html = (await shell(api, "/ui/jobs/x")).text
    entry, import_map = module_graph_from("http://test/ui/jobs/x", html)
    assert set(import_map) == set(IMPORTS)
    pending, seen = [entry], set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        response = await api.client.get(url)

        # then each is JavaScript from this origin that loads nothing from elsewhere
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith("text/javascript"), url
        source = response.text
        assert JS_LOADS.findall(source) == [], url
        assert DYNAMIC_IMPORTS.findall(source) == [], url
        for specifier in MODULE_IMPORTS.findall(source):
            if specifier.startswith(("./", "../")):
                pending.append(urljoin(url, specifier))
            else:  # a bare name: the import map must know it
                assert specifier in import_map, (url, specifier)
                pending.append(import_map[specifier])

    ours = {url for url in seen if "/vendor/" not in url}
    on_disk = {path for path in ASSETS.rglob("*.js") if "vendor" not in path.parts}
    assert len(ours) == len(on_disk), "a module of ours that nothing imports"
    assert set(import_map.values()) <= seen
    # and the stylesheet and icon too
    for name in ("style.css", "favicon.svg"):
        response = await api.client.get(f"{MOUNT}/{name}")
        assert response.status_code == 200
        pointers = [a or b for a, b in CSS_REFERENCES.findall(response.text)]
        assert all(local(pointer) for pointer in pointers), pointers


async def test_vendored_modules_are_cached_for_good_and_ours_revalidated(api: Api) -> None:
    vendored = await api.client.get(f"{MOUNT}/vendor/preact-11.2.0/preact.mjs")
    ours = await api.client.get(f"{MOUNT}/app.js")

    assert "immutable" in vendored.headers["cache-control"]
    assert "max-age=31536000" in vendored.headers["cache-control"]
    # a module must be served as JavaScript whatever the system's MIME table says of .mjs
    assert vendored.headers["content-type"] == "text/javascript; charset=utf-8"
    assert ours.headers["cache-control"] == "no-cache"
    again = await api.client.get(f"{MOUNT}/app.js", headers={"if-none-match": ours.headers["etag"]})
    assert again.status_code == 304


async def test_what_is_not_there_is_404_not_the_shell(api: Api) -> None:
    for path in ("nothing.js", "%2e%2e/%2e%2e/dashboard.py", "vendor/preact-11.2.0/preact.mjs.map",
                 ""):
        response = await api.client.get(f"{MOUNT}/{path}")
        assert response.status_code == 404, path
    assert (await api.client.get("/uix", headers=BROWSER)).status_code == 404


async def test_the_shell_names_its_base_under_a_path_prefix(app: Any) -> None:
    transport = httpx.ASGITransport(app=app, root_path="/jobs-api")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/ui/jobs", headers=BROWSER)

    assert response.status_code == 200
    assert BASE.search(response.text).group(1) == "/jobs-api/ui/"


@pytest.mark.parametrize(("trusted", "said"), [(False, "false"), (True, "true")])
async def test_the_shell_tells_the_app_whether_the_user_header_is_trusted(
        mongo_uri: str, database_name: str, store: Any, trusted: bool, said: str) -> None:
    settings = make_settings(database=database_name, dev_trust_user_header=trusted)
    async with open_api(settings, mongo_uri) as api:
        html = (await shell(api)).text
    assert f'data-dev-user-header="{said}"' in html


async def test_dashboard_off_serves_neither_the_shell_nor_its_files(
        mongo_uri: str, database_name: str, store: Any) -> None:
    settings = make_settings(database=database_name, dashboard=False)
    async with open_api(settings, mongo_uri) as api:
        answers = [await api.client.get(path, headers=BROWSER)
                   for path in ("/ui", "/ui/", "/ui/jobs/x", f"{MOUNT}/app.js")]
        graphiql = await api.client.get("/graphql", headers=BROWSER)

    assert [answer.status_code for answer in answers] == [404] * 4
    assert all("html" not in answer.headers.get("content-type", "") for answer in answers)
    assert graphiql.status_code == 200  # the other switch is its own


def vendored_directories() -> list[Path]:
    return sorted(path for path in VENDOR.iterdir() if path.is_dir())


def test_vendored_files_are_unchanged_and_licensed() -> None:
    listed = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    files = {str(path.relative_to(VENDOR)) for folder in vendored_directories()
             for path in folder.rglob("*") if path.is_file() and path.name != "LICENSE"}
    versions = (VENDOR / "VERSIONS.md").read_text()

    assert set(listed) == files
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert [folder.name for folder in vendored_directories()] == [
        "graphql-ws-6.4.2", "htm-3.1.1", "preact-11.2.0"]
    for folder in vendored_directories():
        package, version = folder.name.rsplit("-", 1)
        assert f"`{package}@{version}`" in versions, folder.name
        license_text = (folder / "LICENSE").read_text()
        assert "MIT License" in license_text or "Apache License" in license_text, folder.name
    # the import map names exactly the vendored modules
    assert {url.split("/vendor/")[1] for url in IMPORTS.values()} <= files


def test_dashboard_files_are_package_data_so_the_wheel_ships_them() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["graph.server"]
    package = ROOT / "graph" / "server"
    shipped = {match for pattern in patterns
               for match in glob.glob(pattern, root_dir=package) if (package / match).is_file()}
    on_disk = {str(path.relative_to(package)) for path in ASSETS.rglob("*") if path.is_file()}

    assert len(on_disk) > 20
    assert on_disk <= shipped
