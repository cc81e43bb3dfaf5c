"""Stage `review` (grocer apply-review) on a tiny project made by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from support import review_project
from support.params import deep_update, default_params_dict, make_params
from grocer import cli, paths
from grocer.errors import GrocerError
from grocer.review import journal
from grocer.review.journal import Event
from grocer.stages import review


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    monkeypatch.chdir(tmp_path)
    return review_project.build(Path("."))


class Writer:
    """Appends events to one session journal the way the page does."""

    def __init__(self, manifest: pd.DataFrame, session: str = "s1", folder: Path = paths.REVIEW_SESSIONS_DIR, hour: int = 10):
        self.manifest, self.session, self.hour = manifest.set_index("image_id"), session, hour
        self.path = folder / f"{session}.jsonl"
        self.n = 0

    def add(self, image_id: str, action: str, new_label=None, undoes=None, **overrides) -> str:
        self.n += 1
        row = self.manifest.loc[image_id]
        fields = dict(
            event_id=f"{self.session}-{self.n}", time=f"2026-11-22T{self.hour:02d}:{self.n:02d}:00+00:00",
            session=self.session, image_id=image_id, sha256=row["file_sha256"], label=row["label"],
            action=action, new_label=new_label, undoes=undoes,
        )
        fields.update(overrides)
        journal.append(self.path, Event(**fields))
        return fields["event_id"]


def params(variant: str = "strict", data_dir: str = "data/raw"):
    return make_params({"data": {"dir": data_dir}, "clean": {"variant": variant}})


def outputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    read = lambda p: pd.read_csv(p, dtype=str, keep_default_na=False)  # noqa: E731
    metrics = json.loads(paths.metrics_file("review").read_text())
    return read(paths.PREPARED_TRAIN), read(paths.REVIEW_ACTIONS), read(paths.REVIEW_QUARANTINE), metrics


def test_without_journals_the_variant_passes_through(manifest):
    review.run(params("strict"))
    train, actions, quarantine, metrics = outputs()
    strict = pd.read_csv(paths.clean_variant("strict"), dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(train, strict)
    assert list(train.columns) == ["image_id", "label", "group"]
    assert list(actions.columns) == ["image_id", "action", "new_label", "session", "time", "status"]
    assert actions.empty and quarantine.empty
    assert metrics["rows_in"] == metrics["rows_out"] == 11
    assert all(isinstance(v, (int, float)) for v in metrics.values())


def test_relabel_trash_suspicious_keep_and_undo(manifest, capsys):
    s = Writer(manifest)
    s.add("or_0.png", "relabel", "mandarin")
    s.add("or_1.png", "trash")
    s.add("or_2.png", "suspicious")
    undone = s.add("ma_0.png", "trash")
    s.add("ma_0.png", "undo", undoes=undone)
    s.add("ma_1.png", "keep")
    review.run(params("strict"))
    train, actions, quarantine, metrics = outputs()
    labels = dict(zip(train["image_id"], train["label"]))
    assert labels["or_0.png"] == "mandarin"
    assert "or_1.png" not in labels and "ma_0.png" in labels and "or_2.png" in labels
    assert len(train) == 10
    assert quarantine.to_dict("records") == [
        {"image_id": "or_1.png", "label": "orange", "group": "orange-g1", "reasons": "review_trash"}
    ]
    assert actions[["image_id", "action", "new_label", "session", "status"]].to_dict("records") == [
        {"image_id": "or_0.png", "action": "relabel", "new_label": "mandarin", "session": "s1", "status": "applied"},
        {"image_id": "or_1.png", "action": "trash", "new_label": "", "session": "s1", "status": "applied"},
        {"image_id": "or_2.png", "action": "suspicious", "new_label": "", "session": "s1", "status": "recorded"},
        {"image_id": "ma_1.png", "action": "keep", "new_label": "", "session": "s1", "status": "recorded"},
    ]
    assert actions["time"].iloc[0] == "2026-11-22T10:01:00+00:00"
    assert metrics == {
        "sessions": 1, "events": 6, "decisions": 4, "rows_in": 11, "rows_out": 10, "relabels": 1, "trash": 1,
        "action_keep": 1, "action_suspicious": 1, "action_trash": 1, "action_relabel": 1,
        "status_applied": 2, "status_restored": 0, "status_recorded": 2, "status_conflict": 0, "status_dropped": 0,
    }
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("variant, status", [("strict", "recorded"), ("aggressive", "restored")])
def test_a_human_keep_overrides_an_automatic_quarantine(manifest, variant, status):
    Writer(manifest).add(review_project.QUARANTINED, "keep")
    review.run(params(variant))
    train, actions, _, metrics = outputs()
    assert review_project.QUARANTINED in set(train["image_id"])
    assert actions["status"].tolist() == [status]
    assert metrics["rows_out"] == 11  # strict: all 11 kept; aggressive: 10 in + 1 restored
    assert metrics["rows_in"] == (11 if variant == "strict" else 10)


def test_aggressive_without_review_leaves_the_quarantined_image_out(manifest):
    review.run(params("aggressive"))
    train, *_ = outputs()
    assert review_project.QUARANTINED not in set(train["image_id"]) and len(train) == 10


def test_relabel_of_a_quarantined_image_brings_it_back_relabelled(manifest):
    Writer(manifest).add(review_project.QUARANTINED, "relabel", "orange")
    review.run(params("aggressive"))
    train, actions, _, _ = outputs()
    assert dict(zip(train["image_id"], train["label"]))[review_project.QUARANTINED] == "orange"
    assert actions["status"].tolist() == ["restored"]


def test_trash_of_a_quarantined_image_in_aggressive_is_recorded(manifest):
    Writer(manifest).add(review_project.QUARANTINED, "trash")
    review.run(params("aggressive"))
    train, actions, quarantine, _ = outputs()
    assert review_project.QUARANTINED not in set(train["image_id"])
    assert actions["status"].tolist() == ["recorded"] and quarantine.empty


def test_a_dropped_image_cannot_come_back(manifest):
    Writer(manifest).add(review_project.DROPPED, "keep")
    review.run(params("aggressive"))
    train, actions, _, metrics = outputs()
    assert review_project.DROPPED not in set(train["image_id"])
    assert actions["status"].tolist() == ["dropped"] and metrics["status_dropped"] == 1


@pytest.mark.parametrize("variant", ["strict", "aggressive"])
def test_a_human_label_brings_back_one_copy_of_a_cross_label_duplicate(tmp_path: Path, monkeypatch, variant: str):
    monkeypatch.chdir(tmp_path)
    manifest = review_project.build(Path("."), duplicates=True)  # ma_4 (mandarin) = or_1 (orange), both dropped
    writer = Writer(manifest)
    writer.add(review_project.COPY, "relabel", "orange")  # the duplicates view: the keeper under orange ...
    writer.add(review_project.ORIGINAL, "trash")  # ... and the other copy trashed
    writer.add(review_project.DROPPED, "keep")  # an unreadable drop never comes back
    review.run(params(variant))
    train, actions, _, _ = outputs()
    labels = dict(zip(train["image_id"], train["label"]))
    assert labels[review_project.COPY] == "orange" and review_project.ORIGINAL not in labels
    assert actions["status"].tolist() == ["restored", "dropped", "dropped"]


def test_changed_file_is_a_conflict_reported_by_name(manifest, capsys):
    s = Writer(manifest, session="alice")
    s.add("or_0.png", "relabel", "mandarin", sha256="0" * 64)
    s.add("ki_0.png", "relabel", "mandarin", label="orange")  # reviewed when it was labelled orange
    review.run(params())
    train, actions, _, metrics = outputs()
    assert actions["status"].tolist() == ["conflict", "conflict"]
    assert dict(zip(train["image_id"], train["label"]))["or_0.png"] == "orange"
    err = capsys.readouterr().err
    assert "warning: conflict: image 'or_0.png' (session 'alice', data/review/sessions/alice.jsonl:1): its file changed" in err
    assert "image 'ki_0.png'" in err and "its label changed" in err
    assert metrics["status_conflict"] == 2 and metrics["relabels"] == 0


def test_latest_session_wins(manifest):
    Writer(manifest, "alice", hour=9).add("or_0.png", "trash")
    Writer(manifest, "bob", hour=11).add("or_0.png", "relabel", "mandarin")
    Writer(manifest, "carol", hour=10).add("or_0.png", "keep")
    review.run(params())
    train, actions, _, metrics = outputs()
    assert actions[["image_id", "action", "session"]].values.tolist() == [["or_0.png", "relabel", "bob"]]
    assert dict(zip(train["image_id"], train["label"]))["or_0.png"] == "mandarin"
    assert metrics["sessions"] == 3 and metrics["events"] == 3


def test_sample_journal_applies_only_to_the_sample(manifest):
    Writer(manifest, "demo", folder=paths.SAMPLE_REVIEW_DIR).add("or_0.png", "trash")
    review.run(params(data_dir="data/raw"))
    assert outputs()[1].empty
    review.run(params(data_dir="data/sample"))
    assert outputs()[1]["image_id"].tolist() == ["or_0.png"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(image_id="nope.png"), "alice.jsonl:1: image 'nope.png' is not a train image"),
        (dict(image_id="te_0.png"), "alice.jsonl:1: image 'te_0.png' is not a train image"),
        (dict(action="relabel", new_label="durian"), "alice.jsonl:1: class 'durian' is not in the class list"),
        (dict(label="durian"), "alice.jsonl:1: class 'durian' is not in the class list"),
    ],
)
def test_unknown_image_or_class_names_file_and_line(manifest, overrides, message):
    s = Writer(manifest, "alice")
    fields = dict(event_id="alice-1", time="2026-11-22T10:00:00+00:00", session="alice", image_id="or_0.png",
                  sha256="a" * 64, label="orange", action="keep", new_label=None, undoes=None)
    fields.update(overrides)
    journal.append(s.path, Event(**fields))
    with pytest.raises(GrocerError, match=message):
        review.run(params())
    assert not paths.PREPARED_TRAIN.exists()


def test_a_broken_journal_line_stops_the_stage(manifest):
    Writer(manifest).add("or_0.png", "keep")
    with open(paths.REVIEW_SESSIONS_DIR / "s1.jsonl", "a") as fh:
        fh.write('{"event_id": "s1-2"}\n')
    with pytest.raises(GrocerError, match=r"s1.jsonl:2: missing field\(s\) time"):
        review.run(params())


def test_validation_after_apply_refuses_an_unreadable_row(manifest):
    strict = pd.read_csv(paths.clean_variant("strict"), dtype=str, keep_default_na=False)
    extra = pd.DataFrame([{"image_id": review_project.DROPPED, "label": "kiwi", "group": "kiwi-g1"}])
    pd.concat([strict, extra]).to_csv(paths.clean_variant("strict"), index=False)
    with pytest.raises(GrocerError, match="'ki_3.png' is unreadable"):
        review.run(params())


def test_cli_runs_the_stage_and_prints_one_error_line(manifest, capsys):
    raw = deep_update(default_params_dict(), {"data": {"dir": "data/raw"}})
    Path("params.yaml").write_text(yaml.safe_dump(raw))
    assert cli.main(["apply-review"]) == 0
    assert paths.PREPARED_TRAIN.is_file()
    Writer(manifest).add("or_0.png", "relabel", "durian")
    assert cli.main(["apply-review"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "grocer apply-review: error: data/review/sessions/s1.jsonl:1: class 'durian' is not in the class list "
        "(data/interim/classes.json)"
    ]
