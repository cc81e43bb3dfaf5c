"""`grocer review`: a local web page for class-by-class swipe review of the training set.

Starlette app + uvicorn. The page (static/index.html, review.js, review.css) talks to
a small JSON API; every decision is appended at once to the session's journal
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
    GET  /api/state          session, classes with progress and action counts, order, hints source
    GET  /api/next?class=C   the next image of class C not yet decided in this session (or null)
    GET  /api/item/<id>      one image's details (after an undo, the page shows it again)
    GET  /api/image/<id>     the image file
    GET  /api/summary        decisions per class and action, the latest ones, the command to apply
    POST /api/decision       {"image_id", "action": keep|suspicious|trash|relabel, "new_label"?}
    POST /api/undo           {} -> undoes the session's latest live decision (any class)
"""

from __future__ import annotations

import getpass
import json
import re
import secrets
import socket
import threading
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grocer import paths
from grocer.errors import GrocerError
from grocer.images import file_sha256
from grocer.params import Params
from grocer.review import journal
from grocer.review.catalog import Catalog, Item, load_catalog
from grocer.review.journal import DECISIONS, Event
from grocer.review.replay import Decision, replay_session

MAX_BODY = 4096  # bytes; a decision is ~100
RECENT = 12  # latest decisions listed in the summary
APPLY_COMMANDS = ("dvc repro review", "dvc repro")
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


class SessionLog:
    """The session's journal and its live decisions, replayed again only when it grew."""

    def __init__(self, path: Path):
        self.journal = journal.Journal(path)
        self._lock = threading.Lock()
        self._replayed: tuple[tuple[Event, ...], list[Decision]] = ((), [])

    @property
    def path(self) -> Path:
        return self.journal.path

    def live(self) -> list[Decision]:
        """Decisions of this session that are not undone, in journal order."""
        if not self.path.exists():
            return []
        events = self.journal.events()
        with self._lock:
            if self._replayed[0] is not events:  # Journal.events() is the same object until the file changes
                self._replayed = (events, replay_session(self.path, events))
            return list(self._replayed[1])

    def append_next(self, build: Callable[[Sequence[Event]], Event]) -> Event:
        return self.journal.append_next(build)


class Conflict(Exception):
    """A well-formed request that the session's state refuses (409)."""


