"""Classification figures: the confusion matrix."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from toolkit.viz.base import save_figure, subplots


def plot_confusion_matrix(matrix: np.ndarray, classes: Sequence[str], out: Path, normalize: bool = True) -> Path:
    """Rows: true class, columns: predicted; ``normalize`` shows each row as fractions of its total."""
    matrix = np.asarray(matrix, dtype=float)
    shown = matrix / np.maximum(matrix.sum(1, keepdims=True), 1) if normalize else matrix
    n = len(classes)
    size = max(4.0, 0.55 * n + 2)
    fig, ((ax,),) = subplots(figsize=(size, size * 0.9))
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
