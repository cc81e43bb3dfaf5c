"""The review page's JSON API for one session: request checks, route handlers, the JSON they answer.

`ReviewAPI` holds the session (its catalog and journal); each public method is the
handler of one route of grocer.review.server. A malformed request is a 400 naming what
is wrong, a decision the journal refuses (decided already, nothing to undo) a 409; a
refused request writes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse

from grocer.images import file_sha256
from grocer.review import journal, thumbs
from grocer.review.catalog import Catalog, Item
from grocer.review.journal import DECISIONS, Event
from grocer.review.replay import Decision
from grocer.review.session import SessionLog

MAX_BATCH = 400  # decisions per POST /api/decisions: a page of up to 400 thumbnails
MAX_BODY = 200 * MAX_BATCH  # bytes; a decision is ~100
MAX_PAGE = MAX_BATCH
RECENT = 12  # latest decisions listed in the summary
APPLY_COMMANDS = ("dvc repro review", "dvc repro")

Wanted = tuple[Item, str, str | None]  # a checked decision: its item, action and new label


class Conflict(Exception):
    """A well-formed request that the session's state refuses (409)."""


class ReviewAPI:
    """The route handlers of one session's page, over its catalog and journal."""

    def __init__(self, catalog: Catalog, log: SessionLog, session: str, journal_rel: Path, variant: str,
                 mode: str, page_size: int, root: Path):
        self.catalog, self.log, self.session, self.journal_rel = catalog, log, session, journal_rel
        self.variant, self.mode, self.page_size, self.root = variant, mode, page_size, root

    # ---- GET handlers ----------------------------------------------------------------

    def state(self, request: Request) -> JSONResponse:
        catalog = self.catalog
        live = self.log.live()
        done = decided(live)
        reviewable = self.reviewed(done)
        return JSONResponse({
            "session": self.session, "journal": str(self.journal_rel), "variant": self.variant,
            "order": catalog.order, "predictions": catalog.predictions, "warning": catalog.warning,
            "mode": self.mode, "page_size": self.page_size,
            "classes": [self.progress(c, done) for c in catalog.classes],
            "total": catalog.total, "done": reviewable,
            "progress": self.log.estimate(reviewable, catalog.total),
            "quarantine": {"total": len(catalog.quarantine), "done": sum(1 for i in catalog.quarantine if i in done)},
            "duplicates": {"total": len(catalog.duplicates),
                           "done": sum(1 for g in catalog.duplicates if all(i in done for i in g))},
            "last": event_summary(live[-1].event) if live else None,
            "apply": list(APPLY_COMMANDS),
        })

    def next_item(self, request: Request) -> JSONResponse:
        label = self.class_param(query(request, {"class"}).get("class"))
        done = decided(self.log.live())
        upcoming = next((i for i in self.catalog.queues[label] if i not in done), None)
        return JSONResponse({
            "class": self.progress(label, done),
            "item": self.describe(self.catalog.items[upcoming], done) if upcoming else None,
        })

    def grid_page(self, request: Request) -> JSONResponse:
        params_in = query(request, {"class", "size"})
        label, size = self.class_param(params_in.get("class")), size_param(params_in.get("size"))
        done = decided(self.log.live())
        return JSONResponse({"class": self.progress(label, done),
                             "items": self.undecided_page(self.catalog.queues[label], size, done)})

    def quarantine_page(self, request: Request) -> JSONResponse:
        size = size_param(query(request, {"size"}).get("size"))
        done = decided(self.log.live())
        quarantine = self.catalog.quarantine
        return JSONResponse({
            "total": len(quarantine), "done": sum(1 for i in quarantine if i in done),
            "items": self.undecided_page(quarantine, size, done),
        })

    def duplicate_groups(self, request: Request) -> JSONResponse:
        query(request, set())
        done = decided(self.log.live())
        items = self.catalog.items
        return JSONResponse({"groups": [
            {"members": [self.tile(items[i], done) for i in members],
             "cross_label": len({items[i].label for i in members}) > 1,
             "done": all(i in done for i in members)}
            for members in self.catalog.duplicates
        ]})

    def item_info(self, request: Request) -> JSONResponse:
        return JSONResponse(self.describe(self.item_or_404(request.path_params["image_id"]), decided(self.log.live())))

    def image(self, request: Request) -> FileResponse:
        item = self.item_or_404(request.path_params["image_id"])
        if not item.path.is_file():
            raise HTTPException(404, f"image file {item.path} is missing")
        return FileResponse(item.path, headers={"cache-control": "private, max-age=3600"})

    def thumb(self, request: Request) -> FileResponse:
        item = self.item_or_404(request.path_params["image_id"])
        if not item.path.is_file():
            raise HTTPException(404, f"image file {item.path} is missing")
        try:
            cached = thumbs.thumbnail(item.path, thumbs.thumb_path(self.root, item.sha256))
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's ways of saying "cannot decode"
            raise HTTPException(404, f"image file {item.path} cannot be decoded ({type(exc).__name__})") from None
        return FileResponse(cached, media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"})

    def summary(self, request: Request) -> JSONResponse:
        live = self.log.live()
        done = decided(live)
        totals = Counter(d.event.action for d in done.values())
        relabels = Counter(f"{d.event.label} -> {d.event.new_label}" for d in done.values() if d.event.action == "relabel")
        return JSONResponse({
            "session": self.session, "journal": str(self.journal_rel),
            "classes": [self.progress(c, done) for c in self.catalog.classes],
            "totals": {a: totals.get(a, 0) for a in DECISIONS}, "done": self.reviewed(done),
            "total": self.catalog.total,
            "relabels": dict(sorted(relabels.items())),
            "recent": [event_summary(d.event) for d in reversed(live[-RECENT:])],
            "apply": list(APPLY_COMMANDS),
        })

    # ---- POST handlers: each appends its events in one write, all or nothing -------------

    async def decision(self, request: Request) -> JSONResponse:
        body = await json_body(request, required={"image_id", "action"}, optional={"new_label"})
        wanted = self.checked(body)
        events = await self.append(self.decision_events([wanted]))
        return JSONResponse({"event": event_summary(events[0]),
                             "class": self.progress(wanted[0].label, decided(self.log.live()))})

    async def decisions(self, request: Request) -> JSONResponse:
        body = await json_body(request, required={"decisions"}, optional=set())
        entries = body["decisions"]
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH:
            raise HTTPException(400, f"decisions must be a list of 1 to {MAX_BATCH} decisions")
        wanted = []
        for k, entry in enumerate(entries):
            try:
                wanted.append(self.checked(decision_fields(entry)))
            except HTTPException as exc:
                raise HTTPException(400, f"decisions[{k}]: {exc.detail}") from None
        ids = [item.image_id for item, _, _ in wanted]
        repeated = next((i for i in ids if ids.count(i) > 1), None)
        if repeated is not None:
            raise HTTPException(400, f"image {repeated!r} appears twice in one batch")
        events = await self.append(self.decision_events(wanted))
        return JSONResponse({"events": [event_summary(e) for e in events]})

    async def undo(self, request: Request) -> JSONResponse:
        body = await json_body(request, required=set(), optional={"event_ids"})
        targets = body.get("event_ids")
        if targets is not None and (
            not isinstance(targets, list) or not 1 <= len(targets) <= MAX_BATCH
            or not all(isinstance(t, str) for t in targets) or len(set(targets)) != len(targets)
        ):
            raise HTTPException(400, f"event_ids must be a list of 1 to {MAX_BATCH} distinct event ids")
        events = await self.append(partial(self.undo_events, targets))
        item = self.catalog.items.get(events[-1].image_id)
        done = decided(self.log.live())
        return JSONResponse({
            "undone": events[-1].undoes, "event": event_summary(events[-1]),
            "events": [event_summary(e) for e in events],
            "item": self.describe(item, done) if item and not item.dropped else None,
        })

    # ---- the journal events of a POST ---------------------------------------------------

    def checked(self, body: dict) -> Wanted:
        """A decision's item, action and new label, or a 400 naming what is wrong."""
        catalog = self.catalog
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

    def decision_events(self, wanted: list[Wanted]) -> Callable[[Sequence[Event]], list[Event]]:
        """The journal build for these decisions (see `new_decisions`); the files are hashed here,
        outside the journal's lock."""
        hashes = {item.image_id: file_sha256(item.path) for item, _, _ in wanted}
        return partial(self.new_decisions, wanted, hashes)

    def new_decisions(self, wanted: list[Wanted], hashes: dict[str, str], existing: Sequence[Event]) -> list[Event]:
        """The decisions' events after the journal's `existing` ones: one time stamp, consecutive event ids."""
        live = {d.event.image_id for d in self.log.live(existing)}
        for item, _, _ in wanted:
            if item.image_id in live:
                raise Conflict(f"{item.image_id!r} is already decided in session {self.session!r}; undo it first")
        stamp = journal.now()
        ids = journal.next_event_ids(self.session, existing, len(wanted))
        return [
            Event(
                event_id=event_id, time=stamp, session=self.session,
                image_id=item.image_id, sha256=hashes[item.image_id], label=item.label, action=action,
                new_label=new_label, undoes=None,
            )
            for event_id, (item, action, new_label) in zip(ids, wanted)
        ]

    def undo_events(self, targets: list[str] | None, existing: Sequence[Event]) -> list[Event]:
        """The undo events of `targets` (None: the latest live decision) after the journal's `existing` ones."""
        live = self.log.live(existing)
        if not live:
            raise Conflict(f"nothing to undo in session {self.session!r}")
        by_id = {d.event.event_id: d.event for d in live}
        missing = [t for t in targets or () if t not in by_id]
        if missing:
            raise Conflict(f"{missing[0]!r} is not a live decision of session {self.session!r}")
        chosen = [by_id[t] for t in reversed(targets)] if targets else [live[-1].event]
        stamp = journal.now()
        ids = journal.next_event_ids(self.session, existing, len(chosen))
        return [
            Event(
                event_id=event_id, time=stamp, session=self.session,
                image_id=target.image_id, sha256=target.sha256, label=target.label, action="undo",
                new_label=None, undoes=target.event_id,
            )
            for event_id, target in zip(ids, chosen)
        ]

    async def append(self, build: Callable[[Sequence[Event]], Sequence[Event]]) -> list[Event]:
        try:
            return await run_in_threadpool(self.log.append_batch, build)
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None

    # ---- the JSON of images and progress --------------------------------------------------

    def item_or_404(self, image_id: str) -> Item:
        item = self.catalog.items.get(image_id)
        if item is None:
            raise HTTPException(404, f"image {image_id!r} is not a reviewable image of this dataset")
        return item

    def class_param(self, value: str | None) -> str:
        if value not in self.catalog.queues:
            raise HTTPException(400, f"class {value!r} is unknown; classes: {', '.join(self.catalog.classes)}")
        return value

    def reviewed(self, done: dict[str, Decision]) -> int:
        """Decided images of the review queues (not counting copies decided in the duplicates view)."""
        items = self.catalog.items
        return sum(1 for i in done if i in items and not items[i].dropped)

    def progress(self, label: str, done: dict[str, Decision]) -> dict:
        queue = self.catalog.queues[label]
        actions = Counter(done[i].event.action for i in queue if i in done)
        return {
            "name": label, "total": len(queue), "done": sum(actions.values()),
            "actions": {a: actions.get(a, 0) for a in DECISIONS},
        }

    def describe(self, item: Item, done: dict[str, Decision]) -> dict:
        classes = self.catalog.classes
        queue = self.catalog.queues[item.label]
        return {
            "image_id": item.image_id, "label": item.label, "group": item.group,
            "width": item.width, "height": item.height, "flags": list(item.flags), "in_variant": item.in_variant,
            "hints": item.hints(classes), "choices": item.relabel_choices(classes),
            "url": f"api/image/{quote(item.image_id, safe='')}",
            "position": queue.index(item.image_id) + 1 if item.image_id in queue else None,
            "class_total": len(queue), "class_done": sum(1 for i in queue if i in done),
        }

    def tile(self, item: Item, done: dict[str, Decision]) -> dict:
        """One thumbnail of the grid, the quarantine or a duplicate group."""
        classes = self.catalog.classes
        decision = done.get(item.image_id)
        return {
            "image_id": item.image_id, "label": item.label, "flags": list(item.flags),
            "in_variant": item.in_variant, "badge": item.badge(classes),
            "choices": item.relabel_choices(classes),
            "thumb": f"api/thumb/{quote(item.image_id, safe='')}", "url": f"api/image/{quote(item.image_id, safe='')}",
            "decided": event_summary(decision.event) if decision else None,
        }

    def undecided_page(self, ids: list[str], size: int, done: dict[str, Decision]) -> list[dict]:
        upcoming = [i for i in ids if i not in done][:size]
        return [self.tile(self.catalog.items[i], done) for i in upcoming]


def decided(live: list[Decision]) -> dict[str, Decision]:
    """The live decisions by image id."""
    return {d.event.image_id: d for d in live}


def event_summary(event: Event) -> dict:
    return {
        "event_id": event.event_id, "time": event.time, "image_id": event.image_id, "class": event.label,
        "action": event.action, "new_label": event.new_label,
    }


def query(request: Request, allowed: set[str]) -> dict[str, str]:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise HTTPException(400, f"unknown query parameter(s) {unknown}")
    return dict(request.query_params)


def size_param(value: str | None) -> int:
    if value is None or not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise HTTPException(400, f"size {value!r} must be a whole number from 1 to {MAX_PAGE}")
    return int(value)


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
