"""Drawing instance masks: label images painted from per-object masks, each object in its own colour with its
outline, the object-area histogram, and grids of (image, ground truth, prediction) samples."""
from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Sequence

import numpy as np
from matplotlib.colors import hsv_to_rgb
from matplotlib.ticker import MaxNLocator
from skimage.segmentation import find_boundaries

from toolkit.viz.base import save_figure, subplots
from toolkit.viz.heatmap import save_png
from toolkit.viz.segment import to_rgb_uint8

GOLDEN = 0.618033988749895  # hue step: neighbouring ids get far-apart hues


def instance_colours(n: int) -> np.ndarray:
    """(n + 1, 3) uint8 colours: 0 black (background), then object ids 1..n in bright, well-separated hues."""
    ids = np.arange(n)
    hsv = np.stack([(ids * GOLDEN) % 1.0, 0.65 + 0.35 * (ids % 2), np.ones(n)], axis=1)
    return np.concatenate([np.zeros((1, 3), np.uint8), (hsv_to_rgb(hsv) * 255).round().astype(np.uint8)])


def instance_overlay(image: np.ndarray, label_image: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """``image`` (H, W[, C]) float in [0, 1] with each object of ``label_image`` (H, W) int (0 background) blended
    in its own colour and outlined in it: uint8 (H, W, 3)."""
    base = to_rgb_uint8(image).astype(np.float32)
    colours = instance_colours(int(label_image.max()))[label_image].astype(np.float32)
    inside = (label_image > 0)[:, :, None]
    out = np.where(inside, (1 - alpha) * base + alpha * colours, base)
    edge = find_boundaries(label_image, mode="inner")[:, :, None]
    return np.where(edge, colours, out).round().astype(np.uint8)


def plot_area_histogram(areas: Sequence[float], out: Path | IO[bytes], unit: str = "px") -> Path | IO[bytes]:
    """Histogram of object areas (in ``unit``², e.g. px or µm) with the count, median and mean; PNG to ``out`` (a
    path or a binary buffer)."""
    areas = np.asarray(areas, dtype=float)
    fig, ((ax,),) = subplots(figsize=(5, 3.2))
    if len(areas):
        ax.hist(areas, bins=min(30, max(5, len(areas) // 4)), color="#4c72b0", edgecolor="white")
        ax.axvline(np.median(areas), color="black", linestyle="--", linewidth=1, label=f"median {np.median(areas):.4g}")
        ax.legend(fontsize=8)
    ax.set(xlabel=f"area ({unit}²)", ylabel="objects",
           title=f"{len(areas)} objects" + (f", mean area {areas.mean():.4g} {unit}²" if len(areas) else ""))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return save_png(fig, out)


def label_image(masks: np.ndarray | Sequence[np.ndarray], scores: np.ndarray | None = None,
                boxes: np.ndarray | None = None, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) uint16 label image of N bool masks and the indices of the objects it holds: ids 1.. by descending
    ``scores`` (None: in the given order), where masks overlap the higher score keeps the pixel, and an object left
    without pixels gets no id. At most 65535 objects (what 16 bits hold).

    ``masks``: (N, H, W), of which only the ``boxes`` (N, 4) xyxy pixels (x2/y2 exclusive) are read when given; or,
    with ``boxes`` and ``shape`` (H, W), a list of N masks each over its own box."""
    cropped = shape is not None
    h, w = shape if cropped else masks.shape[1:]
    order = np.arange(len(masks)) if scores is None else np.argsort(-np.asarray(scores, np.float64), kind="stable")
    labels = np.zeros((h, w), np.uint16)
    kept: list[int] = []
    for i in order[:np.iinfo(np.uint16).max]:
        x1, y1, x2, y2 = (0, 0, w, h) if boxes is None else np.asarray(boxes[i]).round().astype(int).tolist()
        region = labels[y1:y2, x1:x2]
        free = (masks[i] if cropped else masks[i, y1:y2, x1:x2]).astype(bool) & (region == 0)
        if free.any():
            region[free] = len(kept) + 1
            kept.append(int(i))
    return labels, np.asarray(kept, np.int64)


def plot_instance_samples(samples: Sequence[dict[str, Any]], classes: Sequence[str], out: Path, conf: float = 0.5,
                          mask_thresh: float = 0.5) -> Path:
    """Grid of (image, ground-truth overlay, prediction overlay), one row per sample; each sample: ``image`` (H, W,
    C) float, ``gt`` {``masks`` (M, H, W) 0/1, optional ``iscrowd`` (M,): ignore regions are not drawn} and
    ``pred`` {``masks`` (N, 1, H, W) probabilities, ``scores`` (N,)} (arrays or tensors); predictions with score >=
    ``conf`` and pixels >= ``mask_thresh`` are drawn. Titles give the object counts (``classes`` are not drawn:
    each object has its own colour)."""
    n = max(1, len(samples))
    fig, axes = subplots(n, 3, figsize=(9, 3 * n))
    for r, s in enumerate(samples):
        image = _numpy(s["image"])
        truth = _numpy(s["gt"]["masks"]).astype(bool)
        crowd = _numpy(s["gt"].get("iscrowd", np.zeros(len(truth)))).astype(bool)
        scores = _numpy(s["pred"]["scores"])
        keep = scores >= conf
        pred = _numpy(s["pred"]["masks"])[keep].reshape(int(keep.sum()), *image.shape[:2]) >= mask_thresh
        panels = ((to_rgb_uint8(image), "image"),
                  (instance_overlay(image, label_image(truth[~crowd])[0]), f"ground truth: {int((~crowd).sum())}"),
                  (instance_overlay(image, label_image(pred, scores[keep])[0]), f"prediction: {int(keep.sum())} "
                                                                                f"(score >= {conf:g})"))
        for c, (panel, name) in enumerate(panels):
            axes[r, c].imshow(panel)
            axes[r, c].set_axis_off()
            axes[r, c].set_title(name, fontsize=8)
    return save_figure(fig, out, unused=list(axes.flat)[3 * len(samples):])


def _numpy(x: Any) -> np.ndarray:
    """A tensor (any device) or array as a numpy array."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
