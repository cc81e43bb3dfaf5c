"""Training building blocks on arrays and tiny models: augment, TTA, mix, schedule, SAM, objectives, models."""

import math

import albumentations as A
import cv2
import numpy as np
import pytest
import timm
import torch

from support.params import make_params
from grocer.errors import GrocerError
from grocer.params import AugParams, ParamsError, ZooModel
from grocer.training import augment, tta
from grocer.training.device import resolve_device
from grocer.training.mix import MixConfig, cutmix_box, mix_batch
from grocer.training.models import create_model, eval_view, normalization
from grocer.training.objectives import Binary, MultiClass, balanced_class_weights
from grocer.training.sam import SAM
from grocer.training.schedule import lr_at

# ---------------------------------------------------------------- augment

VIEW = augment.EvalView(crop_pct=0.875, interpolation="bilinear")  # timm's default data config
STRONG = {"crop_scale": 0.35, "flips": "square", "degrade_prob": 0.3, "dropout_prob": 0.5}


def aug(profile: str, **strength) -> AugParams:
    """An aug section (unvalidated, so a bad profile reaches the builder)."""
    return AugParams.model_construct(profile=profile, **{**STRONG, **strength})


def walk(transform):
    """Every leaf op of a pipeline, nested OneOf/Compose included."""
    if isinstance(transform, A.BaseCompose):
        return [leaf for child in transform.transforms for leaf in walk(child)]
    return [transform]


def test_no_color_profile_has_no_colour_op_and_full_has_them():
    full = walk(augment.build_train_transforms(aug("full"), 32, VIEW))
    no_color = walk(augment.build_train_transforms(aug("no_color"), 32, VIEW))
    assert {type(t) for t in full} >= set(augment.COLOR_TRANSFORMS)
    assert not [t for t in no_color if isinstance(t, augment.COLOR_TRANSFORMS)]
    # every pixel-level op left in no_color is a colour-neutral degradation
    neutral = (A.GaussianBlur, A.MotionBlur, A.GaussNoise, A.ImageCompression, A.CoarseDropout)
    pixel_ops = [t for t in no_color if isinstance(t, A.ImageOnlyTransform)]
    assert pixel_ops and all(isinstance(t, neutral) for t in pixel_ops)
    # the geometry is shared: no_color is full minus its colour ops
    assert [type(t) for t in full if not isinstance(t, augment.COLOR_TRANSFORMS)] == [type(t) for t in no_color]


def test_no_color_keeps_grey_grey_and_full_does_not():
    grey = np.repeat(np.random.default_rng(0).integers(0, 255, (40, 40, 1), dtype=np.uint8), 3, axis=2)
    no_color = augment.build_train_transforms(aug("no_color"), 32, VIEW)
    full = augment.build_train_transforms(aug("full"), 32, VIEW)
    augment.reseed(no_color, 0)
    augment.reseed(full, 0)
    for _ in range(40):
        out = no_color(image=grey)["image"]
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    # the check can fail: colour ops (hue/saturation on a tinted image) break it
    tinted = grey.copy()
    tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 40, 0, 255)
    outs = [full(image=tinted)["image"].astype(int) for _ in range(20)]
    shifts = {int(np.median(o[..., 0] - o[..., 1])) for o in outs}
    assert len(shifts) > 1  # the red tint is changed by some draws


def test_none_profile_is_the_deterministic_eval_pipeline():
    image = np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    none = augment.build_train_transforms(aug("none"), 32, VIEW)
    a, b = none(image=image)["image"], augment.build_eval_transforms(32, VIEW)(image=image)["image"]
    assert a.shape == (32, 32, 3) and np.array_equal(a, b)


def test_reseed_makes_augmentation_reproducible():
    image = np.random.default_rng(2).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    pipeline = augment.build_train_transforms(aug("full"), 32, VIEW)
    augment.reseed(pipeline, 5)
    first = [pipeline(image=image)["image"] for _ in range(5)]
    augment.reseed(pipeline, 5)
    assert all(np.array_equal(x, pipeline(image=image)["image"]) for x in first)