def create_app(params: Params, session: str, token: str, order: str = "likely_errors", root: Path = Path(".")) -> Starlette:
    """The review app for the project at `root` (tests pass a tmp project)."""
    journal.check_session(session)
    catalog = load_catalog(params, order, root)
    journal_rel = paths.session_journal(session)
    log = SessionLog(root / journal_rel)
    log.live()  # a broken journal stops the start, not the first click
    static = resources.files("grocer.review") / "static"

    def item_or_404(image_id: str) -> Item:
        item = catalog.items.get(image_id)
        if item is None:
            raise HTTPException(404, f"image {image_id!r} is not a reviewable image of this dataset")
        return item

    def decided() -> dict[str, Decision]:
        return {d.event.image_id: d for d in log.live()}

    def progress(label: str, done: dict[str, Decision]) -> dict:
        queue = catalog.queues[label]
        actions = Counter(done[i].event.action for i in queue if i in done)
        return {
            "name": label, "total": len(queue), "done": sum(actions.values()),
            "actions": {a: actions.get(a, 0) for a in DECISIONS},
        }

    def describe(item: Item, done: dict[str, Decision]) -> dict:
        queue = catalog.queues[item.label]
        return {
            "image_id": item.image_id, "label": item.label, "group": item.group,
            "width": item.width, "height": item.height, "flags": list(item.flags), "in_variant": item.in_variant,
            "hints": item.hints(catalog.classes), "choices": item.relabel_choices(catalog.classes),
            "url": f"api/image/{quote(item.image_id, safe='')}",
            "position": queue.index(item.image_id) + 1, "class_total": len(queue),
            "class_done": sum(1 for i in queue if i in done),
        }

    def event_summary(event: Event) -> dict:
        return {
            "event_id": event.event_id, "time": event.time, "image_id": event.image_id, "class": event.label,
            "action": event.action, "new_label": event.new_label,
        }

    def state(request: Request) -> JSONResponse:
        done = decided()
        live = log.live()
        return JSONResponse({
            "session": session, "journal": str(journal_rel), "variant": params.clean.variant,
            "order": catalog.order, "predictions": catalog.predictions,
            "classes": [progress(c, done) for c in catalog.classes],
            "total": len(catalog.items), "done": len(done),
            "last": event_summary(live[-1].event) if live else None,
            "apply": list(APPLY_COMMANDS),
        })

    def next_item(request: Request) -> JSONResponse:
        unknown = sorted(set(request.query_params) - {"class"})
        if unknown:
            raise HTTPException(400, f"unknown query parameter(s) {unknown}")
        label = request.query_params.get("class")
        if label not in catalog.queues:
            raise HTTPException(400, f"class {label!r} is unknown; classes: {', '.join(catalog.classes)}")
        done = decided()
        upcoming = next((i for i in catalog.queues[label] if i not in done), None)
        return JSONResponse({
            "class": progress(label, done),
            "item": describe(catalog.items[upcoming], done) if upcoming else None,
        })

    def item_info(request: Request) -> JSONResponse:
        return JSONResponse(describe(item_or_404(request.path_params["image_id"]), decided()))

    def image(request: Request) -> FileResponse:
        item = item_or_404(request.path_params["image_id"])
        if not item.path.is_file():
            raise HTTPException(404, f"image file {item.path} is missing")
        return FileResponse(item.path, headers={"cache-control": "private, max-age=3600"})

    def summary(request: Request) -> JSONResponse:
        live = log.live()
        done = decided()
        totals = Counter(d.event.action for d in done.values())
        relabels = Counter(f"{d.event.label} -> {d.event.new_label}" for d in done.values() if d.event.action == "relabel")
        return JSONResponse({
            "session": session, "journal": str(journal_rel),
            "classes": [progress(c, done) for c in catalog.classes],
            "totals": {a: totals.get(a, 0) for a in DECISIONS}, "done": len(done), "total": len(catalog.items),
            "relabels": dict(sorted(relabels.items())),
            "recent": [event_summary(d.event) for d in reversed(live[-RECENT:])],
            "apply": list(APPLY_COMMANDS),
        })

    async def decision(request: Request) -> JSONResponse:
        body = await json_body(request, required={"image_id", "action"}, optional={"new_label"})
        image_id, action, new_label = body["image_id"], body["action"], body.get("new_label")
        if not isinstance(image_id, str) or image_id not in catalog.items:
            raise HTTPException(400, f"image_id {image_id!r} is not a reviewable image of this dataset")
        if action not in DECISIONS:
            raise HTTPException(400, f"action {action!r} is unknown; allowed: {', '.join(DECISIONS)}")
        item = catalog.items[image_id]
        if action == "relabel":
            if new_label not in catalog.classes:
                raise HTTPException(400, f"new_label {new_label!r} is not a class; classes: {', '.join(catalog.classes)}")
            if new_label == item.label:
                raise HTTPException(400, f"new_label {new_label!r} is the image's own class")
        elif new_label is not None:
            raise HTTPException(400, f"new_label is only for relabel, got {new_label!r} with {action}")

        def build(existing: Sequence[Event]) -> Event:
            if any(d.event.image_id == image_id for d in replay_session(log.path, existing)):
                raise Conflict(f"{image_id!r} is already decided in session {session!r}; undo it first")
            return Event(
                event_id=journal.next_event_id(session, existing), time=journal.now(), session=session,
                image_id=image_id, sha256=file_sha256(item.path), label=item.label, action=action,
                new_label=new_label, undoes=None,
            )

        event = await append(build)
        return JSONResponse({"event": event_summary(event), "class": progress(item.label, decided())})

    async def undo(request: Request) -> JSONResponse:
        await json_body(request, required=set(), optional=set())

        def build(existing: Sequence[Event]) -> Event:
            live = replay_session(log.path, existing)
            if not live:
                raise Conflict(f"nothing to undo in session {session!r}")
            target = live[-1].event
            return Event(
                event_id=journal.next_event_id(session, existing), time=journal.now(), session=session,
                image_id=target.image_id, sha256=target.sha256, label=target.label, action="undo",
                new_label=None, undoes=target.event_id,
            )

        event = await append(build)
        item = catalog.items.get(event.image_id)
        done = decided()
        return JSONResponse({
            "undone": event.undoes, "event": event_summary(event),
            "item": describe(item, done) if item else None,
        })

    async def append(build: Callable[[Sequence[Event]], Event]) -> Event:
        try:
            return await run_in_threadpool(log.append_next, build)
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None

    async def page(request: Request) -> Response:
        return Response((static / "index.html").read_bytes(), media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-store"})

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers={"cache-control": "no-store"})

    async def grocer_error(request: Request, exc: GrocerError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=500)

    routes = [
        Route("/", page),
        Mount("/static", StaticFiles(directory=str(static))),
        Route("/api/state", state),
        Route("/api/next", next_item),
        Route("/api/item/{image_id}", item_info),
        Route("/api/image/{image_id}", image),
        Route("/api/summary", summary),
        Route("/api/decision", decision, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
    ]
    app = Starlette(
        routes=[Mount(f"/{token}", routes=routes)],
        middleware=[Middleware(TokenGate, token=token)],
        exception_handlers={HTTPException: http_error, GrocerError: grocer_error},
    )
    app.state.catalog = catalog
    return app


async def json_body(request: Request, required: set[str], optional: set[str]) -> dict:
    """The request's JSON object with exactly the allowed keys, or a 400 naming the problem."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(400, f"request body too large ({len(body)} bytes, at most {MAX_BODY})")
    if not body.strip():
        obj: object = {}
    else:
        try:
            obj = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise HTTPException(400, f"request body must be a JSON object, got {type(obj).__name__}")
    missing = sorted(required - set(obj))
    if missing:
        raise HTTPException(400, f"missing field(s) {missing}")
    unknown = sorted(set(obj) - required - optional)
    if unknown:
        raise HTTPException(400, f"unknown field(s) {unknown}")
    return obj


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
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise GrocerError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port") from None
    sock.listen(64)
    return sock


def run(params: Params, port: int, session: str | None, host: str, order: str) -> None:
    import uvicorn  # imported here: only this command needs it

    session = journal.check_session(session or default_session())
    demo = paths.session_journal(session, paths.SAMPLE_REVIEW_DIR)
    if Path(params.data.dir) == paths.SAMPLE_DIR and demo.exists():
        raise GrocerError(f"session {session!r} is the sample's demo journal ({demo}); pick another --session")
    token = secrets.token_urlsafe(18)
    app = create_app(params, session, token, order)
    catalog: Catalog = app.state.catalog
    if catalog.predictions is None:
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
