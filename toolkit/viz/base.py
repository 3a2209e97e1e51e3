"""Figures without pyplot (so importing the toolkit never touches matplotlib's global backend): a bare
``matplotlib.figure.Figure`` per plot, written with ``savefig``; training curves of ``results.csv``."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


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
    fig, axes = subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows))
    for ax, name in zip(axes.flat, columns):
        values = [float(r[name]) if r.get(name) not in (None, "") else np.nan for r in rows]
        ax.plot(epochs, values, marker="o", markersize=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if name == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    return save_figure(fig, out, unused=list(axes.flat)[len(columns):])


def subplots(rows: int = 1, cols: int = 1, figsize: tuple[float, float] = (5, 4)) -> tuple[Figure, np.ndarray]:
    """A new figure (not registered with pyplot) and its (rows, cols) array of axes."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=False)


def save_figure(fig: Figure, out: Path, unused: Sequence[Axes] = (), dpi: int = 110) -> Path:
    """Blank the ``unused`` axes of a grid, lay out and write ``out`` (PNG; the folder is made)."""
    for ax in unused:
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out
