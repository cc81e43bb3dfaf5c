"""The grid, quarantine and duplicates endpoints, batches of decisions, thumbnails, progress."""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from starlette.testclient import TestClient

from support import review_project
from support.params import make_params
from grocer import cli, paths
from grocer.review import journal, pace, thumbs
from grocer.review.api import MAX_BATCH
from grocer.review.server import create_app

TOKEN = "grid-token"
JOURNAL = paths.REVIEW_SESSIONS_DIR / "g1.jsonl"
PARAMS = make_params({"data": {"dir": "data/raw"}})


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.chdir(tmp_path)
    review_project.build(Path("."), predictions=True, duplicates=True)
    return TestClient(create_app(PARAMS, "g1", TOKEN, mode="grid", page_size=3))


def api(path: str) -> str:
    return f"/{TOKEN}/api/{path}"


def rows() -> list[tuple]:
    return [(e.action, e.image_id, e.new_label, e.undoes) for e in journal.read_journal(JOURNAL)]


def test_state_carries_mode_page_size_and_the_other_views(client: TestClient):
    state = client.get(api("state")).json()
    assert (state["mode"], state["page_size"]) == ("grid", 3)
    assert state["quarantine"] == {"total": 1, "done": 0} and state["duplicates"] == {"total": 1, "done": 0}
    assert state["total"] == 10  # the two copies are dropped: only the duplicates view shows them
    assert state["progress"] == {"done": 0, "total": 10, "seconds_per_image": None, "seconds_left": None}


def test_a_page_is_the_next_undecided_images_in_order_with_badges(client: TestClient):
    page = client.get(api("page"), params={"class": "orange", "size": 2}).json()
    assert [t["image_id"] for t in page["items"]] == ["or_2.png", "or_0.png"]
    first = page["items"][0]
    assert first["badge"] == {"class": "mandarin", "p": pytest.approx(0.8, abs=1e-3), "doubted": True}
    assert page["items"][1]["badge"]["doubted"] is False
    assert first["thumb"] == "api/thumb/or_2.png" and first["choices"] == ["mandarin", "kiwi"]
    assert page["class"]["total"] == 3
    client.post(api("decision"), json={"image_id": "or_2.png", "action": "keep"})
    page = client.get(api("page"), params={"class": "orange", "size": 5}).json()
    assert [t["image_id"] for t in page["items"]] == ["or_0.png", "or_3.png"]


@pytest.mark.parametrize("query, message", [
    ({"class": "orange"}, "size None"), ({"class": "orange", "size": "0"}, "size '0'"),
    ({"class": "orange", "size": str(MAX_BATCH + 1)}, "from 1 to"), ({"class": "durian", "size": "3"}, "unknown"),
    ({"class": "orange", "size": "3", "x": "1"}, "unknown query parameter"),
])
def test_bad_page_queries_are_400(client: TestClient, query: dict, message: str):
    response = client.get(api("page"), params=query)
    assert response.status_code == 400 and message in response.json()["error"]


def test_a_page_is_one_write_and_one_fsync(client: TestClient, monkeypatch: pytest.MonkeyPatch):
    calls = []
    real_write, real_fsync = os.write, os.fsync

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("g1.jsonl"):
            calls.append(("write", data.count(b"\n")))
        return real_write(fd, data)

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("g1.jsonl"):
            calls.append(("fsync", 0))
        return real_fsync(fd)

    monkeypatch.setattr(journal.os, "write", write)
    monkeypatch.setattr(journal.os, "fsync", fsync)
    decisions = [
        {"image_id": "or_2.png", "action": "relabel", "new_label": "mandarin"},
        {"image_id": "or_0.png", "action": "trash"},
        {"image_id": "or_3.png", "action": "keep"},
    ]
    response = client.post(api("decisions"), json={"decisions": decisions})
    assert response.status_code == 200, response.text
    assert calls == [("write", 3), ("fsync", 0)]
    assert [e["event_id"] for e in response.json()["events"]] == ["g1-1", "g1-2", "g1-3"]
    events = journal.read_journal(JOURNAL)
    assert rows() == [("relabel", "or_2.png", "mandarin", None), ("trash", "or_0.png", None, None),
                      ("keep", "or_3.png", None, None)]
    assert len({e.time for e in events}) == 1  # accepted at one moment
    assert client.get(api("page"), params={"class": "orange", "size": 3}).json()["items"] == []


