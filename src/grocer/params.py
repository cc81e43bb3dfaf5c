"""Typed, strict params: params.yaml is validated once into these objects.

An unknown key, a missing key, a wrong type or a value outside its allowed set is
an error naming the key and what is allowed, raised before any stage does work.
Every field here is read by some stage; dvc.yaml lists, per stage, the sections
(or single keys) that stage reads, so `dvc exp run -S x.y=...` re-runs exactly the
stages that depend on x.y. What each key means is said once, in params.yaml's
comments; here are only the types and bounds.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any, List, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grocer import paths
from grocer.pairs import slot_rank, split_pair
from grocer.errors import GrocerError


class ParamsError(GrocerError):
    """params.yaml is not valid; the message names the key and what is allowed."""


class Section(BaseModel):
    # strict: "3" is not an int and 1 is not a bool; forbid: a typo is an error, not a default.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataParams(Section):
    dir: str
    id_col: str
    label_col: str
    group_col: str | None


class SampleParams(Section):
    seed: int
    n_train: int = Field(ge=200)
    n_test: int = Field(ge=50)
    img_size: int = Field(ge=64, le=512)


class CleanParams(Section):
    variant: Literal["strict", "aggressive"]
    min_side: int = Field(ge=1)
    blank_std: float = Field(ge=0)
    detail_z: float = Field(gt=0)
    phash_radius: int = Field(ge=0, le=32)
    outlier_z: float = Field(gt=0)


class FoldsParams(Section):
    strategy: Literal["label_group", "label", "group"]
    n_splits: int = Field(ge=2, le=20)
    seed: int


class CacheParams(Section):
    img_size: int = Field(ge=16, le=1024)


class RunParams(Section):
    models: list[str] = Field(min_length=1)
    folds: list[int] = Field(min_length=1)


class ZooModel(Section):
    arch: str
    pretrained: bool
    pretrained_file: str | None
    channels_last: bool
    drop_rate: float = Field(ge=0, lt=1)
    drop_path_rate: float = Field(ge=0, lt=1)
    # this model's own recipe: keys of `train:` / `aug:` it overrides (validated against those
    # sections in Params); the same arch with another train.seed is another blend member
    train: dict[str, Any] = Field(default_factory=dict)
    aug: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _file_needs_pretrained(self) -> ZooModel:
        if self.pretrained_file is not None and not self.pretrained:
            raise ValueError(f"{self.arch}: pretrained_file is set but pretrained is false (set both, or neither)")
        return self


class AugParams(Section):
    profile: Literal["full", "no_color", "none"]
    crop_scale: float = Field(gt=0, le=1)
    flips: Literal["square", "horizontal", "none"]
    degrade_prob: float = Field(ge=0, le=1)
    dropout_prob: float = Field(ge=0, le=1)


class Stage2Params(Section):
    epochs: int = Field(ge=1)
    lr_scale: float = Field(gt=0, le=1)
    img_size: int | None = Field(ge=16)


class TrainParams(Section):
    seed: int = Field(ge=0)
    img_size: int = Field(ge=16)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    warmup_epochs: int = Field(ge=0)
    grad_clip: float = Field(ge=0)
    label_smoothing: float = Field(ge=0, lt=1)
    class_weights: bool
    sampler: Literal["shuffle", "weighted"]
    mixup_alpha: float = Field(ge=0)
    cutmix_alpha: float = Field(ge=0)
    mix_prob: float = Field(ge=0, le=1)
    mix_off_epochs: int = Field(ge=0)
    sam: bool
    sam_rho: float = Field(gt=0)
    swa_start: int | None = Field(ge=0)
    swa_lr: float = Field(gt=0)
    amp: bool
    distributed: Literal["none", "ddp"]
    nproc: int = Field(ge=1)
    stage2: Stage2Params | None

    @model_validator(mode="after")
    def _consistent(self) -> TrainParams:
        if self.swa_start is not None and self.swa_start >= self.epochs:
            raise ValueError(f"swa_start ({self.swa_start}) must be below epochs ({self.epochs}), or null to disable SWA")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs})")
        if self.distributed == "none" and self.nproc != 1:
            raise ValueError(f"nproc ({self.nproc}) needs distributed: ddp (or set nproc: 1)")
        if self.batch_size % self.nproc:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of nproc ({self.nproc}): "
                             "it is the global batch, batch_size / nproc images per process")
        return self


class TtaParams(Section):
    mode: Literal["none", "flip", "geo4", "geo8"]


class PairsParams(Section):
    # typing.List: the builtin `list` is shadowed by this field inside the class body
    list: List[str]
    model: str
    epochs: int = Field(ge=1)

    @field_validator("list")
    @classmethod
    def _pair_names(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            if slot_rank(entry) is None:
                split_pair(entry)
        if len(set(entries)) != len(entries):
            raise ValueError("lists an entry twice")
        return entries


class BlendParams(Section):
    calibrate_bias: bool
    sources: list[str]

    @field_validator("sources")
    @classmethod
    def _distinct(cls, sources: list[str]) -> list[str]:
        if len(set(sources)) != len(sources) or any(not s or "/" in s or s.startswith(".") for s in sources):
            raise ValueError("must be distinct folder names under data/sources/")
        return sources


class StackParams(Section):
    method: Literal["hgb", "logreg", "classwise_ridge"]
    logreg_c: float = Field(gt=0)
    ridge_alpha: float = Field(gt=0)
    hgb_max_iter: int = Field(ge=1)
    hgb_learning_rate: float = Field(gt=0)


class OverrideParams(Section):
    enabled: bool
    base: Literal["stack", "blend"]
    calibrate: Literal["none", "temperature"]


class SubmitParams(Section):
    source: Literal["auto", "blend", "stack", "override"]
    group_weight: float = Field(ge=0, le=1)
    group_quantile: float = Field(ge=0, le=1)


class AuditParams(Section):
    seed: int
    n_boot: int = Field(ge=10)
    n_repeats: int = Field(ge=1)
    holdout_frac: float = Field(gt=0, lt=1)
    min_acc: float = Field(ge=0, le=1)


class Params(Section):
    data: DataParams
    sample: SampleParams
    clean: CleanParams
    folds: FoldsParams
    cache: CacheParams
    run: RunParams
    zoo: dict[str, ZooModel]
    aug: AugParams
    train: TrainParams
    tta: TtaParams
    pairs: PairsParams
    blend: BlendParams
    stack: StackParams
    override: OverrideParams
    submit: SubmitParams
    audit: AuditParams

    @model_validator(mode="after")
    def _cross_checks(self) -> Params:
        for name in [*self.run.models, self.pairs.model]:
            if name not in self.zoo:
                raise ValueError(f"model {name!r} is not in zoo (known: {', '.join(sorted(self.zoo))})")
        if len(set(self.run.models)) != len(self.run.models):
            raise ValueError("run.models lists a model twice")
        if "pairs" in self.zoo:
            raise ValueError("zoo: 'pairs' is reserved (models/pairs/ holds the pair experts)")
        bad_folds = [f for f in self.run.folds if not 0 <= f < self.folds.n_splits]
        if bad_folds or len(set(self.run.folds)) != len(self.run.folds):
            raise ValueError(f"run.folds must be distinct values in 0..{self.folds.n_splits - 1}, got {self.run.folds}")
        recipes = [self.for_model(name).train for name in self.zoo]
        sizes = [max(t.img_size, t.stage2.img_size or 0) if t.stage2 else t.img_size for t in recipes]
        if max(sizes) > self.cache.img_size:
            raise ValueError(f"cache.img_size ({self.cache.img_size}) is smaller than a model's img_size ({max(sizes)})")
        return self


    def for_model(self, name: str) -> Params:
        """These params with `train:` and `aug:` as zoo model `name` trains: its overrides applied."""
        entry = self.zoo[name]
        recipe = {}
        for section, overrides in (("train", entry.train), ("aug", entry.aug)):
            merged = {**getattr(self, section).model_dump(), **overrides}
            try:
                recipe[section] = type(getattr(self, section)).model_validate(merged)
            except ValidationError as exc:
                detail = "; ".join(describe_error(e) for e in exc.errors())
                raise ValueError(f"zoo.{name}.{section} overrides: {detail}") from None
        return self.model_copy(update=recipe)


def describe_error(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "params"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{key}: unknown key"
    if kind == "missing":
        return f"{key}: missing key"
    if kind == "literal_error":
        return f"{key}: {error['input']!r} is not allowed; {error['msg'].lower()}"
    if kind == "value_error":  # a cross-key check: its message names the keys; the input is the whole section
        message = error["msg"].removeprefix("Value error, ")
        return f"{key}: {message}" if error["loc"] else message
    return f"{key}: {error['msg']} (got {error.get('input')!r})"


def parse(raw: object, source: str = "params") -> Params:
    """Validate a params mapping. Raises ParamsError naming every bad key."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = "; ".join(describe_error(e) for e in exc.errors())
        raise ParamsError(f"{source}: {lines}") from None


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses a key given twice in one mapping (YAML keeps the last one
    silently; DVC refuses the file)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        lines: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, Hashable):
                continue  # super() refuses it, in YAML's words
            if key in lines:
                raise ParamsError(f"duplicate key {key!r} (lines {lines[key]} and {line})")
            lines[key] = line
        return super().construct_mapping(node, deep)


def load(path: Path = paths.PARAMS) -> Params:
    try:
        raw = yaml.load(path.read_text(), Loader=_StrictLoader)
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run grocer from the project root)") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None
    if raw is None:
        raise ParamsError(f"{path} is empty")
    return parse(raw, str(path))
