"""Measures of whether explanations are faithful rather than decorative (benchmarks/explain_quality.py):

- sanity check (Adebayo et al. 2018, model-parameter randomisation): ``randomised`` re-initialises every layer,
  ``rank_correlation`` compares the heatmaps of the trained and the random network (they should differ);
- pointing game: ``peak_inside`` (the map's maximum inside a box or mask; ``dilated`` grows a mask by millimetres);
- deletion (ROAD, Rong et al. 2022, as ``pytorch_grad_cam.metrics.road``): ``deletion_drops`` removes the pixels a
  map ranks highest, and as many random ones, by noisy linear imputation, and reports the loss of probability."""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from pytorch_grad_cam.metrics.road import ROADMostRelevantFirst
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from scipy import ndimage, stats
from torch import nn

from toolkit.explain.base import untouched


def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every layer's weights re-initialised (its own ``reset_parameters``, BatchNorm
    statistics included); ``model`` itself is not changed."""
    torch.manual_seed(seed)
    copied = copy.deepcopy(model)
    for module in copied.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    return copied


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps of one shape, over all pixels; 0 when either map is constant (its
    ranking says nothing)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(stats.spearmanr(a, b).statistic)


def peak_inside(heatmap: np.ndarray, region: np.ndarray | Sequence[float]) -> bool:
    """Whether the maximum of ``heatmap`` lies inside ``region``: a boolean mask of its shape, or a box (x1, y1, x2,
    y2 pixels, for a 2D map)."""
    peak = np.unravel_index(int(np.argmax(heatmap)), np.shape(heatmap))
    if np.shape(region) == np.shape(heatmap):
        return bool(np.asarray(region)[peak])
    x1, y1, x2, y2 = region
    row, col = peak
    return bool(x1 <= col + 0.5 <= x2 and y1 <= row + 0.5 <= y2)


def dilated(mask: np.ndarray, spacing: Sequence[float], mm: float) -> np.ndarray:
    """``mask`` (X, Y, Z) bool grown by ``mm`` millimetres (voxel ``spacing`` in mm): every voxel within that
    distance of it."""
    if not mask.any():
        return mask.astype(bool)
    return ndimage.distance_transform_edt(~mask.astype(bool), sampling=spacing) <= mm


def deletion_drops(model: nn.Module, x: torch.Tensor, heatmaps: np.ndarray, labels: Sequence[int],
                   fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(drop with the map, drop at random): the loss of the softmax probability of ``labels`` (B,) when the
    ``fraction`` of pixels of ``x`` (B, C, H, W) that ``heatmaps`` (B, H, W) ranks highest are removed, and when as
    many random pixels are (ROAD's noisy linear imputation fills them in either case)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    metric = ROADMostRelevantFirst(percentile=100 * (1 - fraction))
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in labels]
    noise = rng.random(heatmaps.shape).astype(np.float32)
    with untouched(model):
        guided = metric(x, heatmaps.astype(np.float32), targets, model)
        random = metric(x, noise, targets, model)
    return -np.ravel(guided), -np.ravel(random)
