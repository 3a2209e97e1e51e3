"""3D segmentation figures and tables: per-case metric CSV, slice overlay of truth and prediction."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.lines import Line2D

from toolkit.viz.base import subplots

REGION_COLOURS = ("#ffd700", "#00c0ff", "#ff3030")  # TC, WT, ET


def write_case_csv(cases: Sequence[str], values: dict[str, np.ndarray], regions: Sequence[str], path: Path) -> Path:
    """One row per case: ``case, dice_<region>..., hd95_<region>...`` from {"dice": (N, R), "hd95": (N, R)}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["case", *(f"{name}_{r.lower()}" for name in values for r in regions)])
        for i, case in enumerate(cases):
            writer.writerow([case, *(f"{float(values[name][i, j]):.4f}" for name in values
                                     for j in range(len(regions)))])
    return path


def plot_overlay(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, regions: Sequence[str], path: Path,
                 title: str = "") -> Path:
    """Axial slice with the most whole tumour: ``image`` (X, Y, Z) grey, truth and prediction (R, X, Y, Z)
    region contours side by side (radiological view: patient left on the right)."""
    area = truth[1].sum(axis=(0, 1)) if truth.shape[0] > 1 else truth[0].sum(axis=(0, 1))
    z = int(np.argmax(area)) if area.max() > 0 else image.shape[2] // 2
    fig, axes = subplots(1, 2, figsize=(8, 4.4))
    for ax, masks, name in zip(axes.flat, (truth, pred), ("truth", "prediction")):
        ax.imshow(np.rot90(image[:, :, z]), cmap="gray")
        for r, colour in zip(range(len(regions)), REGION_COLOURS):
            if masks[r][:, :, z].any():
                ax.contour(np.rot90(masks[r][:, :, z]), levels=[0.5], colors=[colour], linewidths=1.2)
        ax.set_title(f"{name} (slice {z})")
        ax.axis("off")
    handles = [Line2D([], [], color=c, label=r) for r, c in zip(regions, REGION_COLOURS)]
    fig.legend(handles=handles, loc="lower center", ncol=len(regions), frameon=False)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
