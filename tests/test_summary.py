"""`grocer summary`: the evolution table `make run` ends with."""

import json

import pytest

from support.params import make_params
from grocer import cli, paths
from grocer.summary import table

FINAL = {
    "oof_acc": 0.91, "oof_f1": 0.90, "oof_coverage": 1.0, "test_acc": 0.93, "test_f1": 0.92,
    "best_single": {"oof_acc": 0.88, "oof_f1": 0.87}, "blend": {"oof_acc": 0.90, "oof_f1": 0.89},
    "bias": {"oof_acc": 0.91, "oof_f1": 0.90}, "stack": {"oof_acc": 0.91, "oof_f1": 0.90},
    "override": {"oof_acc": 0.91, "oof_f1": 0.90}, "submitted": "bias", "source": "blend",
}


def test_table_lists_the_chain_in_order_and_marks_the_submitted_step():
    lines = table(FINAL, "stack")
    assert [line.split()[0] for line in lines[1:6]] == ["best_single", "blend", "bias", "stack", "override"]
    assert [line for line in lines if "submitted" in line] == [lines[4]]
    assert "0.880" in lines[1] and "0.870" in lines[1]
    assert lines[-1] == "submission on the sample's test labels: accuracy 0.930, macro-F1 0.920"


def test_table_without_test_labels_or_switched_off_steps():
    final = {k: v for k, v in FINAL.items() if k not in ("bias", "override", "test_acc", "test_f1")}
    lines = table(final, "stack")
    assert [line.split()[0] for line in lines[1:]] == ["best_single", "blend", "stack"]


def test_summary_command_reads_final_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(json.dumps(make_params({"submit": {"source": "blend"}}).model_dump()))
    assert cli.main(["summary"]) == 1
    assert "metrics/final.json: not found; run `dvc repro submit` first" in capsys.readouterr().err
    paths.FINAL_METRICS.parent.mkdir()
    paths.FINAL_METRICS.write_text(json.dumps(FINAL))
    assert cli.main(["summary"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if "submitted" in line][0].startswith("bias")  # the calibrated blend
