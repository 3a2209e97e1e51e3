"""Plots a person would rather look at than read: training curves, confusion matrices."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_results(csv_path: Path, out: Path) -> Path:
    """One panel per metric column of ``results.csv`` against epoch (losses and lr included)."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return out
    columns = [c for c in rows[0] if c not in ("epoch", "time")]
    epochs = [int(r["epoch"]) for r in rows]
    cols = min(4, len(columns))
    nrows = -(-len(columns) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, columns):
        values = [float(r[name]) if r.get(name) not in (None, "") else np.nan for r in rows]
        ax.plot(epochs, values, marker="o", markersize=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if name == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    return save_figure(fig, out, unused=list(axes.flat)[len(columns):])


def save_figure(fig: "plt.Figure", out: Path, unused: Sequence["plt.Axes"] = (), dpi: int = 110) -> Path:
    """Blank the ``unused`` axes of a grid, lay out, write ``out`` (PNG) and free the figure."""
    for ax in unused:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def plot_confusion_matrix(matrix: np.ndarray, classes: Sequence[str], out: Path, normalize: bool = True) -> Path:
    """Rows: true class, columns: predicted; ``normalize`` shows each row as fractions of its total."""
    matrix = np.asarray(matrix, dtype=float)
    shown = matrix / np.maximum(matrix.sum(1, keepdims=True), 1) if normalize else matrix
    n = len(classes)
    size = max(4.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                text = f"{shown[i, j]:.2f}" if normalize else f"{int(matrix[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > 0.5 * shown.max() else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title("confusion matrix" + (" (row-normalised)" if normalize else ""))
    return save_figure(fig, out)
