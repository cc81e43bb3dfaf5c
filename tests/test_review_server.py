"""The review web app through Starlette's TestClient: every endpoint, token, traversal, bad input."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from support import review_project
from support.params import make_params
from grocer import cli, paths
from grocer.errors import GrocerError
from grocer.images import file_sha256
from grocer.predictions import write_predictions
from grocer.review import catalog as catalog_module
from grocer.review import journal
from grocer.review.replay import resolve
from grocer.review.api import MAX_BODY
from grocer.review.server import bind, create_app, default_session
from grocer.review.server import run as run_review

TOKEN = "tok-EN_123"
JOURNAL = paths.REVIEW_SESSIONS_DIR / "s1.jsonl"
PARAMS = make_params({"data": {"dir": "data/raw"}})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    review_project.build(Path("."), predictions=True)
    return tmp_path


@pytest.fixture
def client(project: Path) -> TestClient:
    return TestClient(create_app(PARAMS, "s1", TOKEN))


def api(path: str) -> str:
    return f"/{TOKEN}/api/{path}"


def post(client: TestClient, path: str, body=None, **kwargs):
    return client.post(api(path), json=body, **kwargs) if body is not None else client.post(api(path), **kwargs)


def journal_rows() -> list[tuple]:
    return [(e.action, e.image_id, e.new_label, e.undoes) for e in journal.read_journal(JOURNAL)]


# ---- token -----------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/", "/api/state", "/api/image/or_0.png", "/static/review.js", "/wrong/", "/wrong/api/state",
    f"/{TOKEN}x/", f"/{TOKEN[:-1]}/api/state", f"/x{TOKEN}/", f"/{TOKEN.upper()}/", "/%2F/",
])
def test_wrong_or_missing_token_is_403(client: TestClient, path: str):
    response = client.get(path)
    assert response.status_code == 403
    assert "token" in response.text


def test_posts_without_token_are_403_and_write_nothing(client: TestClient):
    assert client.post("/api/decision", json={"image_id": "or_0.png", "action": "keep"}).status_code == 403
    assert client.post("/nope/api/undo").status_code == 403
    assert not JOURNAL.exists()


def test_token_root_redirects_to_the_page(client: TestClient):
    response = client.get(f"/{TOKEN}", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == f"/{TOKEN}/"


def test_page_and_static_files(client: TestClient):
    page = client.get(f"/{TOKEN}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/review.js"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    for name, kind in [("review.js", "javascript"), ("review.css", "text/css"), ("favicon.svg", "image/svg+xml")]:
        response = client.get(f"/{TOKEN}/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert client.get(f"/{TOKEN}/static/nope.js").status_code == 404


# ---- reading ---------------------------------------------------------------------

def test_state(client: TestClient):
    state = client.get(api("state")).json()
    assert state["session"] == "s1" and state["journal"] == "data/review/sessions/s1.jsonl"
    assert state["order"] == "likely_errors" and state["predictions"] == "data/predictions/blend/oof.parquet"
    assert {c["name"]: c["total"] for c in state["classes"]} == {"kiwi": 3, "mandarin": 4, "orange": 4}
    assert state["total"] == 11 and state["done"] == 0 and state["last"] is None
    assert state["apply"] == ["dvc repro review", "dvc repro"]


def test_next_puts_likely_errors_first_with_hints(client: TestClient):
    data = client.get(api("next"), params={"class": "orange"}).json()
    item = data["item"]
    assert item["image_id"] == "or_2.png"  # the one the model calls mandarin
    assert [h["class"] for h in item["hints"]] == ["orange", "mandarin", "kiwi"]
    assert item["hints"][0]["current"] and item["hints"][1]["p"] == pytest.approx(0.8, abs=1e-3)
    assert item["choices"] == ["mandarin", "kiwi"]
    assert item["url"] == "api/image/or_2.png"
    assert (item["width"], item["height"], item["group"]) == (80, 64, "orange-g0")
    assert data["class"] == {"name": "orange", "total": 4, "done": 0,
                             "actions": {"keep": 0, "suspicious": 0, "trash": 0, "relabel": 0}}


def test_without_predictions_file_order_and_no_hints(project: Path):
    shutil.rmtree(paths.PREDICTIONS_DIR)
    client = TestClient(create_app(PARAMS, "s1", TOKEN, order="likely_errors"))
    assert client.get(api("state")).json()["order"] == "file"
    item = client.get(api("next"), params={"class": "orange"}).json()["item"]
    assert item["image_id"] == "or_0.png" and item["hints"] == []
    assert item["choices"] == ["kiwi", "mandarin"]


def test_file_order_on_request(project: Path):
    client = TestClient(create_app(PARAMS, "s1", TOKEN, order="file"))
    assert client.get(api("next"), params={"class": "orange"}).json()["item"]["image_id"] == "or_0.png"


@pytest.mark.parametrize("query, message", [
    ({}, "class None is unknown"), ({"class": "durian"}, "class 'durian' is unknown"),
    ({"class": "orange", "x": "1"}, "unknown query parameter"),
])
def test_next_bad_query_is_400(client: TestClient, query, message):
    response = client.get(api("next"), params=query)
    assert response.status_code == 400 and message in response.json()["error"]


def test_item_shows_clean_flags(client: TestClient):
    item = client.get(api(f"item/{review_project.QUARANTINED}")).json()
    assert item["flags"] == ["quarantine", "outlier"] and item["in_variant"] is True
    assert client.get(api("item/or_0.png")).json()["flags"] == []


def test_aggressive_variant_shows_quarantined_images_as_out_of_the_variant(project: Path):
    client = TestClient(create_app(make_params({"data": {"dir": "data/raw"}, "clean": {"variant": "aggressive"}}), "s1", TOKEN))
    assert client.get(api(f"item/{review_project.QUARANTINED}")).json()["in_variant"] is False


def test_image_serves_the_dataset_file(client: TestClient):
    response = client.get(api("image/or_0.png"))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == Path("data/raw/train/orange/or_0.png").read_bytes()


@pytest.mark.parametrize("tail", [
    "../../../secret.txt", "..%2F..%2F..%2Fsecret.txt", "%2e%2e%2f%2e%2e%2fsecret.txt", "%252e%252e%252fsecret.txt",
    "..\\..\\secret.txt", "%2Ftmp%2Fsecret.txt", "/etc/passwd", "%2Fetc%2Fpasswd", "data/raw/train/orange/or_0.png",
    "data%2Fraw%2Ftrain%2Forange%2For_0.png", "secret.txt", review_project.DROPPED, "te_0.png", "", "or_0.png%00",
])
def test_only_dataset_images_are_served(client: TestClient, project: Path, tail: str):
    (project / "secret.txt").write_text("TOP SECRET")
    for prefix in ("image/", "item/"):
        response = client.get(api(prefix + tail))
        assert response.status_code in (404, 403), (prefix, tail, response.status_code)
        assert "TOP SECRET" not in response.text and "root:" not in response.text


@pytest.mark.parametrize("path", ["static/../server.py", "static/..%2Fserver.py", "static/%2e%2e/server.py", "static/..%2F..%2Freview%2Fserver.py"])
def test_static_does_not_escape_its_folder(client: TestClient, path: str):
    response = client.get(f"/{TOKEN}/{path}")
    assert response.status_code in (403, 404) and "create_app" not in response.text


# ---- writing ---------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b"{}", "missing field(s) ['action', 'image_id']"),
    (json.dumps({"image_id": "or_0.png", "action": "keep", "extra": 1}).encode(), "unknown field(s) ['extra']"),
    (json.dumps({"image_id": "or_0.png", "action": "delete"}).encode(), "action 'delete' is unknown"),
    (json.dumps({"image_id": "or_0.png", "action": "undo"}).encode(), "action 'undo' is unknown"),
    (json.dumps({"image_id": "nope.png", "action": "keep"}).encode(), "image_id 'nope.png' is not a reviewable"),
    (json.dumps({"image_id": "../secret.txt", "action": "keep"}).encode(), "is not a reviewable"),
    (json.dumps({"image_id": review_project.DROPPED, "action": "keep"}).encode(), "is not a reviewable"),
    (json.dumps({"image_id": 3, "action": "keep"}).encode(), "image_id 3 is not"),
    (json.dumps({"image_id": "or_0.png", "action": "relabel"}).encode(), "new_label None is not a class"),
    (json.dumps({"image_id": "or_0.png", "action": "relabel", "new_label": "durian"}).encode(), "'durian' is not a class"),
    (json.dumps({"image_id": "or_0.png", "action": "relabel", "new_label": "orange"}).encode(), "own class"),
    (json.dumps({"image_id": "or_0.png", "action": "keep", "new_label": "kiwi"}).encode(), "only for relabel"),
    (json.dumps({"image_id": "or_0.png", "action": "keep", "pad": "x" * MAX_BODY}).encode(), "too large"),
])
def test_malformed_decision_is_400_and_writes_nothing(client: TestClient, body: bytes, message: str):
    response = client.post(api("decision"), content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not JOURNAL.exists()


def test_malformed_undo_is_400(client: TestClient):
    post(client, "decision", {"image_id": "or_0.png", "action": "keep"})
    for body in (b"[]", b'{"event_id": "s1-1"}', b"nope"):
        assert client.post(api("undo"), content=body).status_code == 400
    assert journal_rows() == [("keep", "or_0.png", None, None)]


def test_get_on_post_endpoints_is_405(client: TestClient):
    assert client.get(api("decision")).status_code == 405
    assert client.get(api("undo")).status_code == 405


def test_nothing_to_undo_is_409(client: TestClient):
    response = post(client, "undo", {})
    assert response.status_code == 409 and "nothing to undo" in response.json()["error"]
    assert not JOURNAL.exists()


def test_an_image_is_decided_once_per_session(client: TestClient):
    assert post(client, "decision", {"image_id": "or_0.png", "action": "keep"}).status_code == 200
    response = post(client, "decision", {"image_id": "or_0.png", "action": "trash"})
    assert response.status_code == 409 and "already decided" in response.json()["error"]
    assert len(journal_rows()) == 1


def test_sequence_with_undos_across_classes(client: TestClient):
    steps = [
        {"image_id": "or_2.png", "action": "keep"},
        {"image_id": "or_0.png", "action": "relabel", "new_label": "mandarin"},
        {"image_id": "ki_0.png", "action": "trash"},
        {"image_id": "ma_0.png", "action": "suspicious"},
    ]
    for body in steps:
        response = post(client, "decision", body)
        assert response.status_code == 200, response.text
    assert response.json()["class"]["actions"]["suspicious"] == 1

    first = post(client, "undo", {}).json()
    assert first["undone"] == "s1-4" and first["item"]["image_id"] == "ma_0.png"
    second = post(client, "undo").json()  # an empty body is fine too
    assert second["undone"] == "s1-3" and second["item"]["image_id"] == "ki_0.png" and second["item"]["label"] == "kiwi"
    third = post(client, "undo", {}).json()  # back across the class change
    assert third["undone"] == "s1-2" and third["item"]["label"] == "orange"
    assert post(client, "decision", {"image_id": "ki_1.png", "action": "trash"}).status_code == 200

    assert journal_rows() == [
        ("keep", "or_2.png", None, None),
        ("relabel", "or_0.png", "mandarin", None),
        ("trash", "ki_0.png", None, None),
        ("suspicious", "ma_0.png", None, None),
        ("undo", "ma_0.png", None, "s1-4"),
        ("undo", "ki_0.png", None, "s1-3"),
        ("undo", "or_0.png", None, "s1-2"),
        ("trash", "ki_1.png", None, None),
    ]
    events = journal.read_journal(JOURNAL)
    assert [e.event_id for e in events] == [f"s1-{n}" for n in range(1, 9)]
    assert events[0].sha256 == file_sha256(Path("data/raw/train/orange/or_2.png"))
    assert events[6].label == "orange" and events[5].label == "kiwi"
    assert {d.event.image_id: d.event.action for d in resolve([(JOURNAL, events)])} == {"or_2.png": "keep", "ki_1.png": "trash"}

    # undone images come back; decided ones never repeat
    assert client.get(api("next"), params={"class": "kiwi"}).json()["item"]["image_id"] == "ki_0.png"
    assert client.get(api("next"), params={"class": "orange"}).json()["item"]["image_id"] == "or_0.png"
    state = client.get(api("state")).json()
    assert state["done"] == 2 and state["last"]["image_id"] == "ki_1.png"
    summary = client.get(api("summary")).json()
    assert summary["totals"] == {"keep": 1, "suspicious": 0, "trash": 1, "relabel": 0}
    assert [r["image_id"] for r in summary["recent"]] == ["ki_1.png", "or_2.png"]
    assert {c["name"]: c["done"] for c in summary["classes"]} == {"kiwi": 1, "mandarin": 0, "orange": 1}


def test_a_class_runs_out_and_resume_after_restart(client: TestClient):
    for image_id in ["ki_0.png", "ki_1.png"]:
        post(client, "decision", {"image_id": image_id, "action": "keep"})
    post(client, "decision", {"image_id": "or_0.png", "action": "relabel", "new_label": "kiwi"})
    restarted = TestClient(create_app(PARAMS, "s1", "another-token"))
    data = restarted.get("/another-token/api/next", params={"class": "kiwi"}).json()
    assert data["item"]["image_id"] == "ki_2.png" and data["class"]["done"] == 2
    restarted.post("/another-token/api/decision", json={"image_id": "ki_2.png", "action": "suspicious"})
    assert restarted.get("/another-token/api/next", params={"class": "kiwi"}).json()["item"] is None
    summary = restarted.get("/another-token/api/summary").json()
    assert summary["relabels"] == {"orange -> kiwi": 1}
    assert client.get(api("state")).json()["done"] == 4  # the first server sees the other's writes


def test_two_tabs_at_once_never_corrupt_the_journal(client: TestClient):
    second_tab = TestClient(client.app)
    ids = ["or_0.png", "or_1.png", "or_2.png", "or_3.png", "ma_0.png", "ma_1.png", "ma_2.png", "ki_0.png"]
    results: list[int] = []

    def swipe(tab: TestClient, image_id: str) -> None:
        results.append(tab.post(api("decision"), json={"image_id": image_id, "action": "keep"}).status_code)

    # both tabs swipe every image: each image lands once, the other tab gets 409
    threads = [threading.Thread(target=swipe, args=(tab, i)) for i in ids for tab in (client, second_tab)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] * len(ids) + [409] * len(ids)
    events = journal.read_journal(JOURNAL)
    assert sorted(e.image_id for e in events) == sorted(ids)
    assert sorted(e.number for e in events) == list(range(1, len(ids) + 1))


def test_a_broken_journal_stops_the_start(project: Path):
    JOURNAL.parent.mkdir(parents=True, exist_ok=True)
    JOURNAL.write_text("garbage\n")
    with pytest.raises(GrocerError, match=r"s1.jsonl:1: not valid JSON"):
        create_app(PARAMS, "s1", TOKEN)


def test_bad_session_names_are_refused(project: Path):
    for name in ["../x", "a/b", ".hidden", "", "a.b"]:
        with pytest.raises(GrocerError, match="session name"):
            create_app(PARAMS, name, TOKEN)


def test_default_session_is_a_valid_name():
    journal.check_session(default_session())


# ---- predictions for hints ---------------------------------------------------------

def test_oof_falls_back_to_the_mean_of_model_tables(project: Path):
    shutil.rmtree(paths.BLEND_DIR)
    classes = review_project.CLASSES
    ids = ["or_0.png", "or_1.png"]
    for model, p in [("a", [0.2, 0.6, 0.2]), ("b", [0.0, 0.2, 0.8])]:
        probs = np.array([p, p])
        write_predictions(paths.infer_dir(model, 0) / "oof.parquet", ids, np.log(probs + 1e-9), probs, classes)
    found = catalog_module.find_oof(Path("."))
    assert found is not None and "mean of 2 OOF tables under data/predictions/models/ (a, b)" == found[1]
    mean = catalog_module.mean_probs(found[0], classes)
    assert mean.loc["or_0.png"].tolist() == pytest.approx([0.1, 0.4, 0.5])
    client = TestClient(create_app(PARAMS, "s1", TOKEN))
    hints = client.get(api("item/or_0.png")).json()["hints"]
    assert [h["class"] for h in hints] == ["orange", "mandarin", "kiwi"]
    assert client.get(api("item/or_2.png")).json()["hints"] == []  # no prediction for it


def test_oof_from_training_dirs_when_nothing_else(project: Path):
    shutil.rmtree(paths.PREDICTIONS_DIR)
    probs = np.array([[0.7, 0.2, 0.1]])
    write_predictions(paths.train_item_dir("m", 1) / "oof.parquet", ["or_3.png"], np.log(probs), probs, review_project.CLASSES)
    files, description = catalog_module.find_oof(Path("."))
    assert files == [Path("models/m/fold1/oof.parquet")] and "under models/" in description


def test_predictions_of_another_class_list_start_without_hints_and_one_warning(project: Path, capsys):
    # a data change added a class; the old OOF tables on disk have no column for it
    (project / paths.CLASSES).write_text(json.dumps({"classes": [*review_project.CLASSES, "lemon"]}))
    client = TestClient(create_app(PARAMS, "s1", TOKEN))
    state = client.get(api("state")).json()
    assert state["predictions"] is None and state["order"] == "file"
    assert "missing column" in state["warning"] and "dvc repro blend" in state["warning"]
    assert client.get(api("next?class=orange")).json()["item"]["hints"] == []
    with socket.socket() as taken:  # a busy port: run() prints its start lines, then stops at bind
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(GrocerError, match="pass another --port"):
            run_review(PARAMS, port=taken.getsockname()[1], session="s1", host="127.0.0.1", order="likely_errors",
                       mode="single", page_size=0)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        "grocer review: warning: no hints: data/predictions/blend/oof.parquet: missing column(s) ['logit_lemon', 'prob_lemon'] "
        "(made with another class list?); `dvc repro blend` brings them back"
    ]


# ---- command line ------------------------------------------------------------------

def test_cli_rejects_an_unknown_order(capsys):
    with pytest.raises(SystemExit):
        cli.main(["review", "--order", "random"])
    assert "invalid choice: 'random'" in capsys.readouterr().err


def test_a_busy_port_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(GrocerError, match="pass another --port"):
            bind("127.0.0.1", taken.getsockname()[1])


def test_the_sample_demo_session_name_is_taken(project: Path):
    (project / paths.SAMPLE_REVIEW_DIR).mkdir(parents=True)
    (project / paths.SAMPLE_REVIEW_DIR / "demo.jsonl").write_text("")
    with pytest.raises(GrocerError, match="sample's demo journal"):
        run_review(make_params({"data": {"dir": "data/sample"}}), port=0, session="demo", host="127.0.0.1", order="file",
                   mode="single", page_size=0)


def test_connections_to_the_bound_socket_get_tcp_nodelay():
    # uvicorn serves on asyncio transports, which set TCP_NODELAY only on IPPROTO_TCP sockets;
    # without it each keep-alive request after the first waited ~40 ms for a delayed ACK
    import asyncio

    listening = bind("127.0.0.1", 0)

    async def accept_one() -> int:
        accepted = asyncio.get_running_loop().create_future()

        def on_connect(reader, writer) -> None:
            accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listening)
        _, writer = await asyncio.open_connection(*listening.getsockname())
        try:
            return await asyncio.wait_for(accepted, timeout=5)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accept_one()) != 0
