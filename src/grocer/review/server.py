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
import json
import re
import secrets
import socket
import sys
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
from grocer.review import journal, thumbs
from grocer.review.catalog import Catalog, Item, load_catalog
from grocer.review.journal import DECISIONS, Event
from grocer.review.replay import Decision
from grocer.review.session import SessionLog

MAX_BATCH = 400  # decisions per POST /api/decisions: a page of up to 400 thumbnails
MAX_BODY = 200 * MAX_BATCH  # bytes; a decision is ~100
MAX_PAGE = MAX_BATCH
MODES = ("single", "grid")
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


class Conflict(Exception):
    """A well-formed request that the session's state refuses (409)."""


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
    static = resources.files("grocer.review") / "static"

    def item_or_404(image_id: str) -> Item:
        item = catalog.items.get(image_id)
        if item is None:
            raise HTTPException(404, f"image {image_id!r} is not a reviewable image of this dataset")
        return item

    def decided(live: list[Decision] | None = None) -> dict[str, Decision]:
        return {d.event.image_id: d for d in (log.live() if live is None else live)}

    def reviewed(done: dict[str, Decision]) -> int:
        """Decided images of the review queues (not counting copies decided in the duplicates view)."""
        return sum(1 for i in done if i in catalog.items and not catalog.items[i].dropped)

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
            "position": queue.index(item.image_id) + 1 if item.image_id in queue else None,
            "class_total": len(queue), "class_done": sum(1 for i in queue if i in done),
        }

    def tile(item: Item, done: dict[str, Decision]) -> dict:
        """One thumbnail of the grid, the quarantine or a duplicate group."""
        decision = done.get(item.image_id)
        return {
            "image_id": item.image_id, "label": item.label, "flags": list(item.flags),
            "in_variant": item.in_variant, "badge": item.badge(catalog.classes),
            "choices": item.relabel_choices(catalog.classes),
            "thumb": f"api/thumb/{quote(item.image_id, safe='')}", "url": f"api/image/{quote(item.image_id, safe='')}",
            "decided": event_summary(decision.event) if decision else None,
        }

    def event_summary(event: Event) -> dict:
        return {
            "event_id": event.event_id, "time": event.time, "image_id": event.image_id, "class": event.label,
            "action": event.action, "new_label": event.new_label,
        }

    def state(request: Request) -> JSONResponse:
        live = log.live()
        done = decided(live)
        reviewable = reviewed(done)
        return JSONResponse({
            "session": session, "journal": str(journal_rel), "variant": params.clean.variant,
            "order": catalog.order, "predictions": catalog.predictions, "warning": catalog.warning,
            "mode": mode, "page_size": page_size,
            "classes": [progress(c, done) for c in catalog.classes],
            "total": catalog.total, "done": reviewable,
            "progress": log.estimate(reviewable, catalog.total),
            "quarantine": {"total": len(catalog.quarantine), "done": sum(1 for i in catalog.quarantine if i in done)},
            "duplicates": {"total": len(catalog.duplicates),
                           "done": sum(1 for g in catalog.duplicates if all(i in done for i in g))},
            "last": event_summary(live[-1].event) if live else None,
            "apply": list(APPLY_COMMANDS),
        })

    def query(request: Request, allowed: set[str]) -> dict[str, str]:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise HTTPException(400, f"unknown query parameter(s) {unknown}")
        return dict(request.query_params)

    def class_param(value: str | None) -> str:
        if value not in catalog.queues:
            raise HTTPException(400, f"class {value!r} is unknown; classes: {', '.join(catalog.classes)}")
        return value

    def size_param(value: str | None) -> int:
        if value is None or not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
            raise HTTPException(400, f"size {value!r} must be a whole number from 1 to {MAX_PAGE}")
        return int(value)

    def next_item(request: Request) -> JSONResponse:
        label = class_param(query(request, {"class"}).get("class"))
        done = decided()
        upcoming = next((i for i in catalog.queues[label] if i not in done), None)
        return JSONResponse({
            "class": progress(label, done),
            "item": describe(catalog.items[upcoming], done) if upcoming else None,
        })

    def undecided_page(ids: list[str], size: int, done: dict[str, Decision]) -> list[dict]:
        upcoming = [i for i in ids if i not in done][:size]
        return [tile(catalog.items[i], done) for i in upcoming]

    def grid_page(request: Request) -> JSONResponse:
        params_in = query(request, {"class", "size"})
        label, size = class_param(params_in.get("class")), size_param(params_in.get("size"))
        done = decided()
        return JSONResponse({"class": progress(label, done), "items": undecided_page(catalog.queues[label], size, done)})

    def quarantine_page(request: Request) -> JSONResponse:
        size = size_param(query(request, {"size"}).get("size"))
        done = decided()
        return JSONResponse({
            "total": len(catalog.quarantine), "done": sum(1 for i in catalog.quarantine if i in done),
            "items": undecided_page(catalog.quarantine, size, done),
        })

    def duplicate_groups(request: Request) -> JSONResponse:
        query(request, set())
        done = decided()
        return JSONResponse({"groups": [
            {"members": [tile(catalog.items[i], done) for i in members],
             "cross_label": len({catalog.items[i].label for i in members}) > 1,
             "done": all(i in done for i in members)}
            for members in catalog.duplicates
        ]})

    def item_info(request: Request) -> JSONResponse:
        return JSONResponse(describe(item_or_404(request.path_params["image_id"]), decided()))

    def image(request: Request) -> FileResponse:
        item = item_or_404(request.path_params["image_id"])
        if not item.path.is_file():
            raise HTTPException(404, f"image file {item.path} is missing")
        return FileResponse(item.path, headers={"cache-control": "private, max-age=3600"})

    def thumb(request: Request) -> FileResponse:
        item = item_or_404(request.path_params["image_id"])
        if not item.path.is_file():
            raise HTTPException(404, f"image file {item.path} is missing")
        try:
            cached = thumbs.thumbnail(item.path, thumbs.thumb_path(root, item.sha256))
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's ways of saying "cannot decode"
            raise HTTPException(404, f"image file {item.path} cannot be decoded ({type(exc).__name__})") from None
        return FileResponse(cached, media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"})

    def summary(request: Request) -> JSONResponse:
        live = log.live()
        done = decided(live)
        totals = Counter(d.event.action for d in done.values())
        relabels = Counter(f"{d.event.label} -> {d.event.new_label}" for d in done.values() if d.event.action == "relabel")
        return JSONResponse({
            "session": session, "journal": str(journal_rel),
            "classes": [progress(c, done) for c in catalog.classes],
            "totals": {a: totals.get(a, 0) for a in DECISIONS}, "done": reviewed(done), "total": catalog.total,
            "relabels": dict(sorted(relabels.items())),
            "recent": [event_summary(d.event) for d in reversed(live[-RECENT:])],
            "apply": list(APPLY_COMMANDS),
        })

    def checked(body: dict) -> tuple[Item, str, str | None]:
        """A decision's item, action and new label, or a 400 naming what is wrong."""
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
        return item, action, new_label

    def decision_events(wanted: list[tuple[Item, str, str | None]]) -> Callable[[Sequence[Event]], list[Event]]:
        """The journal build for these decisions: one time stamp, consecutive event ids."""
        hashes = {item.image_id: file_sha256(item.path) for item, _, _ in wanted}  # outside the lock

        def build(existing: Sequence[Event]) -> list[Event]:
            live = {d.event.image_id for d in log.live(existing)}
            for item, _, _ in wanted:
                if item.image_id in live:
                    raise Conflict(f"{item.image_id!r} is already decided in session {session!r}; undo it first")
            stamp = journal.now()
            ids = journal.next_event_ids(session, existing, len(wanted))
            return [
                Event(
                    event_id=event_id, time=stamp, session=session,
                    image_id=item.image_id, sha256=hashes[item.image_id], label=item.label, action=action,
                    new_label=new_label, undoes=None,
                )
                for event_id, (item, action, new_label) in zip(ids, wanted)
            ]

        return build

    async def decision(request: Request) -> JSONResponse:
        body = await json_body(request, required={"image_id", "action"}, optional={"new_label"})
        wanted = checked(body)
        events = await append(decision_events([wanted]))
        return JSONResponse({"event": event_summary(events[0]), "class": progress(wanted[0].label, decided())})

    async def decisions(request: Request) -> JSONResponse:
        body = await json_body(request, required={"decisions"}, optional=set())
        entries = body["decisions"]
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH:
            raise HTTPException(400, f"decisions must be a list of 1 to {MAX_BATCH} decisions")
        wanted = []
        for k, entry in enumerate(entries):
            try:
                wanted.append(checked(decision_fields(entry)))
            except HTTPException as exc:
                raise HTTPException(400, f"decisions[{k}]: {exc.detail}") from None
        ids = [item.image_id for item, _, _ in wanted]
        repeated = next((i for i in ids if ids.count(i) > 1), None)
        if repeated is not None:
            raise HTTPException(400, f"image {repeated!r} appears twice in one batch")
        events = await append(decision_events(wanted))
        return JSONResponse({"events": [event_summary(e) for e in events]})

    async def undo(request: Request) -> JSONResponse:
        body = await json_body(request, required=set(), optional={"event_ids"})
        targets = body.get("event_ids")
        if targets is not None and (
            not isinstance(targets, list) or not 1 <= len(targets) <= MAX_BATCH
            or not all(isinstance(t, str) for t in targets) or len(set(targets)) != len(targets)
        ):
            raise HTTPException(400, f"event_ids must be a list of 1 to {MAX_BATCH} distinct event ids")

        def build(existing: Sequence[Event]) -> list[Event]:
            live = log.live(existing)
            if not live:
                raise Conflict(f"nothing to undo in session {session!r}")
            by_id = {d.event.event_id: d.event for d in live}
            missing = [t for t in targets or () if t not in by_id]
            if missing:
                raise Conflict(f"{missing[0]!r} is not a live decision of session {session!r}")
            chosen = [by_id[t] for t in reversed(targets)] if targets else [live[-1].event]
            stamp = journal.now()
            ids = journal.next_event_ids(session, existing, len(chosen))
            return [
                Event(
                    event_id=event_id, time=stamp, session=session,
                    image_id=target.image_id, sha256=target.sha256, label=target.label, action="undo",
                    new_label=None, undoes=target.event_id,
                )
                for event_id, target in zip(ids, chosen)
            ]

        events = await append(build)
        item = catalog.items.get(events[-1].image_id)
        done = decided()
        return JSONResponse({
            "undone": events[-1].undoes, "event": event_summary(events[-1]),
            "events": [event_summary(e) for e in events],
            "item": describe(item, done) if item and not item.dropped else None,
        })

    async def append(build: Callable[[Sequence[Event]], Sequence[Event]]) -> list[Event]:
        try:
            return await run_in_threadpool(log.append_batch, build)
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
        Route("/api/page", grid_page),
        Route("/api/quarantine", quarantine_page),
        Route("/api/duplicates", duplicate_groups),
        Route("/api/item/{image_id}", item_info),
        Route("/api/image/{image_id}", image),
        Route("/api/thumb/{image_id}", thumb),
        Route("/api/summary", summary),
        Route("/api/decision", decision, methods=["POST"]),
        Route("/api/decisions", decisions, methods=["POST"]),
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
            obj = json.loads(body, object_pairs_hook=journal.no_duplicate_keys)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"request body is not valid JSON: {exc}") from None
        except journal.JournalError as exc:  # a duplicate key: which value was meant?
            raise HTTPException(400, f"request body has a {exc}") from None
    return fields(obj, required, optional, "request body")


def fields(obj: object, required: set[str], optional: set[str], what: str) -> dict:
    """`obj` if it is a JSON object with every required key and no unknown one, else a 400."""
    if not isinstance(obj, dict):
        raise HTTPException(400, f"{what} must be a JSON object, got {type(obj).__name__}")
    missing = sorted(required - set(obj))
    if missing:
        raise HTTPException(400, f"missing field(s) {missing}")
    unknown = sorted(set(obj) - required - optional)
    if unknown:
        raise HTTPException(400, f"unknown field(s) {unknown}")
    return obj


def decision_fields(entry: object) -> dict:
    return fields(entry, {"image_id", "action"}, {"new_label"}, "a decision")


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
