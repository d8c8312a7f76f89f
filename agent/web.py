"""The web UI: `GET /` and `GET /static/{path}` from this package's `static/` folder, nothing else.

Plain HTML, CSS and ES modules, no build step and nothing from another origin. The page names its
assets with a `?v=<content hash>` query; a request carrying the current hash is cached for a year,
any other answers `no-cache` with an ETag so the browser revalidates (modules imported by other
modules arrive that way). Every answer carries a strict Content-Security-Policy.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# What a Host header may hold before it goes into the CSP: a name or an IP literal, and a port.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
# Asset references in index.html that get the version query: src="/static/x" or href="/static/x".
_ASSET_REF = re.compile(r'(?P<attr>\b(?:src|href))="/static/(?P<name>[A-Za-z0-9_.-]+)"')


def content_security_policy(host: str | None) -> str:
    """Same-origin everything; the WebSocket of this host spelled out for browsers that need it."""
    connect = ["'self'"]
    if host and _HOST.fullmatch(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "font-src 'self'",
            "connect-src " + " ".join(connect),
            "manifest-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(request: Request) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(request.headers.get("host")),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    version: str  # a short content hash, used as `?v=`

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def _hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


class StaticFiles:
    """The files of one folder, by plain name or `sub/name`; hidden names, `..` and links out refused.

    Files are re-read when their size or modification time changes, so an edited file is served
    at once (with a new version) without a restart.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, tuple[tuple[int, int], Asset]] = {}

    def path_of(self, name: str) -> Path | None:
        if not name or "\\" in name or "\x00" in name or name.startswith("/"):
            return None
        parts = name.split("/")
        if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
            return None
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        if path.suffix.lower() not in CONTENT_TYPES:
            return None
        return path

    def get(self, name: str) -> Asset | None:
        path = self.path_of(name)
        if path is None:
            return None
        try:
            stat = path.stat()
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._cache.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
            body = path.read_bytes()
        except OSError:
            return None
        asset = Asset(body, CONTENT_TYPES[path.suffix.lower()], _hash(body))
        self._cache[path] = (key, asset)
        return asset

    def index(self) -> Asset | None:
        """index.html with each `/static/<name>` reference carrying `?v=<hash of that file>`."""
        page = self.get(INDEX)
        if page is None:
            return None

        def versioned(match: re.Match[str]) -> str:
            asset = self.get(match["name"])
            suffix = f"?v={asset.version}" if asset is not None else ""
            return f'{match["attr"]}="/static/{match["name"]}{suffix}"'

        body = _ASSET_REF.sub(versioned, page.body.decode("utf-8")).encode("utf-8")
        return Asset(body, page.content_type, _hash(body))


def _answer(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = security_headers(request)
    headers["Cache-Control"] = cache_control
    headers["ETag"] = asset.etag
    if asset.etag in _etags(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)  # HEAD: server drops body


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def web_router(static_dir: Path = STATIC_DIR) -> APIRouter:
    """`GET /` (the page, revalidated on every load) and `GET /static/{path}` (the assets)."""
    files = StaticFiles(static_dir)
    router = APIRouter(tags=["web"], include_in_schema=False)

    def not_found() -> HTTPException:
        return HTTPException(status_code=404, detail="Not Found")

    @router.api_route("/", methods=["GET", "HEAD"])
    async def page(request: Request) -> Response:
        asset = files.index()
        if asset is None:
            raise not_found()
        return _answer(request, asset, REVALIDATE)

    @router.api_route("/static/{name:path}", methods=["GET", "HEAD"])
    async def static(name: str, request: Request) -> Response:
        asset = files.get(name)
        if asset is None:
            raise not_found()
        current = request.query_params.get("v") == asset.version
        return _answer(request, asset, IMMUTABLE if current else REVALIDATE)

    return router
