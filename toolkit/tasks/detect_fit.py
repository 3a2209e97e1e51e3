"""Detection settings fitted to the user's training boxes: the input size and the anchors (an autoanchor check).

``data.img_size=0``: the median longest image side, rounded up to a multiple of 32, at most ``MAX_FIT_SIZE``.
``model.anchor_size=0``: the finest-level anchor that covers most training boxes. A given anchor size is
checked, and a warning says when it leaves many boxes uncovered. Fitted values go into the run's config.
"""
from __future__ import annotations

import math

import numpy as np

from toolkit.config import Config
from toolkit.data.formats.detection import DetectionData
from toolkit.heads.anchors import SCALES_PER_LEVEL, anchor_shapes, anchor_sizes, coverage, fit_anchor_size
from toolkit.heads.detection import fpn_levels

MAX_FIT_SIZE = 640  # pixels; larger photos are shrunk to it, as Ultralytics' default imgsz
WARN_COVERAGE = 0.95


def fit_sizes(cfg: Config, train: DetectionData) -> list[str]:
    """Resolve ``data.img_size`` / ``model.anchor_size`` of 0 from ``train`` (in place); the notes to print."""
    d, m, notes = cfg.data, cfg.model, []
    if d.img_size == 0:
        sides = [max(r.width, r.height) for r in train.records] or [MAX_FIT_SIZE]
        d.img_size = int(min(MAX_FIT_SIZE, 32 * math.ceil(float(np.median(sides)) / 32)))
        notes.append(f"data.img_size=0: images are resized to a longest side of {d.img_size} px (the training "
                     f"images' median is {np.median(sides):.0f} px; at most {MAX_FIT_SIZE})")
    if m.arch not in SCALES_PER_LEVEL:
        return notes  # FCOS and SSDlite have no anchors to fit
    wh = box_shapes(train, d.img_size)
    levels = fpn_levels(m.arch, m.fpn_min_stride)
    if m.anchor_size == 0:
        m.anchor_size, share = fit_anchor_size(wh, m.arch, levels, m.anchor_ratios)
        notes.append(f"model.anchor_size=0: anchors of {m.anchor_size} px on the finest level cover {share:.1%} of "
                     f"the {len(wh)} training boxes (IoU >= 0.5 when centred)")
        return notes
    share = coverage(wh, anchor_shapes(anchor_sizes(m.arch, levels, m.anchor_size), m.anchor_ratios))
    if share < WARN_COVERAGE:
        best, best_share = fit_anchor_size(wh, m.arch, levels, m.anchor_ratios)
        notes.append(f"warning: anchors of model.anchor_size={m.anchor_size} with ratios {list(m.anchor_ratios)} "
                     f"cover only {share:.1%} of the training boxes; model.anchor_size={best} covers {best_share:.1%} "
                     "(model.anchor_size=0 fits it; model.anchor_ratios for elongated objects)")
    return notes


def box_shapes(data: DetectionData, img_size: int) -> np.ndarray:
    """(N, 2) widths and heights of every object box, in pixels after resizing to ``img_size``."""
    shapes = [(r.boxes[:, 2:] - r.boxes[:, :2]) * (img_size / max(r.width, r.height)) for r in data.records]
    wh = np.concatenate(shapes) if shapes else np.zeros((0, 2))
    return wh[(wh > 0).all(1)]