@pytest.mark.parametrize("body, message", [
    ({"decisions": []}, "list of 1 to"),
    ({"decisions": {"image_id": "or_0.png"}}, "list of 1 to"),
    ({"decisions": [{"image_id": "or_0.png", "action": "keep"}] * 2}, "appears twice"),
    ({"decisions": [{"image_id": "or_0.png", "action": "keep"}, {"image_id": "or_3.png", "action": "burn"}]},
     "decisions[1]: action 'burn' is unknown"),
    ({"decisions": [{"image_id": "or_0.png"}]}, "decisions[0]: missing field(s) ['action']"),
    ({"decisions": [{"image_id": "or_0.png", "action": "keep", "x": 1}]}, "unknown field(s) ['x']"),
    ({"decisions": ["or_0.png"]}, "a decision must be a JSON object"),
    ({"decisions": [{"image_id": "te_0.png", "action": "keep"}]}, "not a reviewable image"),
    ({"decisions": [{"image_id": f"x{k}", "action": "keep"} for k in range(MAX_BATCH + 1)]}, "list of 1 to"),
])
def test_a_bad_batch_is_400_and_writes_nothing(client: TestClient, body: dict, message: str):
    response = client.post(api("decisions"), json=body)
    assert response.status_code == 400 and message in response.json()["error"]
    assert not JOURNAL.exists()


def test_a_batch_with_a_decided_image_is_409_and_writes_nothing(client: TestClient):
    client.post(api("decision"), json={"image_id": "or_3.png", "action": "keep"})
    response = client.post(api("decisions"), json={"decisions": [
        {"image_id": "or_0.png", "action": "keep"}, {"image_id": "or_3.png", "action": "trash"}]})
    assert response.status_code == 409 and "'or_3.png' is already decided" in response.json()["error"]
    assert rows() == [("keep", "or_3.png", None, None)]


def test_undo_a_whole_page_in_one_write(client: TestClient):
    first = client.post(api("decisions"), json={"decisions": [
        {"image_id": "or_2.png", "action": "trash"}, {"image_id": "or_0.png", "action": "keep"}]}).json()
    client.post(api("decision"), json={"image_id": "ki_0.png", "action": "keep"})
    response = client.post(api("undo"), json={"event_ids": [e["event_id"] for e in first["events"]]})
    assert response.status_code == 200, response.text
    assert [e.undoes for e in journal.read_journal(JOURNAL)[3:]] == ["g1-2", "g1-1"]
    assert len({e.time for e in journal.read_journal(JOURNAL)[3:]}) == 1
    assert [t["image_id"] for t in client.get(api("page"), params={"class": "orange", "size": 3}).json()["items"]] == [
        "or_2.png", "or_0.png", "or_3.png"]
    again = client.post(api("undo"), json={"event_ids": ["g1-1"]})
    assert again.status_code == 409 and "'g1-1' is not a live decision" in again.json()["error"]
    for bad in [{"event_ids": []}, {"event_ids": "g1-3"}, {"event_ids": [3]}, {"event_ids": ["g1-3", "g1-3"]}]:
        assert client.post(api("undo"), json=bad).status_code == 400
    assert len(journal.read_journal(JOURNAL)) == 5


