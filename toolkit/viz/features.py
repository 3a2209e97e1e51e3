"""What a CNN computes inside: feature-map grids (channels ranked by mean activation), first-layer filters, and a
layer-by-layer walk of a small network (what each operation did to the image and its shape)."""
from __future__ import annotations

from pathlib import Path
from typing import IO, Sequence

import numpy as np

from toolkit.viz.base import subplots
from toolkit.viz.heatmap import save_png


def ranked_channels(maps: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` channels of ``maps`` (C, h, w) with the highest mean activation, best first."""
    return np.argsort(-maps.reshape(len(maps), -1).mean(axis=1), kind="stable")[:count]


def plot_feature_grid(maps: np.ndarray, out: Path | IO[bytes], title: str, count: int = 16) -> Path | IO[bytes]:
    """The ``count`` most active channels of ``maps`` (C, h, w), each scaled to its own range (viridis), titled
    with its index and mean; the figure title names the stage and the map's shape."""
    picked = ranked_channels(maps, count)
    cols = min(8, len(picked))
    rows = -(-len(picked) // cols)
    fig, axes = subplots(rows, cols, figsize=(1.35 * cols, 1.45 * rows + 0.5))
    for ax, c in zip(axes.flat, picked):
        ax.imshow(maps[c], cmap="viridis")
        ax.set_title(f"ch {c}  mean {maps[c].mean():.2g}", fontsize=6)
    for ax in axes.flat:
        ax.axis("off")
    return save_png(fig, out, f"{title}: {maps.shape[0]} channels x {maps.shape[1]} x {maps.shape[2]}; top "
                             f"{len(picked)} by mean activation", 8)


def plot_filters(weights: np.ndarray, out: Path | IO[bytes], title: str, count: int = 64) -> Path | IO[bytes]:
    """First convolution's kernels ``weights`` (O, I, k, k): RGB where I = 3 (each kernel scaled to [0, 1]), else
    the mean over input channels in a diverging map (red +, blue -)."""
    n = min(count, len(weights))
    cols = min(8, n)
    rows = -(-n // cols)
    fig, axes = subplots(rows, cols, figsize=(0.9 * cols, 0.95 * rows + 0.5))
    for ax, kernel in zip(axes.flat, weights[:n]):
        if kernel.shape[0] == 3:
            lo, hi = kernel.min(), kernel.max()
            ax.imshow(((kernel - lo) / max(hi - lo, 1e-12)).transpose(1, 2, 0))
        else:
            mean = kernel.mean(axis=0)
            limit = max(float(np.abs(mean).max()), 1e-12)
            ax.imshow(mean, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for ax in axes.flat:
        ax.axis("off")
    o, i, kh, kw = weights.shape
    return save_png(fig, out, f"{title}: {o} filters of {i} x {kh} x {kw}" + (f" (first {n})" if n < o else ""), 8)


def plot_walk(steps: Sequence[tuple[str, np.ndarray]], out: Path | IO[bytes], labels: Sequence[str] = (),
              per_step: int = 6, title: str = "") -> Path | IO[bytes]:
    """One row per (operation, output): for a map (C, h, w) its ``per_step`` most active channels, for a vector (K,)
    a bar per value (named by ``labels`` when there are K of them); with the output's shape, so the rows show what
    convolution, activation, pooling and the dense layer did to the image."""
    fig, axes = subplots(len(steps), per_step + 1, figsize=(1.3 * (per_step + 1) + 1.2, 1.35 * len(steps) + 0.4))
    for r, (row, (name, maps)) in enumerate(zip(axes, steps)):
        row[0].text(0.0, 0.5, f"{name}\n{' x '.join(map(str, maps.shape))}", fontsize=7, va="center",
                    transform=row[0].transAxes)
        for ax in row:
            ax.axis("off")
        if maps.ndim == 1:
            for ax in row[1:]:
                ax.remove()
            bars = fig.add_subplot(row[0].get_gridspec()[r, 1:])
            bars.bar(range(len(maps)), maps, color="#4c72b0")
            if len(labels) == len(maps):
                bars.set_xticks(range(len(maps)), list(labels), fontsize=6, rotation=30)
            bars.tick_params(axis="y", labelsize=6)
            continue
        for ax, c in zip(row[1:], ranked_channels(maps, per_step)):
            ax.imshow(maps[c], cmap="gray" if name == "input" else "viridis")
    return save_png(fig, out, title)
