"""`grocer review` on a 10,000-image train set: start, per-request and replay times.

Generates 10 classes x 1,000 images (2 % wrong labels, 1 % byte copies) with
benchmarks/review_dataset.py, runs the real ingest and clean stages, then measures:

- catalog build (load_catalog: manifest, clean tables, OOF hints, likely-errors order,
  duplicate groups) and the whole app start (catalog + journal replay);
- each request on the real server (uvicorn on 127.0.0.1, one keep-alive connection):
  server time (an ASGI wrapper around the app: request in to last body byte out) and
  the client's wall time; thumbnails cold (built on the request) and warm (cached);
- the journal: 10,000 decisions written by 250 POSTs of a 40-image grid page, then
  its parse + replay (what a restart does), and the app start on it.

Targets (issue 13, on 2 cores): catalog build <= 5 s, each image/page request <= 50 ms,
replay <= 1 s for 10,000 events. The machine may be shared: figures are what it gave.

    .venv/bin/python benchmarks/review_scale.py [--per-class 1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
import review_dataset  # noqa: E402

from grocer import params as params_module  # noqa: E402
from grocer import paths  # noqa: E402
from grocer.review import journal  # noqa: E402
from grocer.review.catalog import load_catalog  # noqa: E402
from grocer.review.replay import replay_session  # noqa: E402
from grocer.review.server import create_app  # noqa: E402

TOKEN = "scale"
PAGE = 40
CLASSES = ["apple", "banana", "cherry", "date", "fig", "grape", "kiwi", "lemon", "mango", "melon"]


class Timed:
    """ASGI wrapper: the server time of the last request (first receive to last send)."""

    def __init__(self, app):
        self.app, self.last = app, 0.0

    async def __call__(self, scope, receive, send):
        started = time.perf_counter()

        async def timed_send(message):
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last = time.perf_counter() - started

        await self.app(scope, receive, timed_send)


class Client:
    def __init__(self, port: int, timer: Timed):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connection.connect()
        # without it, a request's body waits for the delayed ACK of its headers (~40 ms)
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timer = timer
        self.wall: dict[str, list[float]] = {}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[float, bytes]:
        """(server seconds, body) of one request."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if data else {}
        started = time.perf_counter()
        self.connection.request(method, f"/{TOKEN}/{path}", body=data, headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        self.wall.setdefault(method, []).append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"{method} {path}: {response.status} {payload[:200]!r}")
        return self.timer.last, payload


def timed(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"n={len(ms):5d}  median {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms  max {ms[-1]:6.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        truth = review_dataset.build(Path(tmp), {c: args.per_class for c in CLASSES}, wrong=0.02, copies=0.01)
        print(f"project: {len(truth)} train images generated, ingested and cleaned in {time.perf_counter() - t0:.0f} s")
        params = params_module.load()

        t0 = time.perf_counter()
        catalog = load_catalog(params, "likely_errors")
        build = time.perf_counter() - t0
        print(f"catalog build:  {build:.2f} s  ({catalog.total} images in the queues, {len(catalog.quarantine)} "
              f"quarantined, {len(catalog.duplicates)} duplicate groups; target <= 5 s)")
        t0 = time.perf_counter()
        app = create_app(params, "scale", TOKEN)
        print(f"app start:      {time.perf_counter() - t0:.2f} s  (catalog + empty journal)")

        timer = Timed(app)
        server, thread, port = review_dataset.start_server(timer)
        client = Client(port, timer)
        times: dict[str, list[float]] = {k: [] for k in [
            "GET  /api/state", "GET  /api/next", f"GET  /api/page (size {PAGE})", "GET  /api/thumb cold",
            "GET  /api/thumb warm", "GET  /api/image", f"POST /api/decisions ({PAGE})", "GET  /api/quarantine",
            "GET  /api/duplicates"]}
        try:
            for label in CLASSES:
                while True:
                    elapsed, payload = client.request("GET", f"api/page?class={label}&size={PAGE}")
                    items = json.loads(payload)["items"]
                    if not items:
                        break
                    times[f"GET  /api/page (size {PAGE})"].append(elapsed)
                    for t in items:
                        times["GET  /api/thumb cold"].append(client.request("GET", t["thumb"])[0])
                    for t in items[:5]:
                        times["GET  /api/thumb warm"].append(client.request("GET", t["thumb"])[0])
                        times["GET  /api/image"].append(client.request("GET", t["url"])[0])
                    times["GET  /api/next"].append(client.request("GET", f"api/next?class={label}")[0])
                    decisions = [{"image_id": t["image_id"], "action": "keep"} for t in items]
                    times[f"POST /api/decisions ({PAGE})"].append(
                        client.request("POST", "api/decisions", {"decisions": decisions})[0])
                    times["GET  /api/state"].append(client.request("GET", "api/state")[0])
                    if len(times["GET  /api/quarantine"]) < 20:
                        times["GET  /api/quarantine"].append(client.request("GET", f"api/quarantine?size={PAGE}")[0])
                        times["GET  /api/duplicates"].append(client.request("GET", "api/duplicates")[0])
        finally:
            server.should_exit = True
            thread.join(timeout=10)
        print("server time per request (target <= 50 ms per image/page request):")
        for name, seconds in times.items():
            print(f"  {name:28s} {timed(seconds)}")
        for method, seconds in client.wall.items():
            print(f"  client wall time, all {method:4s}   {timed(seconds)}")

        path = paths.session_journal("scale")
        t0 = time.perf_counter()
        events = journal.read_journal(path)
        parsed = time.perf_counter() - t0
        t0 = time.perf_counter()
        live = replay_session(path, events)
        replayed = time.perf_counter() - t0
        print(f"journal replay: {len(events)} events, parse {parsed:.2f} s + replay {replayed:.3f} s = "
              f"{parsed + replayed:.2f} s ({len(live)} live decisions; target <= 1 s)")
        t0 = time.perf_counter()
        create_app(params, "scale", TOKEN)
        print(f"app restart:    {time.perf_counter() - t0:.2f} s  (catalog + {len(events)}-event journal)")


if __name__ == "__main__":
    main()