def test_strength_params_reach_their_ops():
    light = walk(augment.build_train_transforms(aug("no_color", crop_scale=0.7, flips="horizontal",
                                                    degrade_prob=0.1, dropout_prob=0.0), 32, VIEW))
    crop = next(t for t in light if isinstance(t, A.RandomResizedCrop))
    assert tuple(crop.scale) == (0.7, 1.0)
    assert [type(t) for t in light if isinstance(t, (A.HorizontalFlip, A.SquareSymmetry))] == [A.HorizontalFlip]
    assert next(t for t in light if isinstance(t, A.CoarseDropout)).p == 0.0
    degraded = augment.build_train_transforms(aug("no_color", degrade_prob=0.1), 32, VIEW)
    degradations = next(t for t in degraded.transforms if isinstance(t, A.OneOf))
    assert degradations.p == 0.1
    unflipped = walk(augment.build_train_transforms(aug("no_color", flips="none"), 32, VIEW))
    assert not [t for t in unflipped if isinstance(t, (A.HorizontalFlip, A.SquareSymmetry))]
    square = walk(augment.build_train_transforms(aug("no_color", flips="square"), 32, VIEW))
    assert [type(t) for t in square if isinstance(t, (A.HorizontalFlip, A.SquareSymmetry))] == [A.SquareSymmetry]


def test_unknown_profile_is_an_error():
    with pytest.raises(GrocerError, match="aug.profile"):
        augment.build_train_transforms(aug("rainbow"), 32, VIEW)


# ---------------------------------------------------------------- TTA


def test_every_view_is_invertible_and_geo8_has_8_distinct_views():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    for mode, count in (("none", 1), ("flip", 2), ("geo4", 4), ("geo8", 8)):
        views = tta.views(mode)
        assert len(views) == count
        for view in views:
            assert torch.equal(view.invert(view.apply(x)), x), view.name
        outputs = {tuple(view.apply(x).flatten().tolist()) for view in views}
        assert len(outputs) == count, mode
    # flip and geo4 are subsets of the 8 symmetries
    geo8 = {tuple(view.apply(x).flatten().tolist()) for view in tta.views("geo8")}
    for mode in ("flip", "geo4"):
        assert {tuple(view.apply(x).flatten().tolist()) for view in tta.views(mode)} <= geo8


def test_views_are_the_named_geometry():
    x = torch.rand(1, 3, 4, 4)
    by_name = {v.name: v for v in tta.views("geo4")}
    assert torch.equal(by_name["hflip"].apply(x), x.flip(-1))
    assert torch.equal(by_name["vflip"].apply(x), x.flip(-2))
    assert torch.equal(by_name["rot180"].apply(x), x.flip(-1).flip(-2))


def test_tta_logits_average_views_and_mode_is_checked():
    x = torch.rand(3, 3, 4, 4)
    # a "model" that reads only the top-left pixel: sees a different pixel in every geo4 view
    forward = lambda batch: batch[:, :1, 0, 0]  # noqa: E731
    expected = (x[:, 0, 0, 0] + x[:, 0, 0, 3] + x[:, 0, 3, 0] + x[:, 0, 3, 3]) / 4
    assert torch.allclose(tta.tta_logits(forward, x, "geo4")[:, 0], expected)
    with pytest.raises(GrocerError, match="tta.mode"):
        tta.views("colour")


# ---------------------------------------------------------------- mixup / CutMix


def test_mix_keeps_target_mass_and_mixes_images():
    rng = np.random.default_rng(0)
    images = torch.rand(8, 3, 16, 16)
    targets = torch.nn.functional.one_hot(torch.arange(8) % 4, 4).float()
    for config in (MixConfig(0.4, 0.0, 1.0), MixConfig(0.0, 1.0, 1.0)):
        mixed, mixed_targets = mix_batch(images, targets, config, rng)
        assert not torch.equal(mixed, images)
        assert torch.allclose(mixed_targets.sum(1), torch.ones(8))
        assert (mixed_targets > 0).sum() > 8  # some rows now hold two classes


