"""Dice/IoU/pixel accuracy against MONAI on hand-made masks; losses honour ignore_index and weights."""
from __future__ import annotations

import math

import pytest
import torch
from monai.metrics import compute_dice, compute_iou
from monai.networks.utils import one_hot

from toolkit.errors import ConfigError
from toolkit.tasks.seg_losses import LOSSES, build_loss
from toolkit.tasks.seg_metrics import SegMetrics

IGNORE = 255


def monai_reference(preds: list[torch.Tensor], targets: list[torch.Tensor], k: int) -> tuple[list, list, float]:
    """Per-class Dice/IoU of all non-ignored pixels pooled into one image (MONAI; NaN when a class is
    in neither truth nor prediction), and pixel accuracy."""
    pred = torch.cat([p.flatten() for p in preds])
    target = torch.cat([t.flatten() for t in targets])
    keep = target != IGNORE
    pred, target = pred[keep].view(1, 1, 1, -1), target[keep].view(1, 1, 1, -1)
    p1, t1 = one_hot(pred, k), one_hot(target, k)
    dice = compute_dice(p1, t1, include_background=True, ignore_empty=False)[0].tolist()
    iou = compute_iou(p1, t1, include_background=True, ignore_empty=False)[0].tolist()
    empty = [(p1[:, c].sum() + t1[:, c].sum()).item() == 0 for c in range(k)]
    dice = [math.nan if e else d for d, e in zip(dice, empty)]
    iou = [math.nan if e else v for v, e in zip(iou, empty)]
    return dice, iou, (pred == target).float().mean().item()


CASES = {
    "partial overlap + ignored pixel + absent class": (
        [torch.tensor([[0, 1, 1, 1], [0, 0, 1, 0]])], [torch.tensor([[0, 0, 1, 1], [0, 0, IGNORE, 1]])]),
    "all-background image (empty foreground) next to a normal one": (
        [torch.zeros(3, 3, dtype=torch.long), torch.tensor([[2, 2, 0], [1, 1, 0], [0, 0, 0]])],
        [torch.zeros(3, 3, dtype=torch.long), torch.tensor([[2, 0, 0], [1, 1, 1], [0, 0, 0]])]),
    "class predicted but absent from the truth": (
        [torch.tensor([[2, 2], [0, 0]])], [torch.tensor([[0, 0], [0, 0]])]),
    "perfect prediction": (
        [torch.tensor([[0, 1], [2, 2]])], [torch.tensor([[0, 1], [2, 2]])]),
}


@pytest.mark.parametrize("case", CASES)
def test_metrics_equal_monai(case: str) -> None:
    preds, targets = CASES[case]
    metrics = SegMetrics(["background", "a", "b"], IGNORE)
    for p, t in zip(preds, targets):
        metrics.update(p[None], t[None])
    out = metrics.compute()
    dice, iou, acc = monai_reference(preds, targets, 3)
    for i, name in enumerate(["background", "a", "b"]):
        for key, ref in (("dice", dice[i]), ("iou", iou[i])):
            got = out[f"{key}/{name}"]
            assert (math.isnan(got) and math.isnan(ref)) or got == pytest.approx(ref, abs=1e-6), (key, name)
    assert out["pixel_acc"] == pytest.approx(acc, abs=1e-6)
    fg = [d for d in dice[1:] if not math.isnan(d)]
    assert out["dice"] == pytest.approx(sum(fg) / len(fg)) if fg else math.isnan(out["dice"])


def test_hand_computed_values_and_empty_rules() -> None:
    preds, targets = CASES["partial overlap + ignored pixel + absent class"]
    metrics = SegMetrics(["background", "a", "b"], IGNORE)
    metrics.update(preds[0][None], targets[0][None])
    out = metrics.compute()
    # class a: truth 3 px (ignored one excluded), prediction 3 px, overlap 2 -> Dice 4/6, IoU 2/4
    assert out["dice/a"] == pytest.approx(2 / 3) and out["iou/a"] == pytest.approx(0.5)
    assert math.isnan(out["dice/b"])  # in neither truth nor prediction: undefined, out of the means
    assert out["dice"] == pytest.approx(2 / 3)  # foreground mean = class a only
    assert out["pixel_acc"] == pytest.approx(5 / 7)
    absent = SegMetrics(["background", "a", "b"], IGNORE)
    absent.update(*(x[0][None] for x in CASES["class predicted but absent from the truth"]))
    assert absent.compute()["dice/b"] == 0.0  # false positives of an absent class score 0


def test_losses_ignore_pixels_and_weights() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 9, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 9))
    target[0, :2] = IGNORE
    changed = logits.detach().clone()
    changed[0, :, :2] = 50 * torch.randn(3, 2, 9)
    for name in LOSSES:
        loss = build_loss(name, 3, ignore_index=IGNORE)
        value = loss(logits, target)
        value.backward()
        assert torch.isfinite(value) and value > 0, name
        assert loss(changed, target).item() == pytest.approx(value.item(), rel=1e-5), name
        weighted = build_loss(name, 3, class_weights=[1.0, 5.0, 0.1], ignore_index=IGNORE)(logits, target)
        assert weighted.item() != pytest.approx(value.item(), rel=1e-3), name
    perfect = torch.nn.functional.one_hot(target.clamp(max=2), 3).permute(0, 3, 1, 2).float() * 40
    assert build_loss("dice", 3, ignore_index=IGNORE)(perfect, target).item() < 1e-3


def test_loss_config_errors() -> None:
    with pytest.raises(ConfigError, match="dicece"):
        build_loss("bce", 2)
    with pytest.raises(ConfigError, match="one weight per class"):
        build_loss("ce", 3, class_weights=[1.0, 2.0])
