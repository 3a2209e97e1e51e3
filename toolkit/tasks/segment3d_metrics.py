"""Dice and HD95 of 3D segmentation per case and region (MONAI's metrics), with missed regions counted.

MONAI's HausdorffDistanceMetric returns NaN for a region the prediction misses entirely (empty prediction,
non-empty truth); a mean over the finite values alone would make a miss improve HD95, while Dice counts it 0.
Here a miss scores the volume's diagonal in mm (the largest distance inside the volume) and is counted."""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric


def diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Length (mm) of the diagonal of a volume of ``shape`` voxels (X, Y, Z) of ``spacing`` mm."""
    return float(np.linalg.norm(np.asarray(shape, dtype=float) * np.asarray(spacing, dtype=float)))


class RegionMetrics:
    """Dice and 95th-percentile Hausdorff distance (mm) per case and region, accumulated case by case."""

    def __init__(self, regions: Sequence[str]) -> None:
        self.regions = tuple(regions)
        self.dice = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
        self.hd95 = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
        self.missed: list[np.ndarray] = []  # (R,) bool per case: truth present, prediction empty
        self.diagonals: list[float] = []  # mm per case

    def update(self, pred: torch.Tensor, target: torch.Tensor, spacing: Sequence[float]) -> None:
        """One case: ``pred`` and ``target`` (1, R, X, Y, Z) binary masks; ``spacing`` voxel size (mm) along X, Y, Z."""
        self.dice(y_pred=pred, y=target)
        with warnings.catch_warnings():  # empty regions (NaN, handled in per_case) and MONAI deprecations
            warnings.simplefilter("ignore")
            self.hd95(y_pred=pred, y=target, spacing=[float(s) for s in spacing])
        found, present = pred[0].flatten(1).any(1), target[0].flatten(1).any(1)
        self.missed.append((present & ~found).cpu().numpy())
        self.diagonals.append(diagonal_mm(target.shape[2:], spacing))

    def per_case(self) -> dict[str, np.ndarray]:
        """{"dice", "hd95" (mm), "missed" (1.0 or 0.0)}, each (N, R). NaN where the truth lacks the region; a
        missed region has Dice 0 and HD95 the volume's diagonal."""
        if not self.missed:
            empty = np.zeros((0, len(self.regions)))
            return {"dice": empty, "hd95": empty, "missed": empty}
        missed = np.stack(self.missed)
        hd95 = self.hd95.get_buffer().cpu().numpy().copy()
        hd95[missed] = np.broadcast_to(np.asarray(self.diagonals)[:, None], hd95.shape)[missed]
        return {"dice": self.dice.get_buffer().cpu().numpy(), "hd95": hd95, "missed": missed.astype(np.float64)}

    def compute(self) -> dict[str, float]:
        """``dice_<region>`` and ``hd95_<region>`` (means over the cases holding the region), ``dice_mean`` and
        ``hd95`` (means over regions), ``missed_<region>`` and ``missed`` (number of missed regions)."""
        values, out = self.per_case(), {}
        for name in ("dice", "hd95"):
            for j, region in enumerate(self.regions):
                finite = values[name][:, j][np.isfinite(values[name][:, j])]
                out[f"{name}_{region.lower()}"] = float(finite.mean()) if finite.size else float("nan")
            means = [out[f"{name}_{r.lower()}"] for r in self.regions]
            out["dice_mean" if name == "dice" else name] = float(np.nanmean(means)) if np.isfinite(means).any() \
                else float("nan")
        for j, region in enumerate(self.regions):
            out[f"missed_{region.lower()}"] = float(values["missed"][:, j].sum())
        out["missed"] = float(values["missed"].sum())
        return out
