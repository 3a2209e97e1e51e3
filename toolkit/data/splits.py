"""Seeded, stratified hold-out splits for datasets that ship no validation set."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def holdout(labels: Sequence[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out): ``fraction`` of each class held out (at least one if it has 2+)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        n = int(round(len(idx) * fraction))
        if fraction > 0 and n == 0 and len(idx) > 1:
            n = 1
        held.append(rng.permutation(idx)[:n])
    held_out = np.sort(np.concatenate(held)) if held else np.array([], dtype=int)
    train = np.setdiff1d(np.arange(len(labels)), held_out)
    return train, held_out