@pytest.mark.parametrize("path, body", [
    ("decision", '{"image_id": "or_0.png", "action": "keep", "action": "trash"}'),
    ("decisions", '{"decisions": [{"image_id": "or_0.png", "image_id": "or_3.png", "action": "keep"}]}'),
    ("undo", '{"event_ids": ["g1-1"], "event_ids": []}'),
])
def test_duplicate_keys_in_a_body_are_400(client: TestClient, path: str, body: str):
    response = client.post(api(path), content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("request body has a duplicate key")
    assert not JOURNAL.exists()


def test_thumbnails_are_built_once_and_cached_under_scratch(client: TestClient):
    response = client.get(api("thumb/or_2.png"))
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    cached = sorted(Path(thumbs.THUMBS_DIR).rglob("*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == response.content
    assert cached[0].name.startswith(review_project.sha(pd.read_parquet(paths.MANIFEST), "or_2.png"))
    with Image.open(cached[0]) as img:
        assert max(img.size) <= thumbs.SIDE and img.size == (80, 64)  # never scaled up
    cached[0].write_bytes(b"seen")  # a second request serves the cache, not a new thumbnail
    assert client.get(api("thumb/or_2.png")).content == b"seen"
    assert str(thumbs.THUMBS_DIR).startswith(".scratch/")  # .gitignore'd
    for bad in ["te_0.png", "..%2F..%2Fparams.yaml", review_project.DROPPED]:
        assert client.get(api(f"thumb/{bad}")).status_code == 404


def test_quarantine_lists_what_clean_quarantined_with_its_reasons(client: TestClient):
    page = client.get(api("quarantine"), params={"size": 10}).json()
    assert [(t["image_id"], t["flags"]) for t in page["items"]] == [(review_project.QUARANTINED, ["quarantine", "outlier"])]
    client.post(api("decisions"), json={"decisions": [{"image_id": review_project.QUARANTINED, "action": "keep"}]})
    page = client.get(api("quarantine"), params={"size": 10}).json()
    assert page["items"] == [] and page["done"] == 1


def test_duplicate_groups_include_the_copies_clean_dropped(client: TestClient):
    groups = client.get(api("duplicates")).json()["groups"]
    assert len(groups) == 1 and groups[0]["cross_label"] is True and groups[0]["done"] is False
    members = groups[0]["members"]
    assert [(m["image_id"], m["label"], m["flags"]) for m in members] == [
        (review_project.COPY, "mandarin", ["drop", "cross_label_duplicate"]),
        (review_project.ORIGINAL, "orange", ["drop", "cross_label_duplicate"]),
    ]
    assert client.get(api(f"thumb/{review_project.COPY}")).status_code == 200
    # the single and grid queues never show a dropped copy
    assert review_project.ORIGINAL not in [t["image_id"] for t in client.get(
        api("page"), params={"class": "orange", "size": 10}).json()["items"]]


def test_progress_estimate_from_the_journal_times():
    def event(n: int, second: float, action: str = "keep") -> journal.Event:
        return journal.Event(
            event_id=f"s-{n}", time=f"2026-01-01T00:{int(second // 60):02d}:{second % 60:09.6f}+00:00", session="s",
            image_id=f"i{n}", sha256="0" * 64, label="a", action=action,
            undoes=f"s-{n - 1}" if action == "undo" else None,
        )

    assert pace.estimate([], 0, 10)["seconds_left"] is None
    # a page of 4 at t=0, the next page of 4 at t=20 s, then a 10-minute pause and one more at +2 s
    events = [event(n, 0.0) for n in range(1, 5)] + [event(n, 20.0) for n in range(5, 9)]
    events += [event(9, 620.0), event(10, 622.0)]
    # active: 20 s + BREAK (the pause) + 2 s over 9 decisions after the first
    expected = (20 + pace.BREAK + 2) / 9
    assert pace.estimate(events, 10, 100) == {
        "done": 10, "total": 100, "seconds_per_image": round(expected, 3), "seconds_left": round(expected * 90),
    }


def test_state_progress_counts_a_page(client: TestClient):
    client.post(api("decisions"), json={"decisions": [{"image_id": i, "action": "keep"} for i in ["ki_0.png", "ki_1.png"]]})
    client.post(api("decisions"), json={"decisions": [{"image_id": "ki_2.png", "action": "keep"}]})
    progress = client.get(api("state")).json()["progress"]
    assert progress["done"] == 3 and progress["total"] == 10
    assert progress["seconds_per_image"] is not None and progress["seconds_left"] is not None
    assert json.loads(json.dumps(progress)) == progress


def test_cli_takes_mode_and_page_size(client: TestClient, capsys):
    shutil.copyfile(Path(__file__).parents[1] / paths.PARAMS, paths.PARAMS)
    assert cli.main(["review", "--mode", "grid", "--page-size", str(MAX_BATCH + 1)]) == 1
    assert capsys.readouterr().err == f"grocer review: error: page size {MAX_BATCH + 1} is out of range: 1 to {MAX_BATCH}, or 0 to fit the window\n"
    with pytest.raises(SystemExit):
        cli.main(["review", "--mode", "mosaic"])
    assert "invalid choice: 'mosaic'" in capsys.readouterr().err


def test_a_journal_entry_for_an_image_no_longer_in_the_data_is_not_counted(client: TestClient):
    journal.append(JOURNAL, journal.Event(
        event_id="g1-1", time=journal.now(), session="g1", image_id="gone.png", sha256="0" * 64, label="orange",
        action="keep"))
    state = client.get(api("state")).json()
    assert state["done"] == 0 and state["progress"]["done"] == 0
    assert client.get(api("summary")).json()["done"] == 0


def test_two_copies_of_one_photo_get_their_shared_thumbnail_at_once(client: TestClient):
    # ma_4 and or_1 have one sha256, so one cache file: the duplicates view asks for both together
    for _ in range(20):
        shutil.rmtree(paths.SCRATCH_DIR, ignore_errors=True)
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda i: client.get(api(f"thumb/{i}")).status_code,
                                  [review_project.COPY, review_project.ORIGINAL] * 2))
        assert codes == [200] * 4
        assert len(list(Path(thumbs.THUMBS_DIR).rglob("*.jpg"))) == 1
        assert not list(Path(thumbs.THUMBS_DIR).rglob("*.tmp"))


def test_the_server_follows_a_journal_that_grows_elsewhere_or_is_rewritten(client: TestClient):
    client.post(api("decisions"), json={"decisions": [{"image_id": i, "action": "keep"} for i in ["ki_0.png", "ki_1.png"]]})
    assert client.get(api("state")).json()["done"] == 2
    other_tab = TestClient(create_app(PARAMS, "g1", "t2"))  # another server appends to the same journal
    other_tab.post("/t2/api/decision", json={"image_id": "ki_2.png", "action": "trash"})
    assert client.get(api("state")).json()["done"] == 3
    lines = JOURNAL.read_text().splitlines(keepends=True)
    JOURNAL.write_text(lines[0])  # rewritten (a git checkout of an older journal): replayed from the start
    state = client.get(api("state")).json()
    assert state["done"] == 1 and state["last"]["image_id"] == "ki_0.png"
    assert [t["image_id"] for t in client.get(api("page"), params={"class": "kiwi", "size": 5}).json()["items"]] == [
        "ki_1.png", "ki_2.png"]
