"""Anchor sizes of the FPN detectors, and how well they fit a dataset's boxes (an autoanchor check).

A box is *covered* when some anchor, centred on it, overlaps it by IoU >= ``COVER_IOU``: the anchors double in
size per FPN level, so a box whose shape lies between two anchors still overlaps the nearer one by about 0.5.
Sizes are pixels at the model's input size.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

COVER_IOU = 0.5
ANCHOR_SIZE_CHOICES = (8, 11, 16, 23, 32, 45, 64, 90, 128)  # finest-level anchor sizes, half-octave steps
# anchor scales per FPN level: RetinaNet adds 2^(1/3) and 2^(2/3)
SCALES_PER_LEVEL = {"fasterrcnn": 1, "maskrcnn": 1, "retinanet": 3}


def anchor_sizes(arch: str, n_levels: int, size: float) -> tuple[tuple[float, ...], ...]:
    """Per FPN level, the anchor sizes of ``arch``: ``size`` on the finest level, doubling per level."""
    n = SCALES_PER_LEVEL[arch]
    return tuple(tuple(size * 2 ** level * 2 ** (i / 3) for i in range(n)) for level in range(n_levels))


def anchor_shapes(sizes: tuple[tuple[float, ...], ...], ratios: Sequence[float]) -> np.ndarray:
    """(A, 2) anchor widths and heights: each size with each height / width ratio, area kept."""
    return np.array([(s / np.sqrt(r), s * np.sqrt(r)) for level in sizes for s in level for r in ratios])


def coverage(wh: np.ndarray, anchors: np.ndarray) -> float:
    """Share of boxes (``wh``: (N, 2) widths, heights) that some anchor covers (centred IoU >= COVER_IOU)."""
    if len(wh) == 0:
        return 1.0
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = wh.prod(1)[:, None] + anchors.prod(1)[None, :] - inter
    return float(((inter / union).max(1) >= COVER_IOU).mean())


def fit_anchor_size(wh: np.ndarray, arch: str, n_levels: int, ratios: Sequence[float]) -> tuple[int, float]:
    """The finest-level anchor size from ``ANCHOR_SIZE_CHOICES`` that covers most boxes, and that coverage.
    Ties go to the size nearest the boxes' 5th percentile (so small objects are not left to a coarse level)."""
    small = float(np.percentile(np.sqrt(wh.prod(1)), 5)) if len(wh) else 32.0
    scored = [(coverage(wh, anchor_shapes(anchor_sizes(arch, n_levels, s), ratios)), -abs(np.log(s / small)), s)
              for s in ANCHOR_SIZE_CHOICES]
    best = max(scored)
    return best[2], best[0]