def test_cutmix_targets_weigh_the_pasted_area():
    rng = np.random.default_rng(3)
    images = torch.zeros(2, 1, 10, 10)
    images[1] = 1.0
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    for _ in range(20):
        mixed, mixed_targets = mix_batch(images, targets, MixConfig(0.0, 1.0, 1.0), rng)
        for i in range(2):
            # share of image 1's pixels in row i == weight of class 1 in its target
            assert math.isclose(float(mixed[i].mean()), float(mixed_targets[i, 1]), abs_tol=1e-6)


def test_mix_is_off_when_disabled_or_unlucky():
    rng = np.random.default_rng(0)
    images, targets = torch.rand(4, 3, 8, 8), torch.eye(4)
    for config in (MixConfig(0.0, 0.0, 1.0), MixConfig(0.4, 1.0, 0.0)):
        out, out_targets = mix_batch(images, targets, config, rng)
        assert out is images and out_targets is targets


def test_cutmix_box_is_clipped_inside():
    rng = np.random.default_rng(1)
    for _ in range(50):
        top, bottom, left, right = cutmix_box(12, 9, float(rng.uniform()), rng)
        assert 0 <= top <= bottom <= 12 and 0 <= left <= right <= 9


# ---------------------------------------------------------------- schedule


def test_schedule_warms_up_decays_and_holds_swa_lr():
    kwargs = dict(steps_per_epoch=10, epochs=10, base_lr=1.0, warmup_epochs=2)
    lrs = [lr_at(s, **kwargs) for s in range(100)]
    assert lrs[0] == pytest.approx(0.05) and lrs[19] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:19], lrs[1:20]))
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:]))
    assert lrs[-1] == pytest.approx(0.01, abs=1e-3)
    swa = [lr_at(s, swa_start=6, swa_lr=0.3, **kwargs) for s in range(100)]
    assert swa[59] < 0.02 and set(swa[60:]) == {0.3}  # the cosine ends where SWA starts


# ---------------------------------------------------------------- SAM


def test_sam_takes_the_gradient_at_the_perturbed_point():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = torch.optim.SGD([w], lr=0.1)
    sam = SAM(optimizer, rho=0.5)
    loss = lambda: (w**3).sum()  # noqa: E731  gradient 3 w^2 depends on where it is taken
    loss().backward()
    g = w.grad.clone()
    sam.perturb()
    perturbed = w.detach().clone()
    assert torch.allclose(perturbed, torch.tensor([1.0, 2.0]) + 0.5 * g / g.norm())
    optimizer.zero_grad()
    loss().backward()
    sam.restore()
    assert torch.allclose(w.detach(), torch.tensor([1.0, 2.0]))
    assert torch.allclose(w.grad, 3 * perturbed**2)
    optimizer.step()
    assert torch.allclose(w.detach(), torch.tensor([1.0, 2.0]) - 0.1 * 3 * perturbed**2)


# ---------------------------------------------------------------- objectives


def test_class_weights_favour_rare_classes_and_enter_the_loss():
    labels = np.array([0] * 8 + [1] * 2)
    weights = balanced_class_weights(labels, 3)
    assert weights[1] == pytest.approx(4 * weights[0]) and np.mean(weights[labels]) == pytest.approx(1.0)
    assert weights[2] == 1.0  # absent from this fold
    logits, y = torch.tensor([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]]), torch.tensor([0, 1])
    plain = MultiClass(3, None, 0.0)
    weighted = MultiClass(3, torch.tensor(weights, dtype=torch.float32), 0.0)
    per_row = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    expected = (per_row * torch.tensor(weights[[0, 1]], dtype=torch.float32)).mean()
    assert weighted.loss(logits, plain.targets(y)) == pytest.approx(float(expected))
    assert plain.loss(logits, plain.targets(y)) == pytest.approx(float(per_row.mean()))


def test_binary_objective_uses_float_targets_and_pos_weight():
    objective = Binary(pos_weight=3.0, label_smoothing=0.0)
    targets = objective.targets(torch.tensor([0, 1]))
    assert targets.dtype == torch.float32 and targets.shape == (2, 1)
    logits = torch.zeros(2, 1)
    # log(2) per row; the positive row counts 3 times
    assert float(objective.loss(logits, targets)) == pytest.approx(math.log(2) * (1 + 3) / 2)


