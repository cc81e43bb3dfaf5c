"""A real browser on the real server: swipe with the keys, check the page, the journal, the stage.

Debian's chromium driven by Playwright. `make test` installs chromium when it is
missing; without it this test fails (it is never skipped), naming the fix.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from support import review_project
from support.params import make_params
from grocer import paths
from grocer.review import journal
from grocer.review.server import bind, create_app
from grocer.stages import review

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("GROCER_CHROMIUM", "/usr/bin/chromium"))  # `make test` sets it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKEN = "browser-test-token"
SCREENSHOT_COPY = Path("/tmp/review_page.png")
expect.set_options(timeout=15_000)  # the default 5 s is short on a loaded 2-core machine


@contextmanager
def serving(app) -> Iterator[int]:
    """`app` under uvicorn on a free port, until the block ends."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (make test installs it)")
    sock = bind("127.0.0.1", 0)
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1]
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The real app under uvicorn on a free port, on a tiny project made here."""
    monkeypatch.chdir(tmp_path)
    review_project.build(Path("."), predictions=True, size=96)
    with serving(create_app(make_params({"data": {"dir": "data/raw"}}), "swiper", TOKEN)) as port:
        yield port


@pytest.fixture
def grid_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`grocer review --mode grid --page-size 2` on the tiny project with a duplicate pair."""
    monkeypatch.chdir(tmp_path)
    review_project.build(Path("."), predictions=True, size=96, duplicates=True)
    app = create_app(make_params({"data": {"dir": "data/raw"}}), "gridder", TOKEN, mode="grid", page_size=2)
    with serving(app) as port:
        yield port


