"""3D segmentation metrics: a region the model misses entirely counts against HD95 (the volume's diagonal) and is
reported, as Dice counts it 0; the task's metrics and per-case CSV say so."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from torch import nn

from toolkit.config import Config, TrainConfig
from toolkit.tasks.segment3d import Segment3DData, Segment3DModel, Segment3DTask

SHAPE, SPACING = (10, 10, 10), (1.0, 2.0, 3.0)  # voxels, mm


class FixedLogits(nn.Module):
    """Returns the given logits (1, R, X, Y, Z) whatever comes in: one sliding window covers the volume."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1, -1, -1, -1)


def _case(truth: torch.Tensor, pred: torch.Tensor, name: str) -> tuple[nn.Module, dict]:
    """(model predicting ``pred``, batch of one case with ``truth``); both (R, X, Y, Z) in {0, 1}."""
    affine = torch.diag(torch.tensor([*SPACING, 1.0], dtype=torch.float64))
    image = MetaTensor(torch.zeros(1, *SHAPE), affine=affine, meta={"filename_or_obj": f"{name}.nii.gz"})
    label = MetaTensor(truth.float(), affine=affine)
    return FixedLogits((pred.float() * 2 - 1)[None] * 10), {"image": [image], "label": [label]}


def test_a_missed_region_scores_the_diagonal_and_is_counted(tmp_path):
    cfg = Config("segment3d", Segment3DData(roi=list(SHAPE), channels=1), Segment3DModel(sw_batch_size=1),
                 TrainConfig())
    task = Segment3DTask(cfg)
    task.reset()
    truth = torch.zeros(3, *SHAPE)
    truth[0, 2:5, 2:5, 2:5] = truth[1, 2:6, 2:6, 2:6] = 1  # TC and WT present, ET absent
    missed = truth.clone()
    missed[0] = 0  # TC missed entirely, WT exact
    missed[2, 7:9, 7:9, 7:9] = 1  # a false ET: no truth, so neither Dice nor HD95 counts it
    for pred, name in ((missed, "case_a"), (truth, "case_b")):
        task.eval_step(*_case(truth, pred, name))
    metrics = task.compute()
    diagonal = float(np.linalg.norm(np.multiply(SHAPE, SPACING)))
    assert metrics["dice_tc"] == pytest.approx(0.5) and metrics["dice_wt"] == pytest.approx(1.0)
    assert metrics["hd95_tc"] == pytest.approx(diagonal / 2)  # (diagonal + 0) / 2 cases, not 0 from case_b alone
    assert metrics["hd95_wt"] == pytest.approx(0.0) and np.isnan(metrics["hd95_et"])
    assert metrics["hd95"] == pytest.approx(diagonal / 4)
    assert (metrics["missed_tc"], metrics["missed_wt"], metrics["missed_et"], metrics["missed"]) == (1, 0, 0, 1)
    assert "missed regions 1" in task.report(metrics)
    (path,) = [p for p in task.plots(tmp_path, "val") if p.suffix == ".csv"]
    rows = {row["case"]: row for row in csv.DictReader(path.open())}
    assert float(rows["case_a.nii.gz"]["hd95_tc"]) == pytest.approx(diagonal, abs=1e-3)
    assert float(rows["case_a.nii.gz"]["missed_tc"]) == 1 and float(rows["case_b.nii.gz"]["missed_tc"]) == 0
    assert float(rows["case_a.nii.gz"]["dice_tc"]) == 0
