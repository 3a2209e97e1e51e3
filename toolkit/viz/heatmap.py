"""Heatmaps over images: a blended RGB overlay (for apps) and a figure with the input, the overlay and a colour bar;
for volumes, the three planes through the heatmap's peak over the scan."""
from __future__ import annotations

from pathlib import Path
from typing import IO, Sequence

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from toolkit.viz.base import subplots
from toolkit.viz.segment import to_rgb_uint8

CMAP = "jet"


def blend(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """``image`` (H, W[, C]) float in [0, 1] with ``heatmap`` (H, W) in [0, 1] coloured by ``CMAP`` on top, opaque
    up to ``alpha`` where the map is high and clear where it is 0 -> uint8 RGB (H, W, 3)."""
    grey = to_rgb_uint8(image).astype(np.float32)
    heat = np.clip(heatmap, 0, 1)
    colour = matplotlib.colormaps[CMAP](heat)[..., :3] * 255
    weight = alpha * np.sqrt(heat)[..., None]
    return ((1 - weight) * grey + weight * colour).round().astype(np.uint8)


def plot_heatmap(image: np.ndarray, heatmap: np.ndarray, out: Path | IO[bytes], title: str = "",
                 box: Sequence[float] | None = None) -> Path | IO[bytes]:
    """The input and the heatmap (H, W) in [0, 1] blended over it side by side, with a colour bar; ``box`` (x1, y1,
    x2, y2 pixels) is outlined on both. Written as PNG to ``out`` (a path or a binary buffer)."""
    h, w = heatmap.shape
    side = 3.6
    fig, axes = subplots(1, 2, figsize=(2 * side + 0.9, side * h / w + 0.6))
    (left, right) = axes[0]
    left.imshow(to_rgb_uint8(image))
    left.set_title("input", fontsize=9)
    right.imshow(blend(image, heatmap))
    right.set_title(title, fontsize=9)
    for ax in (left, right):
        ax.axis("off")
        if box is not None:
            x1, y1, x2, y2 = box
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="white", linewidth=1.2))
    colourbar(fig, right)
    return save_png(fig, out)


def colourbar(fig: matplotlib.figure.Figure, ax: matplotlib.axes.Axes) -> None:
    """A 0..1 colour bar of ``CMAP`` beside ``ax``: relative relevance."""
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), CMAP), ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("relevance (0 = none, 1 = the map's maximum)", fontsize=7)
    bar.ax.tick_params(labelsize=7)


def plot_planes(planes: Sequence[tuple[str, np.ndarray, np.ndarray]], out: Path | IO[bytes],
                title: str = "") -> Path | IO[bytes]:
    """One panel per (name, grey RGB uint8 (H, W, 3) at the voxels' physical aspect, heatmap (H, W) in [0, 1]): the
    heatmap blended over the grey slice, with a colour bar."""
    fig, axes = subplots(1, len(planes), figsize=(3.3 * len(planes) + 0.8, 3.8))
    for ax, (name, grey, heat) in zip(axes[0], planes):
        ax.imshow(blend(grey / 255.0, heat))
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    colourbar(fig, axes[0][-1])
    return save_png(fig, out, title, 10)


def save_png(fig: matplotlib.figure.Figure, out: Path | IO[bytes], title: str = "", size: int = 9
             ) -> Path | IO[bytes]:
    """Write ``fig`` as PNG to ``out`` (a path, its folder made, or a binary buffer), cropped to its content;
    ``title`` goes 0.15 inch above the axes, whatever the figure's height."""
    if title:
        height = fig.get_figheight()
        fig.suptitle(title, fontsize=size, y=1 - 0.12 / height, va="top")
        fig.subplots_adjust(top=1 - 0.45 / height)
    if isinstance(out, Path):
        out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight", format="png")
    return out
