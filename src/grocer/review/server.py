"""`grocer review`: a local web page for class-by-class swipe review of the training set.

Starlette app + uvicorn. The page (static/index.html, review.js, review.css) talks to
a small JSON API (grocer.review.api); every decision is appended at once to the session's journal
(`grocer.review.journal`: one line, flock, fsync), so a crash or a closed tab loses
nothing, and restarting resumes where the journal left off.

Safety: the server binds 127.0.0.1 and every URL starts with a random token
(`/<token>/...`, secrets.token_urlsafe); any other path is 403. Images are served by
id from the catalog only, never by a path taken from the request. A malformed request
is a 400 with a message and writes nothing. Journal reads and appends happen under
the file lock, so two tabs (or two servers) on one session cannot corrupt it.

API (under /<token>/):
    GET  /                   the page
    GET  /static/<file>      its script and style sheet
    GET  /api/state          session, mode, classes with progress and action counts, order, hints
                             source, progress estimate (reviewed / total, time left at this pace)
    GET  /api/next?class=C   the next image of class C not yet decided in this session (or null)
    GET  /api/page?class=C&size=N   grid mode: the next N undecided images of class C
    GET  /api/quarantine?size=N     the next N undecided images that clean quarantined
    GET  /api/duplicates     clean's duplicate groups (cross-label first), with decided members
    GET  /api/item/<id>      one image's details (after an undo, the page shows it again)
    GET  /api/image/<id>     the image file
    GET  /api/thumb/<id>     its thumbnail (`grocer.review.thumbs`, cached on disk)
    GET  /api/summary        decisions per class and action, the latest ones, the command to apply
    POST /api/decision       {"image_id", "action": keep|suspicious|trash|relabel, "new_label"?}
    POST /api/decisions      {"decisions": [decision, ...]}: a grid page or a duplicate group,
                             every line in one write and one fsync, all or nothing
    POST /api/undo           {} -> undoes the session's latest live decision (any class);
                             {"event_ids": [...]} -> undoes those (a whole page), in one write
"""

from __future__ import annotations

import getpass
import re
import secrets
import socket
import sys
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grocer import paths
from grocer.errors import GrocerError
from grocer.params import Params
from grocer.review import journal
from grocer.review.api import MAX_PAGE, ReviewAPI
from grocer.review.catalog import Catalog, load_catalog
from grocer.review.session import SessionLog

MODES = ("single", "grid")
STATIC = resources.files("grocer.review") / "static"
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                                 b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),  # the token is in the URL: never send it elsewhere
    (b"x-content-type-options", b"nosniff"),
]


class TokenGate:
    """ASGI middleware: only `/<token>` and `/<token>/...` get through; the rest is 403."""

    def __init__(self, app: ASGIApp, token: str):
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        head, slash, _ = scope["path"][1:].partition("/")
        if not secrets.compare_digest(head.encode(), self.token):
            response: Response = PlainTextResponse(
                "403 forbidden: open the URL that `grocer review` printed (it carries the session's token)\n",
                status_code=403,
            )
        elif not slash:
            response = RedirectResponse(f"/{head}/", status_code=307)
        else:
            await self.app(scope, receive, send_with_headers)
            return
        await response(scope, receive, send_with_headers)


def create_app(
    params: Params, session: str, token: str, order: str = "likely_errors", root: Path = Path("."),
    mode: str = "single", page_size: int = 0,
) -> Starlette:
    """The review app for the project at `root` (tests pass a tmp project).

    `mode` is the page's initial mode (single or grid); `page_size` the grid's number
    of thumbnails per page (0: as many as fit the window).
    """
    if mode not in MODES:
        raise GrocerError(f"mode {mode!r} is unknown; allowed: {', '.join(MODES)}")
    if not 0 <= page_size <= MAX_PAGE:
        raise GrocerError(f"page size {page_size} is out of range: 1 to {MAX_PAGE}, or 0 to fit the window")
    journal.check_session(session)
    catalog = load_catalog(params, order, root)
    journal_rel = paths.session_journal(session)
    log = SessionLog(root / journal_rel)
    log.live()  # a broken journal stops the start, not the first click
    api = ReviewAPI(catalog, log, session, journal_rel, params.clean.variant, mode, page_size, root)
    routes = [
        Route("/", page),
        Mount("/static", StaticFiles(directory=str(STATIC))),
        Route("/api/state", api.state),
        Route("/api/next", api.next_item),
        Route("/api/page", api.grid_page),
        Route("/api/quarantine", api.quarantine_page),
        Route("/api/duplicates", api.duplicate_groups),
        Route("/api/item/{image_id}", api.item_info),
        Route("/api/image/{image_id}", api.image),
        Route("/api/thumb/{image_id}", api.thumb),
        Route("/api/summary", api.summary),
        Route("/api/decision", api.decision, methods=["POST"]),
        Route("/api/decisions", api.decisions, methods=["POST"]),
        Route("/api/undo", api.undo, methods=["POST"]),
    ]
    app = Starlette(
        routes=[Mount(f"/{token}", routes=routes)],
        middleware=[Middleware(TokenGate, token=token)],
        exception_handlers={HTTPException: http_error, GrocerError: grocer_error},
    )
    app.state.catalog = catalog
    return app


async def page(request: Request) -> Response:
    return Response((STATIC / "index.html").read_bytes(), media_type="text/html; charset=utf-8",
                    headers={"cache-control": "no-store"})


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers={"cache-control": "no-store"})


async def grocer_error(request: Request, exc: GrocerError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=500)


def default_session() -> str:
    """The user name as a session name, so a restart resumes the same journal."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", user).strip("-_")[:64]
    return name or "review"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: only then does asyncio set TCP_NODELAY on each connection;
    # without it every keep-alive request after the first waited ~40 ms (Nagle + delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise GrocerError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port") from None
    sock.listen(64)
    return sock


def run(params: Params, port: int, session: str | None, host: str, order: str, mode: str, page_size: int) -> None:
    import uvicorn  # imported here: only this command needs it

    session = journal.check_session(session or default_session())
    demo = paths.session_journal(session, paths.SAMPLE_REVIEW_DIR)
    if Path(params.data.dir) == paths.SAMPLE_DIR and demo.exists():
        raise GrocerError(f"session {session!r} is the sample's demo journal ({demo}); pick another --session")
    token = secrets.token_urlsafe(18)
    app = create_app(params, session, token, order, mode=mode, page_size=page_size)
    catalog: Catalog = app.state.catalog
    if catalog.warning is not None:
        print(f"grocer review: warning: {catalog.warning}", file=sys.stderr)
    elif catalog.predictions is None:
        print("grocer review: no OOF predictions yet (run `dvc repro` first for hints): no hints, file order")
    else:
        print(f"grocer review: hints from {catalog.predictions}; order: {catalog.order}")
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/{token}/"
    print(f"grocer review: session {session!r} -> {paths.session_journal(session)}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"grocer review: note: listening on {host}: anyone who can reach it and has the URL can edit the journal")
    print(f"grocer review: open {url}   (Ctrl+C to stop; then `dvc repro review` applies the decisions)", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
