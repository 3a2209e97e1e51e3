"""Drawing segmentation masks: class colours, image + mask overlays, sample grids."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.patches import Patch

from toolkit.viz.base import subplots

IGNORE_COLOUR = (255, 255, 255)


def palette(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 colours; class 0 black (background), then matplotlib's tab10/tab20."""
    cmap = matplotlib.colormaps["tab10" if num_classes <= 11 else "tab20"]
    colours = [(0, 0, 0)] + [tuple(int(255 * c) for c in cmap(i % cmap.N)[:3]) for i in range(num_classes - 1)]
    return np.asarray(colours, dtype=np.uint8)


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Float (H, W, C) in [0, 1] with C = 1 or 3 (or (H, W)) -> uint8 (H, W, 3)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return (image.clip(0, 1) * 255).round().astype(np.uint8)


def colorize(mask: np.ndarray, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Class-index mask (H, W) -> uint8 (H, W, 3) colours; ignored pixels white."""
    colours = palette(num_classes)
    out = colours[np.clip(mask, 0, num_classes - 1)]
    if ignore_index is not None:
        out[mask == ignore_index] = IGNORE_COLOUR
    return out


def overlay(image: np.ndarray, mask: np.ndarray, num_classes: int, alpha: float = 0.45,
            ignore_index: int | None = None) -> np.ndarray:
    """Blend class colours over the image where the class is not 0 (background): uint8 (H, W, 3)."""
    base = to_rgb_uint8(image).astype(np.float32)
    colours = colorize(mask, num_classes, ignore_index).astype(np.float32)
    painted = (mask != 0)[:, :, None]
    blended = np.where(painted, (1 - alpha) * base + alpha * colours, base)
    return blended.round().astype(np.uint8)


def plot_samples(rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], classes: Sequence[str], out: Path,
                 ignore_index: int | None = None, titles: Sequence[str] = ()) -> Path:
    """Grid of (image, ground-truth overlay, prediction overlay), one row per sample."""
    n = max(1, len(rows))
    fig, axes = subplots(n, 3, figsize=(9, 3 * n))
    for r, (image, truth, pred) in enumerate(rows):
        panels = (to_rgb_uint8(image), overlay(image, truth, len(classes), ignore_index=ignore_index),
                  overlay(image, pred, len(classes)))
        for c, (panel, name) in enumerate(zip(panels, ("image", "ground truth", "prediction"))):
            axes[r, c].imshow(panel)
            axes[r, c].set_axis_off()
            label = f"{name}: {Path(titles[r]).name}" if c == 0 and r < len(titles) else name
            axes[r, c].set_title(label, fontsize=8)
    colours = palette(len(classes)) / 255.0
    handles = [Patch(color=colours[i], label=c) for i, c in enumerate(classes) if i]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8)
    fig.tight_layout(rect=(0, 0.04 if handles else 0, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
