"""``GET /`` and ``GET /static/{name}``: the dashboard's pages, from package data.

The pages are plain files in ``ember/dashboard/static`` (no build step).
:class:`StaticFiles` reads them once when the routes are added and answers
with bytes it holds, so a request can only ever name one of those files: a
name outside that listing (``..``, ``/``, ``%2e``...) is a 404 before any
path is built.

Caching: ``index.html`` names every script and stylesheet with
``?v=<digest of all the files>``.  A file asked for with the current digest
is immutable (cached for a year: the next ember names a new digest); any
other request of it, and ``/`` itself, is revalidated on every load
(``no-cache`` + ``ETag``, answered 304 when it matches).  Everything is
``private``: the responses are behind the cluster token.  Each file is
gzipped once at start and sent so to a browser that accepts it.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from ember.dashboard.context import DashboardContext

#: the placeholder in index.html that becomes the digest of the files
VERSION_MARK = "%EMBER_STATIC_VERSION%"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

#: the pages load nothing from elsewhere and run no inline script
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
REVALIDATE = "private, no-cache"
IMMUTABLE = "private, max-age=31536000, immutable"


@dataclass(frozen=True)
class StaticFile:
    """One file the dashboard serves: its bytes, content type and ETag.

    ``gzipped`` is the body compressed once at start (None when that saves
    too little to be worth it); its ETag is ``etag`` with ``-gz``.
    """

    body: bytes
    content_type: str
    etag: str
    gzipped: bytes | None = None

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'


class StaticFiles:
    """The files of the static folder, read once; the answer to each request.

    ``files`` maps a bare file name to its contents (the folder has no
    subfolders).  ``index.html`` is served at ``/`` with the digest put in.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        if "index.html" not in files:
            raise ValueError("the dashboard's static folder has no index.html")
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        self.version = digest.hexdigest()[:16]
        self.files: dict[str, StaticFile] = {}
        for name, body in files.items():
            if name == "index.html":
                body = body.replace(VERSION_MARK.encode(), self.version.encode())
            ctype = CONTENT_TYPES.get(_suffix(name), "application/octet-stream")
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            packed = gzip.compress(body, 9, mtime=0)
            small = packed if len(packed) < 0.9 * len(body) else None
            self.files[name] = StaticFile(body, ctype, etag, small)

    @classmethod
    def from_package(cls) -> StaticFiles:
        """The files shipped in ``ember/dashboard/static``."""
        folder = resources.files("ember.dashboard").joinpath("static")
        files = {
            entry.name: entry.read_bytes()
            for entry in folder.iterdir()
            if entry.is_file() and not entry.name.startswith(".")
        }
        return cls(files)

    def response(
        self,
        name: str,
        *,
        version: str = "",
        if_none_match: str = "",
        accept_encoding: str = "",
    ) -> web.Response:
        """The answer to a request of file ``name`` (404 if it is not one of ours)."""
        f = self.files.get(name)
        if f is None:
            raise web.HTTPNotFound(text=f"no such dashboard file: {name!r}\n")
        cache = IMMUTABLE if version and version == self.version else REVALIDATE
        packed = f.gzipped is not None and accepts_gzip(accept_encoding)
        etag = f.gzip_etag if packed else f.etag
        headers = {
            "Cache-Control": cache,
            "ETag": etag,
            "Vary": "Accept-Encoding",
            **SECURITY_HEADERS,
        }
        if etag in {t.strip() for t in if_none_match.split(",")}:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = f.content_type
        if packed:
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=f.gzipped, headers=headers)
        return web.Response(body=f.body, headers=headers)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header admits gzip (``q=0`` refuses it)."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


def add_routes(app: web.Application, ctx: DashboardContext) -> None:
    files = StaticFiles.from_package()

    async def index(request: web.Request) -> web.Response:
        return files.response(
            "index.html",
            if_none_match=request.headers.get("If-None-Match", ""),
            accept_encoding=request.headers.get("Accept-Encoding", ""),
        )

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "index.html":  # served at / only, with its own caching
            raise web.HTTPNotFound(text="the dashboard's page is at /\n")
        return files.response(
            name,
            version=request.query.get("v", ""),
            if_none_match=request.headers.get("If-None-Match", ""),
            accept_encoding=request.headers.get("Accept-Encoding", ""),
        )

    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
