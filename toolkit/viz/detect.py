"""Detection drawings: boxes over images, sample-prediction grids, precision-recall curves."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from toolkit.viz.base import save_figure, subplots

GT_COLOR = "#00e000"


def class_color(label: int) -> Any:
    """RGBA colour of class ``label`` (matplotlib's tab10, cycling)."""
    return matplotlib.colormaps["tab10"](int(label) % 10)


def draw_boxes(ax: Any, boxes: np.ndarray, labels: Sequence[int], classes: Sequence[str],
               scores: Sequence[float] | None = None, color: Any = None, text: bool = True) -> None:
    """Draw (N, 4) xyxy pixel boxes on ``ax``; colour by class unless ``color`` is given."""
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=float).reshape(-1, 4)):
        c = color or class_color(labels[i])
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=c, linewidth=1.2))
        if text:
            name = classes[int(labels[i])] if int(labels[i]) < len(classes) else str(int(labels[i]))
            caption = name if scores is None else f"{name} {float(scores[i]):.2f}"
            ax.text(x1, y1, caption, fontsize=6, color="white", va="bottom",
                    bbox={"facecolor": c, "alpha": 0.7, "pad": 1, "edgecolor": "none"})


def show_image(ax: Any, image: np.ndarray) -> None:
    """``image``: (H, W, C) or (H, W) float in [0, 1]."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    ax.imshow(np.clip(image, 0, 1), cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    ax.axis("off")


def save_annotated(image: np.ndarray, pred: dict[str, np.ndarray], classes: Sequence[str], out: Path) -> Path:
    """One image with its predicted boxes (``pred``: boxes, labels, scores) at native resolution."""
    h, w = image.shape[:2]
    dpi = 100
    fig = Figure(figsize=(max(w, 64) / dpi, max(h, 64) / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    show_image(ax, image)
    draw_boxes(ax, pred["boxes"], pred["labels"], classes, pred["scores"], text=len(pred["boxes"]) <= 50)
    fig.savefig(out, dpi=dpi)
    return out


def plot_samples(samples: list[dict[str, Any]], classes: Sequence[str], out: Path, conf: float = 0.25) -> Path:
    """Grid of images: ground truth in green, predictions with score >= ``conf`` in class colours.
    Each sample: ``image`` (H, W, C), ``gt`` and ``pred`` dicts of numpy boxes/labels(/scores)."""
    cols = min(4, len(samples))
    rows = -(-len(samples) // cols)
    fig, axes = subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows))
    for ax, s in zip(axes.flat, samples):
        show_image(ax, s["image"])
        draw_boxes(ax, s["gt"]["boxes"], s["gt"]["labels"], classes, color=GT_COLOR, text=False)
        keep = s["pred"]["scores"] >= conf
        draw_boxes(ax, s["pred"]["boxes"][keep], s["pred"]["labels"][keep], classes, s["pred"]["scores"][keep],
                   text=len(classes) > 1)
        ax.set_title(f"gt {len(s['gt']['boxes'])}  pred {int(keep.sum())} (score>={conf})", fontsize=8)
    return save_figure(fig, out, unused=list(axes.flat)[len(samples):])


def plot_pr_curve(precision: np.ndarray, classes: Sequence[str], out: Path) -> Path:
    """COCO precision array (T IoUs, R=101 recalls, K classes, A areas, M max-dets), -1 = undefined:
    one curve per class at IoU 0.5 (area all, last max-det), and the class mean at IoU 0.5 and 0.75."""
    recall = np.linspace(0, 1, precision.shape[1])
    p = precision[:, :, :, 0, -1]  # (T, R, K)
    fig, ((ax,),) = subplots(figsize=(5, 4))
    for k, name in enumerate(classes):
        if k < p.shape[2] and (p[0, :, k] >= 0).any():
            ax.plot(recall, np.clip(p[0, :, k], 0, None), linewidth=1, label=f"{name} @.5")
    for t, iou in ((0, 0.5), (5, 0.75)):
        valid = np.where(p[t] >= 0, p[t], np.nan)
        if np.isfinite(valid).any():
            ax.plot(recall, np.nanmean(valid, axis=1), linewidth=2.2, linestyle="--" if t else "-",
                    color="black", label=f"all classes @{iou}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="precision-recall")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return save_figure(fig, out)
