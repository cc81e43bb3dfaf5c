import re

import pytest
import yaml

from support.params import REPO, deep_update, default_params_dict
from grocer import params as params_module
from grocer.params import ParamsError, parse


def test_repo_params_yaml_is_valid():
    loaded = params_module.load(REPO / "params.yaml")
    assert loaded.clean.variant in {"strict", "aggressive"}
    assert set(loaded.run.models) <= set(loaded.zoo)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train": {"epoch": 3}}, "train.epoch: unknown key"),
        ({"aug": {"profile": "no_colour"}}, "aug.profile: 'no_colour' is not allowed; input should be 'full', 'no_color' or 'none'"),
        ({"train": {"epochs": "3"}}, "train.epochs: Input should be a valid integer"),
        ({"train": {"sam": 1}}, "train.sam: Input should be a valid boolean"),
        ({"folds": {"n_splits": 1}}, "folds.n_splits: Input should be greater than or equal to 2"),
        ({"pairs": {"list": ["mandarin_orange"]}}, "pair 'mandarin_orange' must be two different class names"),
        ({"pairs": {"list": ["top0"]}}, "pair 'top0' must be two different class names joined by '-', or a slot topN"),
        ({"pairs": {"list": ["top1", "top1"]}}, "pairs.list: lists an entry twice"),
        ({"run": {"models": ["nope"]}}, "model 'nope' is not in zoo"),
        ({"run": {"folds": [0, 7]}}, "run.folds must be distinct values in 0..4"),
        ({"zoo": {"resnet": {"train": {"img_size": 512}}}}, "cache.img_size (72) is smaller than a model's img_size (512)"),
        ({"zoo": {"resnet": {"train": {"epoch": 3}}}}, "zoo.resnet.train overrides: epoch: unknown key"),
        ({"zoo": {"regnet": {"train": {"epochs": 1}}}}, "zoo.regnet.train overrides: warmup_epochs (1) must be below epochs (1)"),
        ({"zoo": {"resnet": {"aug": {"flips": "diagonal"}}}}, "zoo.resnet.aug overrides: flips: 'diagonal' is not allowed"),
        ({"surprise": {"a": 1}}, "surprise: unknown key"),
        ({"train": {"nproc": 2}}, "nproc (2) needs distributed: ddp"),
        ({"train": {"distributed": "ddp", "nproc": 3}}, "batch_size (64) must be a multiple of nproc (3)"),
        ({"train": {"distributed": "fsdp"}}, "train.distributed: 'fsdp' is not allowed"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ParamsError) as err:
        parse(deep_update(default_params_dict(), overrides))
    assert message in str(err.value)


def test_a_models_recipe_overrides_only_its_own_keys():
    loaded = parse(deep_update(default_params_dict(), {"zoo": {"resnet": {"train": {"seed": 3, "lr": 0.001},
                                                                          "aug": {"profile": "none"}}}}))
    resnet, regnet = loaded.for_model("resnet"), loaded.for_model("regnet")
    assert (resnet.train.seed, resnet.train.lr, resnet.aug.profile) == (3, 0.001, "none")
    assert resnet.train.epochs == loaded.train.epochs and resnet.aug.crop_scale == loaded.aug.crop_scale
    assert (regnet.train, regnet.aug) == (loaded.train, loaded.aug)


def test_missing_key_is_named():
    raw = default_params_dict()
    del raw["train"]["lr"]
    with pytest.raises(ParamsError, match=r"train\.lr: missing key"):
        parse(raw)


def test_load_reports_bad_yaml(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        params_module.load(bad)


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    text = (REPO / "params.yaml").read_text()
    assert "\n  epochs: " in text
    twice = tmp_path / "params.yaml"
    twice.write_text(text.replace("\n  epochs: ", "\n  epochs: 50\n  epochs: ", 1))
    line = twice.read_text().splitlines().index("  epochs: 50") + 1
    with pytest.raises(ParamsError, match=rf"^{re.escape(str(twice))}: duplicate key 'epochs' \(lines {line} and {line + 1}\)$"):
        params_module.load(twice)


def test_an_empty_params_file_says_so(tmp_path):
    empty = tmp_path / "params.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ParamsError, match=rf"^{re.escape(str(empty))} is empty$"):
        params_module.load(empty)


def leaf_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        keys.extend(leaf_keys(value, path + ".") if isinstance(value, dict) else [path])
    return keys


def test_every_param_is_declared_by_a_stage():
    """A key no stage declares would never trigger a re-run, so it must not exist."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    declared = set()
    for stage in dvc["stages"].values():
        for entry in stage.get("params", []):
            declared.add((entry if isinstance(entry, str) else next(iter(entry))).replace("${item.model}", "*"))
    undeclared = [
        key for key in leaf_keys(default_params_dict())
        if not any(key == d or key.startswith(d + ".") or (d.endswith("*") and key.startswith(d[:-1])) for d in declared)
    ]
    assert undeclared == []
