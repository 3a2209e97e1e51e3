"""The one hold-out splitter: every task's validation split (and the classification ``data.limit`` subset)
comes from ``holdout``, seeded, and stratified when labels are given."""
from __future__ import annotations

from typing import Sequence, TypeVar

import numpy as np

from toolkit.errors import DataError

T = TypeVar("T")


def holdout(labels: Sequence[int] | int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices (train, held_out): ``fraction`` of each class held out, at least one of a class with
    2+ members. ``labels``: one class per item, or the number of items (one class: a seeded random split)."""
    labels = np.zeros(labels, np.int64) if isinstance(labels, (int, np.integer)) else np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        n = int(round(len(idx) * fraction))
        if fraction > 0 and n == 0 and len(idx) > 1:
            n = 1
        held.append(rng.permutation(idx)[:n])
    held_out = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels)), held_out)
    return train, held_out


def val_holdout(labels: Sequence[int] | int, fraction: float, seed: int,
                optional: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``holdout`` for a dataset without a val split, ``fraction`` = ``data.val_split``. A DataError names
    ``data.val_split`` when it is outside (0, 1) (``optional``: 0 means no val split) or leaves either side
    empty."""
    count = labels if isinstance(labels, (int, np.integer)) else len(labels)
    if optional and fraction == 0:
        return np.arange(count), np.array([], dtype=np.int64)
    if not 0 < fraction < 1:
        raise DataError(f"the dataset has no val split and data.val_split={fraction}; set data.val_split to a "
                        "fraction in (0, 1) such as 0.1, or add a val split")
    train, val = holdout(labels, fraction, seed)
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"data.val_split={fraction} of {count} items leaves {len(train)} to train and {len(val)} "
                        "to validate; add items or a val split, or change data.val_split")
    return train, val


def take(items: Sequence[T] | np.ndarray, indices: np.ndarray) -> list[T] | np.ndarray:
    """``items[indices]``: an array stays an array, any other sequence becomes a list."""
    return items[indices] if isinstance(items, np.ndarray) else [items[int(i)] for i in indices]