# ---------------------------------------------------------------- models, device, params


def zoo(**overrides) -> ZooModel:
    entry = dict(arch="test_convnext", pretrained=False, pretrained_file=None, channels_last=False,
                 drop_rate=0.0, drop_path_rate=0.0)
    return ZooModel.model_validate({**entry, **overrides})


def test_unknown_arch_names_close_timm_models():
    with pytest.raises(GrocerError, match="test_convnext"):
        create_model(zoo(arch="test_convnxt"), 3, 32)
    with pytest.raises(GrocerError, match="unknown timm architecture 'convnext_small.bogus'"):
        create_model(zoo(arch="convnext_small.bogus"), 3, 32)


def test_bad_zoo_params_are_params_errors():
    with pytest.raises(ParamsError, match="pretrained_file is set but pretrained is false"):
        make_params({"zoo": {"resnet": {"pretrained_file": "x.pt"}}})
    with pytest.raises(ParamsError, match="swa_start"):
        make_params({"train": {"epochs": 3, "swa_start": 3}})
    with pytest.raises(ParamsError, match="reserved"):
        make_params({"zoo": {"pairs": make_params().zoo["resnet"].model_dump()}})


def test_pretrained_file_loads_through_timm(tmp_path):
    torch.manual_seed(0)
    source = timm.create_model("test_convnext", num_classes=3)
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    torch.manual_seed(1)  # a different random init: only loading can make the weights equal
    loaded = create_model(zoo(pretrained=True, pretrained_file=str(path)), 3, 32)
    fresh = create_model(zoo(), 3, 32)
    stem = "stem.0.weight"
    assert torch.equal(loaded.state_dict()[stem], source.state_dict()[stem])
    assert not torch.equal(fresh.state_dict()[stem], source.state_dict()[stem])
    with pytest.raises(GrocerError, match="does not exist"):
        create_model(zoo(pretrained=True, pretrained_file=str(tmp_path / "missing.pth")), 3, 32)


@pytest.mark.parametrize(("arch", "crop_pct", "interpolation", "mean"), [
    # timm's default data config is (0.875, bilinear, ImageNet mean): each of these differs
    ("deit3_small_patch16_224.fb_in22k_ft_in1k", 1.0, "bicubic", (0.485, 0.456, 0.406)),
    ("convnext_small.fb_in22k_ft_in1k", 0.875, "bicubic", (0.485, 0.456, 0.406)),
    ("test_convnext", 0.95, "bicubic", (0.5, 0.5, 0.5)),
])
def test_evaluation_follows_the_pretrained_config_of_the_arch(monkeypatch, arch, crop_pct, interpolation, mean):
    """timm's resolve_model_data_config of the arch's pretrained_cfg, read without loading weights."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a download attempt would fail the test
    model = create_model(zoo(arch=arch), 3, 224 if arch.startswith("deit3") else 32)
    view = eval_view(model)
    assert (view.crop_pct, view.interpolation) == (crop_pct, interpolation)
    assert normalization(model)[0] == pytest.approx(mean)

    image = np.random.default_rng(4).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    out = augment.build_eval_transforms(32, view)(image=image)["image"]
    side = round(32 / crop_pct)  # resized with the weights' interpolation, then centre-cropped
    resized = cv2.resize(image, (side, side), interpolation=augment.INTERPOLATIONS[interpolation])
    start = (side - 32) // 2
    assert np.array_equal(out, resized[start:start + 32, start:start + 32])
    if crop_pct == 1.0:  # deit3: the whole image, no crop
        assert np.array_equal(out, cv2.resize(image, (32, 32), interpolation=cv2.INTER_CUBIC))


def test_vit_gets_the_image_size_and_channels_last_is_applied():
    vit = create_model(zoo(arch="test_vit"), 4, 32)
    assert vit(torch.rand(1, 3, 32, 32)).shape == (1, 4)
    assert tuple(vit.patch_embed.img_size) == (32, 32)
    cnn = create_model(zoo(channels_last=True), 4, 32)
    assert cnn.stem[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(GrocerError, match="device: 'cuda' requested"):
            resolve_device("cuda")
