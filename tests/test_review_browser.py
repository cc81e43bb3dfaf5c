"""A real browser on the real server: swipe with the keys, check the page, the journal, the stage.

Debian's chromium driven by Playwright. `make test` installs chromium when it is
missing; without it this test fails (it is never skipped), naming the fix.
"""

from __future__ import annotations

import http.client
import os
import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

import review_project
from conftest import make_params
from grocer import paths
from grocer.review import journal
from grocer.review.server import bind, create_app
from grocer.stages import review

CHROMIUM = Path(os.environ.get("GROCER_CHROMIUM", "/usr/bin/chromium"))  # `make test` sets it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKEN = "browser-test-token"
SCREENSHOT_COPY = Path("/tmp/review_page.png")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The real app under uvicorn on a free port, on a tiny project made here."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (make test installs it)")
    monkeypatch.chdir(tmp_path)
    review_project.build(Path("."), predictions=True, size=96)
    app = create_app(make_params({"data": {"dir": "data/raw"}}), "swiper", TOKEN)
    sock = bind("127.0.0.1", 0)
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield sock.getsockname()[1]
    uv.should_exit = True
    thread.join(timeout=10)


def showing(page: Page, image_id: str, label: str) -> None:
    expect(page.locator("#info-id")).to_have_text(image_id)
    expect(page.locator("#info-label")).to_have_text(label)
    expect(page.locator("#photo")).to_have_attribute("src", f"api/image/{image_id}")


def test_swipe_review_in_a_real_browser(server: int, tmp_path: Path):
    port = server
    journal_path = paths.REVIEW_SESSIONS_DIR / "swiper.jsonl"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        failed: list[str] = []
        page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
        page.on("pageerror", lambda e: failed.append(f"page error: {e}"))

        page.goto(f"http://127.0.0.1:{port}/{TOKEN}/")
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
        browser.close()
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
