"""dvc.yaml's train/infer/pair stages agree with the CLI and the params."""

import yaml

from support.params import REPO
from grocer import cli


def dvc_yaml() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_matrix_stages_call_the_cli_with_their_item():
    stages = dvc_yaml()["stages"]
    assert stages["train"]["matrix"] == {"model": "${run.models}", "fold": "${run.folds}"}
    assert stages["infer"]["matrix"] == {"model": "${run.models}"}
    assert stages["pair"]["matrix"] == {"pair": "${pairs.list}", "fold": "${run.folds}"}
    assert stages["infer"]["cmd"].split()[1:] == ["infer", "--model", "${item.model}"]
    assert vars(cli._parser().parse_args(["infer", "--model", "x"])) == {"command": "infer", "model": "x"}
    assert "run.folds" in stages["infer"]["params"]  # it predicts with every fold of run.folds
    for name, option in (("train", "model"), ("pair", "pair")):
        argv = stages[name]["cmd"].split()[1:]
        assert argv == [name, f"--{option}", f"${{item.{option}}}", "--fold", "${item.fold}"]
        parsed = vars(cli._parser().parse_args([name, f"--{option}", "x", "--fold", "0"]))
        assert parsed == {"command": name, option: "x", "fold": 0}
    # a model's own recipe lives in its zoo entry: changing it re-runs only that model's items
    assert "zoo.${item.model}" in stages["train"]["params"] and "zoo.${item.model}" in stages["infer"]["params"]
    assert "zoo.${pairs.model}" in stages["pair"]["params"]

