"""Ensembles of checkpoints (toolkit/inference/ensemble.py, toolkit/engine/ensemble.py): K copies of one model
predict as that model, different members are averaged (probabilities) or fused (boxes), and segmentation comes with
the members' disagreement as an uncertainty map."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
import torch
from torch import nn

from toolkit.engine import checkpoint
from toolkit.engine.ensemble import checkpoints
from toolkit.errors import CheckpointError, ConfigError
from toolkit.inference.ensemble import Ensemble, spreading
from toolkit.medical import Volume
from toolkit.predict import Predictor


def perturbed(path: Path, out: Path, seed: int) -> Path:
    """A copy of checkpoint ``path`` with noise on its float weights: another member."""
    ckpt = checkpoint.load(path)
    gen = torch.Generator().manual_seed(seed)
    ckpt["model"] = {k: v + 0.05 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
                     for k, v in ckpt["model"].items()}
    checkpoint.save(ckpt, out)
    return out


@pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
def test_copies_of_one_model_are_that_model_and_others_average_their_probabilities(kind: str) -> None:
    torch.manual_seed(0)
    a, b = nn.Conv2d(3, 4, 3, padding=1).eval(), nn.Conv2d(3, 4, 3, padding=1).eval()
    x = torch.randn(2, 3, 8, 8)
    prob = (lambda z: z.softmax(1)) if kind == "softmax" else torch.sigmoid
    with torch.no_grad():
        assert torch.allclose(prob(Ensemble([a, a, a], kind)(x)), prob(a(x)), atol=1e-6)
        mixed = Ensemble([a, b], kind)
        assert torch.allclose(prob(mixed(x)), (prob(a(x)) + prob(b(x))) / 2, atol=1e-6)
        with spreading(mixed):
            out = mixed(x)
    assert out.shape == (2, 8, 8, 8)  # 4 logits of the mean, then 4 of the spread
    spread = torch.stack([prob(a(x)), prob(b(x))]).std(0, unbiased=False)
    assert torch.allclose(torch.sigmoid(out[:, 4:]), spread.clamp_min(1e-6), atol=1e-5)


class FixedDetector(nn.Module):
    """Returns the same detections for every image, shifted by ``dx`` pixels."""

    def __init__(self, dx: float) -> None:
        super().__init__()
        self.dx = nn.Parameter(torch.tensor(dx), requires_grad=False)

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        shift = torch.stack([self.dx, 0 * self.dx, self.dx, 0 * self.dx])
        boxes = torch.tensor([[10.0, 10.0, 30.0, 30.0], [40.0, 5.0, 60.0, 20.0]]) + shift
        return [{"boxes": boxes, "scores": torch.tensor([0.9, 0.6]), "labels": torch.tensor([1, 2])} for _ in images]


def test_detections_of_the_members_are_fused_with_weighted_boxes_fusion() -> None:
    images = [torch.zeros(3, 64, 64)]
    one = FixedDetector(0.0)(images)[0]
    same = Ensemble([FixedDetector(0.0)] * 3, "boxes")(images)[0]
    assert torch.allclose(same["boxes"], one["boxes"], atol=1e-3) and torch.equal(same["labels"], one["labels"])
    assert torch.allclose(same["scores"], one["scores"])
    fused = Ensemble([FixedDetector(0.0), FixedDetector(2.0)], "boxes")(images)[0]  # boxes overlap: IoU 0.82
    assert len(fused["boxes"]) == 2 and fused["boxes"][0, 0].item() == pytest.approx(11.0, abs=1e-3)


def test_classify_checkpoints_predict_as_one_model(make_checkpoint, tmp_path: Path) -> None:
    path = make_checkpoint("classify")
    image = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    single = Predictor.from_checkpoint(path, device="cpu").predict(image, top_k=3)[0]
    ensemble = Predictor.from_checkpoint(f"{path},{path}", device="cpu")
    assert isinstance(ensemble.model, Ensemble) and len(ensemble.model.members) == 2
    copies = ensemble.predict(image, top_k=3)[0]
    assert [c for c, _ in copies.top] == [c for c, _ in single.top]
    assert np.allclose([s for _, s in copies.top], [s for _, s in single.top], atol=1e-6)
    other = perturbed(path, tmp_path / "other.pt", 1)
    assert Predictor.from_checkpoint([path, other], device="cpu").predict(image, top_k=3)[0].top != single.top


def test_segmentation_ensembles_write_an_uncertainty_map(make_checkpoint, tmp_path: Path) -> None:
    path = make_checkpoint("segment")
    image = np.random.default_rng(0).random((40, 48, 3), dtype=np.float32)
    single = Predictor.from_checkpoint(path, device="cpu").predict(image)[0]
    assert single.uncertainty is None
    copies = Predictor.from_checkpoint([path, path], device="cpu").predict(image)[0]
    assert np.array_equal(copies.mask, single.mask) and copies.uncertainty.max() < 1e-3
    other = perturbed(path, tmp_path / "other.pt", 1)
    mixed = Predictor.from_checkpoint([path, other], device="cpu").predict(image)[0]
    assert mixed.uncertainty.shape == mixed.mask.shape and 0 < mixed.uncertainty.max() <= 0.5
    files = mixed.save(tmp_path / "out")
    assert np.allclose(tifffile.imread(files[-1]), mixed.uncertainty)


def test_3d_ensembles_write_the_uncertainty_as_nifti_on_the_scan_grid(make_checkpoint, tmp_path: Path) -> None:
    path = make_checkpoint("segment3d")
    other = perturbed(path, tmp_path / "other.pt", 2)
    array = np.random.default_rng(0).random((20, 18, 17), dtype=np.float32)
    volume = Volume(array, np.diag([1.5, 2.0, 2.5, 1.0]))
    single = Predictor.from_checkpoint(path, device="cpu").predict_volume(volume, "case.nii.gz")
    copies = Predictor.from_checkpoint([path, path], device="cpu").predict_volume(volume, "case.nii.gz")
    assert np.array_equal(copies.mask, single.mask) and copies.uncertainty.max() < 1e-3
    mixed = Predictor.from_checkpoint([path, other], device="cpu").predict_volume(volume, "case.nii.gz")
    assert mixed.uncertainty.shape == volume.shape and mixed.uncertainty.max() > 1e-3
    written = nib.load(mixed.save(tmp_path / "out")[-1])
    assert written.get_filename().endswith("case_uncertainty.nii.gz")
    assert np.allclose(written.affine, volume.affine) and np.allclose(written.get_fdata(), mixed.uncertainty, atol=1e-6)


def test_members_must_share_task_and_classes(make_checkpoint, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="an ensemble needs models of one task and one set of classes"):
        Predictor.from_checkpoint([make_checkpoint("classify"), make_checkpoint("segment")], device="cpu")
    with pytest.raises(CheckpointError, match="holds no checkpoint: neither fold"):
        checkpoints(tmp_path)
