"""The web UI as the server ships it: routes, types, cache headers, CSP, and nothing outside `static/`.

No browser here; the end-to-end test drives the page in Chromium against the real app.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent import web
from agent.web import STATIC_DIR, content_security_policy, web_router

REPO = Path(__file__).resolve().parents[2]
ASSETS = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())
TEST_IDS = [
    "chat-input",
    "chat-send",
    "chat-log",
    "filter-status",
    "ws-status",
    "announcer",
    "alerter",
    "skip-link",
]
# A URL of another origin (the SVG namespace is a name, not a fetch).
FOREIGN_URL = re.compile(r"(?<![\w.])(?:https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}")
MARKUP_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")


def client_for(static_dir: Path = STATIC_DIR) -> TestClient:
    app = FastAPI()
    app.include_router(web_router(static_dir))
    return TestClient(app)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with client_for() as c:
        yield c


def versioned_refs(html: str) -> dict[str, str]:
    """name -> version, for every `/static/<name>?v=<version>` the page references."""
    return dict(re.findall(r'"/static/([A-Za-z0-9_.-]+)\?v=([0-9a-f]+)"', html))


def csp_directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


# ---------------------------------------------------------------- the page


def test_index_is_html_revalidated_on_each_load(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"].startswith('"')
    assert "<title>Todo Chatbot</title>" in response.text


def test_index_names_its_assets_with_their_content_hash(client: TestClient) -> None:
    refs = versioned_refs(client.get("/").text)
    assert {"app.js", "app.css", "icon.svg"} <= set(refs)
    for name, version in refs.items():
        asset = client.get(f"/static/{name}", params={"v": version})
        assert asset.status_code == 200
        assert asset.headers["etag"] == f'"{version}"'
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_index_conditional_get_answers_304(client: TestClient) -> None:
    etag = client.get("/").headers["etag"]
    again = client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag


def test_head_is_answered_without_a_body(client: TestClient) -> None:
    response = client.head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"].startswith("text/html")


def test_every_test_id_the_browser_test_relies_on_is_in_the_page(client: TestClient) -> None:
    html = client.get("/").text
    for test_id in TEST_IDS:
        assert f'data-testid="{test_id}"' in html, test_id
    assert re.search(r'data-testid="chat-log"[^>]*aria-live="polite"', html)
    # In the page from the start: a live region added with its words is often not read out.
    assert re.search(r'data-testid="announcer"[^>]*role="status"[^>]*aria-live="polite"', html)
    assert re.search(r'data-testid="alerter"[^>]*role="alert"', html)


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/app.css", "/static/icon.svg"])
def test_security_headers_on_every_answer(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = csp_directives(response.headers["content-security-policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["connect-src"] == ["'self'", "ws://testserver", "wss://testserver"]
    assert not any("unsafe" in source for sources in csp.values() for source in sources)


@pytest.mark.parametrize(
    "host",
    ["evil.example; script-src *", "a b", "x'y", "host\r\nSet-Cookie: a=b", "", "é.example"],
)
def test_a_hostile_host_header_cannot_widen_the_policy(host: str) -> None:
    csp = csp_directives(content_security_policy(host))
    assert csp["connect-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "todo.example.com", "[::1]:8000"])
def test_the_socket_of_the_same_host_is_allowed(host: str) -> None:
    assert csp_directives(content_security_policy(host))["connect-src"] == [
        "'self'",
        f"ws://{host}",
        f"wss://{host}",
    ]


# ---------------------------------------------------------------- assets


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
        ("index.html", "text/html; charset=utf-8"),
    ],
)
def test_asset_content_types(client: TestClient, name: str, content_type: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


@pytest.mark.parametrize("name", [n for n in ASSETS if n.endswith(".js")])
def test_every_module_is_served_as_javascript(client: TestClient, name: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"


def test_unversioned_or_stale_version_is_revalidated_not_cached_long(client: TestClient) -> None:
    plain = client.get("/static/app.js")
    assert plain.headers["cache-control"] == "no-cache"
    stale = client.get("/static/app.js", params={"v": "0000000000000000"})
    assert stale.status_code == 200
    assert stale.headers["cache-control"] == "no-cache"
    assert client.get("/static/app.js", headers={"If-None-Match": plain.headers["etag"]}).status_code == 304
    weak = client.get("/static/app.js", headers={"If-None-Match": f'W/{plain.headers["etag"]}, "x"'})
    assert weak.status_code == 304


def test_an_edited_file_is_served_at_once_with_a_new_version(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<script type="module" src="/static/app.js"></script>')
    (tmp_path / "app.js").write_text("export const a = 1;\n")
    with client_for(tmp_path) as c:
        first = versioned_refs(c.get("/").text)["app.js"]
        (tmp_path / "app.js").write_text("export const a = 2; // changed\n")
        second = versioned_refs(c.get("/").text)["app.js"]
        assert first != second
        assert c.get("/static/app.js", params={"v": second}).text == "export const a = 2; // changed\n"


def test_missing_asset_is_404(client: TestClient) -> None:
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/").status_code == 404


# ---------------------------------------------------------------- only files from static/


@pytest.mark.parametrize(
    "path",
    [
        "/static/../web.py",
        "/static/..%2fweb.py",
        "/static/%2e%2e/web.py",
        "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/static/..%2f..%2fpyproject.toml",
        "/static/....//web.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/..%5cweb.py",
        "/static/app.js%00.css",
        "/static/.hidden",
    ],
)
def test_paths_outside_static_are_refused(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "import" not in response.text  # no Python source leaked


@pytest.mark.parametrize(
    "name",
    [
        "../web.py",
        "./app.js",
        "a/../app.js",
        "/etc/passwd",
        "..\\web.py",
        "app.js\x00",
        "",
        ".",
        "..",
        "//app.js",
    ],
)
def test_names_that_are_not_plain_paths_inside_static_are_refused(name: str) -> None:
    """The check itself, as a client that does not normalise URLs would reach it."""
    assert web.StaticFiles(STATIC_DIR).path_of(name) is None


def test_links_hidden_files_subfolders_and_unknown_types(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<p>hi</p>")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (static / "link.txt").symlink_to(secret)
    (static / ".env.txt").write_text("hidden")
    (static / "server.py").write_text("print('source')")
    (static / "sub").mkdir()
    (static / "sub" / "ok.css").write_text("p{}")
    (static / "sub" / "..txt").write_text("odd")
    with client_for(static) as c:
        assert c.get("/static/link.txt").status_code == 404
        assert c.get("/static/.env.txt").status_code == 404
        assert c.get("/static/server.py").status_code == 404
        assert c.get("/static/sub").status_code == 404
        assert c.get("/static/sub/ok.css").status_code == 200
        assert c.get("/static/sub/..txt").status_code == 404


def test_no_index_file_is_404(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        assert c.get("/").status_code == 404


# ---------------------------------------------------------------- what ships


def test_the_page_runs_under_the_policy_offline() -> None:
    """No inline script or style, no handler attributes, nothing fetched from another origin."""
    html = (STATIC_DIR / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/static/' in tag, tag
    assert not re.search(r"<script\b[^>]*>(?!</script>)", html), "inline script"
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html, re.IGNORECASE)
    for name in ASSETS:
        text = (STATIC_DIR / name).read_text()
        assert not FOREIGN_URL.search(text), name
        assert "@import" not in text, name


def test_scripts_never_write_markup() -> None:
    """Titles and model text go in as text: no innerHTML, outerHTML, insertAdjacentHTML, eval."""
    for name in (n for n in ASSETS if n.endswith(".js")):
        text = (STATIC_DIR / name).read_text()
        for sink in MARKUP_SINKS:
            assert sink not in text, f"{name} uses {sink}"


def test_every_module_imported_is_shipped() -> None:
    for name in (n for n in ASSETS if n.endswith(".js")):
        for target in re.findall(r'from\s+"\./([^"]+)"', (STATIC_DIR / name).read_text()):
            assert target in ASSETS, f"{name} imports missing {target}"


def test_static_folder_is_flat_so_package_data_ships_it() -> None:
    """pyproject's package data is `static/*`: a subfolder would not be installed."""
    assert "static/*" in (REPO / "pyproject.toml").read_text()
    assert all(p.is_file() for p in STATIC_DIR.iterdir())
    assert all(p.suffix in web.CONTENT_TYPES for p in STATIC_DIR.iterdir())


def test_web_imports_none_of_the_other_packages() -> None:
    tree = ast.parse(Path(web.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"mcp_server", "event_handlers", "todo_chatbot"}