@contextmanager
def browser_page(port: int) -> Iterator[tuple[Page, list[str]]]:
    """Chromium on the review page; the list collects HTTP errors and page errors."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        failed: list[str] = []
        page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
        page.on("pageerror", lambda e: failed.append(f"page error: {e}"))
        page.goto(f"http://127.0.0.1:{port}/{TOKEN}/")
        try:
            yield page, failed
        finally:
            browser.close()


def showing(page: Page, image_id: str, label: str) -> None:
    expect(page.locator("#info-id")).to_have_text(image_id)
    expect(page.locator("#info-label")).to_have_text(label)
    expect(page.locator("#photo")).to_have_attribute("src", f"api/image/{image_id}")


def test_swipe_review_in_a_real_browser(server: int, tmp_path: Path):
    port = server
    journal_path = paths.REVIEW_SESSIONS_DIR / "swiper.jsonl"
    with browser_page(port) as (page, failed):
        expect(page.locator(".class-card")).to_have_count(3)
        expect(page.locator("#session")).to_have_text("session swiper")
        expect(page.locator(".class-card[data-class=orange] .card-count")).to_have_text("0 / 4")

        page.keyboard.press("3")  # orange: likely errors first, so or_2 (the model says mandarin)
        showing(page, "or_2.png", "orange")
        expect(page.locator("#hint-list li")).to_have_count(3)
        expect(page.locator("#hint-list li").first).to_contain_text("orange")
        expect(page.locator("#hint-list li").nth(1)).to_contain_text("mandarin80%")
        expect(page.locator("#hints-title")).to_have_text("model prefers mandarin")
        expect(page.locator("#info-size")).to_have_text("112 × 96 px")
        expect(page.locator("#info-group")).to_have_text("orange-g0")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(tmp_path / "review_page.png"))
        shutil.copyfile(tmp_path / "review_page.png", SCREENSHOT_COPY)

        page.keyboard.press("r")
        expect(page.locator("#picker")).to_be_visible()
        expect(page.locator(".pick").first).to_contain_text("mandarin")  # the model's likeliest first
        page.keyboard.press("1")
        expect(page.locator("#picker")).to_be_hidden()
        showing(page, "or_0.png", "orange")
        expect(page.locator("#info-count")).to_have_text("1 / 4 reviewed")

        page.keyboard.press("ArrowLeft")
        showing(page, "or_1.png", "orange")
        page.keyboard.press("ArrowRight")
        showing(page, "or_3.png", "orange")
        page.keyboard.press("t")
        expect(page.locator("#done-title")).to_have_text("All 4 images of orange reviewed")
        page.keyboard.press("z")  # undo the trash: or_3 comes back
        showing(page, "or_3.png", "orange")

        page.keyboard.press("Escape")
        expect(page.locator("#view-classes")).to_be_visible()
        expect(page.locator(".class-card[data-class=orange] .card-count")).to_have_text("3 / 4")
        page.keyboard.press("1")  # kiwi
        showing(page, "ki_0.png", "kiwi")
        page.keyboard.press("t")
        showing(page, "ki_1.png", "kiwi")
        page.keyboard.press("Backspace")  # undo the kiwi trash
        showing(page, "ki_0.png", "kiwi")
        page.keyboard.press("z")  # and, across classes, the suspicious on or_1
        showing(page, "or_1.png", "orange")
        page.keyboard.press("ArrowLeft")
        showing(page, "or_3.png", "orange")  # the image undone earlier, never one already decided
        page.get_by_role("button", name="T Trash").click()  # the on-screen buttons work too
        expect(page.locator("#done-card")).to_be_visible()

        page.keyboard.press("s")
        expect(page.locator("#view-summary")).to_be_visible()
        expect(page.locator("#summary-table tfoot tr")).to_have_text("all4 / 112011")
        expect(page.locator("#summary-apply")).to_contain_text("dvc repro review")
        expect(page.locator("#summary-relabels")).to_have_text("orange -> mandarin: 1")
        page.screenshot(path=str(tmp_path / "review_summary.png"))
    assert failed == []

    events = journal.read_journal(journal_path)
    assert [(e.action, e.image_id, e.new_label, e.undoes) for e in events] == [
        ("relabel", "or_2.png", "mandarin", None),
        ("keep", "or_0.png", None, None),
        ("suspicious", "or_1.png", None, None),
        ("trash", "or_3.png", None, None),
        ("undo", "or_3.png", None, "swiper-4"),
        ("trash", "ki_0.png", None, None),
        ("undo", "ki_0.png", None, "swiper-6"),
        ("undo", "or_1.png", None, "swiper-3"),
        ("keep", "or_1.png", None, None),
        ("trash", "or_3.png", None, None),
    ]

    # the real server refuses traversal on the wire too (no client-side URL clean-up here)
    for raw in ["/api/image/../../../etc/passwd", "/api/image/..%2f..%2fdata%2finterim%2fclasses.json",
                "/static/../server.py", "/../etc/passwd"]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", f"/{TOKEN}{raw}")
        response = connection.getresponse()
        body = response.read()
        assert response.status in (403, 404), raw
        assert b"root:" not in body and b"classes" not in body and b"create_app" not in body
        connection.close()

    review.run(make_params({"data": {"dir": "data/raw"}}))
    actions = pd.read_csv(paths.REVIEW_ACTIONS, dtype=str, keep_default_na=False)
    assert actions[["image_id", "action", "new_label", "session", "status"]].values.tolist() == [
        ["or_2.png", "relabel", "mandarin", "swiper", "applied"],
        ["or_0.png", "keep", "", "swiper", "recorded"],
        ["or_1.png", "keep", "", "swiper", "recorded"],
        ["or_3.png", "trash", "", "swiper", "applied"],
    ]
    train = pd.read_csv(paths.PREPARED_TRAIN, dtype=str, keep_default_na=False)
    labels = dict(zip(train["image_id"], train["label"]))
    assert labels["or_2.png"] == "mandarin" and "or_3.png" not in labels and labels["ki_0.png"] == "kiwi"
    assert len(train) == 10


def tiles(page: Page) -> list[str]:
    return page.locator(".tile").evaluate_all("nodes => nodes.map(n => n.dataset.id + ':' + n.dataset.mark)")


def test_grid_mode_quarantine_and_duplicates_in_a_real_browser(grid_server: int):
    journal_path = paths.REVIEW_SESSIONS_DIR / "gridder.jsonl"
    with browser_page(grid_server) as (page, failed):
        expect(page.locator("#nav-mode")).to_have_text("Mode: grid")  # --mode grid
        page.keyboard.press("3")  # orange, likely errors first: or_2 (the model says mandarin), or_0 | or_3
        expect(page.locator("#view-grid")).to_be_visible()
        expect(page.locator("#grid-title")).to_have_text("orange")
        expect(page.locator('.tile')).to_have_count(2)
        assert tiles(page) == ["or_2.png:keep", "or_0.png:keep"]
        expect(page.locator(".tile.doubted")).to_have_count(1)
        expect(page.locator(".tile[data-id='or_2.png'] .badge")).to_have_text("mandarin 80%")
        expect(page.locator(".tile[data-id='or_0.png'] .badge")).to_have_text("✓ 90%")
        expect(page.locator(".tile.cursor")).to_have_attribute("data-id", "or_2.png")

        page.keyboard.press("r")  # relabel at the cursor: the picker, the model's likeliest first
        expect(page.locator(".pick").first).to_contain_text("mandarin")
        page.keyboard.press("1")
        expect(page.locator(".tile[data-id='or_2.png'] .mark")).to_have_text("→ mandarin")
        page.keyboard.press("ArrowRight")
        expect(page.locator(".tile.cursor")).to_have_attribute("data-id", "or_0.png")
        page.keyboard.press("t")
        page.keyboard.press("t")  # the same key again: back to keep
        page.keyboard.press("u")  # suspicious
        page.keyboard.press("z")  # undo the last mark: keep again
        assert tiles(page) == ["or_2.png:relabel", "or_0.png:keep"]
        page.keyboard.press("Enter")  # accept: relabel + keep in one write
        expect(page.locator('.tile')).to_have_count(1)
        assert tiles(page) == ["or_3.png:keep"]
        expect(page.locator("#grid-count")).to_have_text("2 / 3 reviewed · this page 1")
        expect(page.locator("#overall-text")).to_have_text("2 / 10 reviewed")  # one write: no pace yet
        page.keyboard.press("t")
        page.keyboard.press("Space")
        expect(page.locator("#grid-done-title")).to_have_text("All 3 images of orange reviewed")
        # two writes: now a pace and the time left for the other 7 images
        expect(page.locator("#overall-text")).to_have_text(re.compile(r"^3 / 10 reviewed · [0-9.]+ s/image · about .+ left$"))
        page.keyboard.press("z")  # no marks left: the last accepted page comes back
        expect(page.locator('.tile')).to_have_count(1)
        assert tiles(page) == ["or_3.png:keep"]
        page.locator(".tile[data-id='or_3.png']").click()  # a click marks trash too
        assert tiles(page) == ["or_3.png:trash"]
        page.get_by_role("button", name="Enter Accept page").click()
        expect(page.locator("#grid-done")).to_be_visible()

        page.keyboard.press("g")  # the same class in single mode: done there too
        expect(page.locator("#done-title")).to_have_text("All 3 images of orange reviewed")
        page.keyboard.press("g")
        expect(page.locator("#view-grid")).to_be_visible()

        page.locator("#nav-quarantine").click()
        expect(page.locator('.tile')).to_have_count(1)
        expect(page.locator("#grid-title")).to_have_text("Quarantine")
        expect(page.locator(".tile .tile-flags")).to_have_text("outlier")
        page.keyboard.press("Enter")  # a human keep: brought back in the aggressive variant
        expect(page.locator("#grid-done-title")).to_have_text("All 1 quarantined images reviewed")

        page.locator("#nav-duplicates").click()
        expect(page.locator("#dup-title")).to_have_text("Group 1 of 1 · the same image under two labels")
        expect(page.locator(".member")).to_have_count(2)
        expect(page.locator(".member.keeper .member-label")).to_have_text("1 mandarin")
        page.keyboard.press("t")  # trash the group ...
        expect(page.locator("#dup-title")).to_have_text("Every duplicate group is decided")
        page.keyboard.press("z")  # ... no: undo it, and keep the copy under orange (member 2's label)
        expect(page.locator("#dup-title")).to_have_text("Group 1 of 1 · the same image under two labels")
        page.keyboard.press("2")
        expect(page.locator("#dup-count")).to_have_text("1 / 1 groups decided")
        expect(page.locator("#nav-duplicates")).to_have_text("Duplicates 1/1")
    assert failed == []

    events = journal.read_journal(journal_path)
    assert [(e.event_id, e.action, e.image_id, e.new_label, e.undoes) for e in events] == [
        ("gridder-1", "relabel", "or_2.png", "mandarin", None),
        ("gridder-2", "keep", "or_0.png", None, None),
        ("gridder-3", "trash", "or_3.png", None, None),
        ("gridder-4", "undo", "or_3.png", None, "gridder-3"),
        ("gridder-5", "trash", "or_3.png", None, None),
        ("gridder-6", "keep", "ma_3.png", None, None),
        ("gridder-7", "trash", "ma_4.png", None, None),
        ("gridder-8", "trash", "or_1.png", None, None),
        ("gridder-9", "undo", "or_1.png", None, "gridder-8"),
        ("gridder-10", "undo", "ma_4.png", None, "gridder-7"),
        ("gridder-11", "relabel", "ma_4.png", "orange", None),
        ("gridder-12", "trash", "or_1.png", None, None),
    ]
    assert events[0].time == events[1].time  # one page, one write

    review.run(make_params({"data": {"dir": "data/raw"}, "clean": {"variant": "aggressive"}}))
    actions = pd.read_csv(paths.REVIEW_ACTIONS, dtype=str, keep_default_na=False)
    assert actions[["image_id", "action", "new_label", "status"]].values.tolist() == [
        ["or_2.png", "relabel", "mandarin", "applied"],
        ["or_0.png", "keep", "", "recorded"],
        ["or_3.png", "trash", "", "applied"],
        ["ma_3.png", "keep", "", "restored"],
        ["ma_4.png", "relabel", "orange", "restored"],
        ["or_1.png", "trash", "", "dropped"],
    ]
    train = pd.read_csv(paths.PREPARED_TRAIN, dtype=str, keep_default_na=False)
    labels = dict(zip(train["image_id"], train["label"]))
    assert labels["or_2.png"] == "mandarin" and labels["ma_4.png"] == "orange" and labels["ma_3.png"] == "mandarin"
    assert "or_3.png" not in labels and "or_1.png" not in labels
