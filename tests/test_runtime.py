"""Machine-local runtime settings (grocer.runtime): strict like params, and never a stage param."""

from pathlib import Path

import pytest
import yaml

from support.params import REPO
from grocer import runtime
from grocer.params import TrainParams
from grocer.runtime import Runtime, SettingsError


def settings(tmp_path: Path, text: str | None, **environ: str) -> Runtime:
    path = tmp_path / "grocer.local.yaml"
    if text is not None:
        path.write_text(text)
    return runtime.load(path, environ)


def test_defaults_without_file_or_variables(tmp_path):
    assert settings(tmp_path, None) == Runtime(device="auto", threads=0, num_workers=0, eval_batch_size=128)


def test_file_then_environment(tmp_path):
    text = "device: cpu\nthreads: 2\nnum_workers: 3\n"
    assert settings(tmp_path, text) == Runtime(device="cpu", threads=2, num_workers=3)
    assert settings(tmp_path, text, GROCER_THREADS="1", GROCER_EVAL_BATCH_SIZE="7") == Runtime(
        device="cpu", threads=1, num_workers=3, eval_batch_size=7)
    assert settings(tmp_path, "", GROCER_DEVICE="mps").device == "mps"


@pytest.mark.parametrize(("text", "environ", "message"), [
    ("thread: 2\n", {}, "grocer.local.yaml: thread: unknown key"),
    ("device: tpu\n", {}, "grocer.local.yaml: device: 'tpu' is not allowed"),
    ("num_workers: '2'\n", {}, "grocer.local.yaml: num_workers: Input should be a valid integer"),
    ("eval_batch_size: 0\n", {}, "grocer.local.yaml: eval_batch_size: Input should be greater than or equal to 1"),
    ("- device\n", {}, "grocer.local.yaml: must be a mapping of settings"),
    ("device: [\n", {}, "grocer.local.yaml: not valid YAML"),
    (None, {"GROCER_THREADS": "two"}, "GROCER_THREADS: 'two' is not an integer"),
    (None, {"GROCER_DEVICE": "gpu"}, "GROCER_DEVICE: device: 'gpu' is not allowed"),
    ("threads: 1\n", {"GROCER_NUM_WORKERS": "-1"}, "GROCER_NUM_WORKERS: num_workers: Input should be greater"),
])
def test_bad_settings_name_the_key_and_the_source(tmp_path, text, environ, message):
    with pytest.raises(SettingsError) as err:
        settings(tmp_path, text, **environ)
    assert message in str(err.value)


def test_the_settings_file_is_git_ignored():
    patterns = (REPO / ".gitignore").read_text().split()
    assert "/grocer.local.yaml" in patterns


def stage_params(stage: str) -> list[str]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["params"]


def test_no_runtime_setting_is_a_param():
    assert not set(Runtime.model_fields) & set(TrainParams.model_fields)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert not set(Runtime.model_fields) & set(raw["train"])


@pytest.mark.parametrize(("stage", "unread"), [("train", set()), ("pair", {"epochs", "stage2"})])
def test_training_stages_list_every_recipe_key(stage, unread):
    """Each key one by one (a new TrainParams key must be added to dvc.yaml, or it re-runs nothing)."""
    listed = {p.removeprefix("train.") for p in stage_params(stage) if p.startswith("train.")}
    assert "train" not in stage_params(stage)
    assert listed == set(TrainParams.model_fields) - unread
