"""GraphiQL works offline: its page and every file the page loads come from the API (the
installed package), and nothing they reference lives on another origin. The vendored files
are the npm packages' own, licenses kept, and the wheel ships them."""

from __future__ import annotations

import glob
import hashlib
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from graph.server.graphiql import ASSETS, MOUNT
from tests.helpers.graphql import Api, make_settings, open_api

ROOT = Path(__file__).resolve().parents[2]
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PAGE = "http://test/graphql"

# http://host, https://host, //host: an address on another origin (or possibly so)
ABSOLUTE = re.compile(r"(?i)(?:\bhttps?:)?//[a-z0-9.-]+")
CSS_REFERENCES = re.compile(r"""(?i)url\(\s*["']?([^"')]+)|@import\s+["']([^"']+)""")
JS_REFERENCES = re.compile(r"[#@]\s*source(?:Mapping)?URL=(\S+)")
# code that would load something from an address written in the file
JS_LOADS = re.compile(r"""(?:\bimport|importScripts|fetch|Worker|WebSocket|EventSource"""
                      r"""|sendBeacon)\(\s*["'`](?:https?:)?//|\.src\s*=\s*["'`](?:https?:)?//""")


class References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "poster", "data") and value is not None:
                self.found.append((tag, value))


def references(html: str) -> list[tuple[str, str]]:
    parser = References()
    parser.feed(html)
    return parser.found


def local(reference: str) -> bool:
    """A data: URL or a path on the page's own origin."""
    parts = urlsplit(reference.strip())
    return parts.scheme == "data" or (not parts.scheme and not parts.netloc)


async def page(api: Api) -> httpx.Response:
    response = await api.client.get("/graphql", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response


async def test_graphiql_page_and_every_file_it_loads_are_served_from_the_api(api: Api) -> None:
    # given the page a browser gets
    response = await page(api)
    html = response.text

    # then it names no other origin, and its policy lets the browser load from none
    assert ABSOLUTE.findall(html) == []
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    assert ABSOLUTE.findall(policy) == [] and "*" not in policy

    # and every script and stylesheet it references is served here
    found = references(html)
    scripts = [ref for tag, ref in found if tag == "script"]
    styles = [ref for tag, ref in found if tag == "link" and not ref.startswith("data:")]
    assert len(scripts) == 5 and len(styles) == 2
    assert all(local(ref) for _, ref in found), found
    seen = []
    for reference in scripts + styles:
        url = urljoin(PAGE, reference)
        assert url.startswith(f"http://test{MOUNT}/")
        asset = await api.client.get(url)
        assert asset.status_code == 200, url
        kind = asset.headers["content-type"]
        text = asset.text
        if reference in scripts:
            assert "javascript" in kind, (url, kind)
            assert JS_LOADS.findall(text) == [], url
            pointers = JS_REFERENCES.findall(text)
        else:
            assert kind.startswith("text/css"), (url, kind)
            pointers = [a or b for a, b in CSS_REFERENCES.findall(text)]
            pointers += JS_REFERENCES.findall(text)
        # what they point to (fonts, source maps for devtools) is on this origin or inline
        assert all(local(pointer) for pointer in pointers), (url, pointers)
        seen += pointers
    assert any(pointer.startswith("data:font/") for pointer in seen)  # the check looked
    assert "graphiql.min.js.map" in seen


async def test_graphiql_page_sends_headers_from_its_own_script_and_persists_none(
        api: Api) -> None:
    script = (ASSETS / "jobgraph-graphiql.js").read_text()
    # GraphiQL keeps headers out of storage unless shouldPersistHeaders is passed or the
    # user turns it on; the browser test checks the storage itself
    assert re.search(r"shouldPersistHeaders\s*:", script) is None
    assert "isHeadersEditorEnabled: true" in script
    assert "explorerPlugin()" in script
    assert "jobgraph-graphiql.js" in (await page(api)).text


async def test_graphiql_versioned_files_are_cached_for_good_and_ours_revalidated(
        api: Api) -> None:
    vendored = await api.client.get(f"{MOUNT}/graphiql-3.8.3/graphiql.min.css")
    ours = await api.client.get(f"{MOUNT}/jobgraph-graphiql.js")
    page_response = await page(api)

    assert "immutable" in vendored.headers["cache-control"]
    assert "max-age=31536000" in vendored.headers["cache-control"]
    assert ours.headers["cache-control"] == "no-cache"
    assert page_response.headers["cache-control"] == "no-cache"
    again = await api.client.get(f"{MOUNT}/jobgraph-graphiql.js",
                                 headers={"if-none-match": ours.headers["etag"]})
    assert again.status_code == 304


async def test_graphiql_assets_answer_404_for_what_is_not_there(api: Api) -> None:
    for path in ("nothing.js", "../graphiql.py", "graphiql-3.8.3/graphiql.min.js.map"):
        response = await api.client.get(f"{MOUNT}/{path}")
        assert response.status_code == 404, path


async def test_graphiql_off_serves_neither_the_page_nor_its_files(
        mongo_uri: str, database_name: str, store: Any) -> None:
    settings = make_settings(database=database_name, graphiql=False)
    async with open_api(settings, mongo_uri) as api:
        response = await api.client.get("/graphql", headers=BROWSER)
        asset = await api.client.get(f"{MOUNT}/graphiql-3.8.3/graphiql.min.js")

    assert response.status_code == 404
    assert "html" not in response.headers.get("content-type", "")
    assert asset.status_code == 404


def vendored_directories() -> list[Path]:
    return sorted(path for path in ASSETS.iterdir() if path.is_dir())


def test_graphiql_vendored_files_are_unchanged_and_licensed() -> None:
    listed = {}
    for line in (ASSETS / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    files = {str(path.relative_to(ASSETS)) for folder in vendored_directories()
             for path in folder.rglob("*") if path.is_file() and path.name != "LICENSE"}
    versions = (ASSETS / "VERSIONS.md").read_text()

    assert set(listed) == files
    for name, digest in listed.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name
    assert len(vendored_directories()) == 4
    for folder in vendored_directories():
        package, version = folder.name.rsplit("-", 1)
        assert f"{package}@{version}`" in versions, folder.name
        assert "MIT License" in (folder / "LICENSE").read_text(), folder.name


def test_graphiql_files_are_package_data_so_the_wheel_ships_them() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["graph.server"]
    package = ROOT / "graph" / "server"
    # setuptools expands package-data globs relative to the package, as glob does
    shipped = {match for pattern in patterns
               for match in glob.glob(pattern, root_dir=package) if (package / match).is_file()}
    on_disk = {str(path.relative_to(package)) for path in ASSETS.rglob("*") if path.is_file()}
    graphiql = {match for match in shipped if match.startswith("static/graphiql/")}

    assert on_disk and graphiql == on_disk


@pytest.mark.parametrize("reference", ["https://unpkg.com/x.js", "//cdn.example/x.css",
                                       "HTTP://example.org"])
def test_graphiql_check_spots_another_origin(reference: str) -> None:
    assert ABSOLUTE.findall(f'<script src="{reference}"></script>')
    assert not local(reference)
