"""The one hold-out splitter: every task's validation split (and the classification ``data.limit`` subset)
comes from ``holdout``, seeded, and stratified when labels are given; with ``train.folds``, the k-fold
cross-validation splits come from ``fold_indices``."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from toolkit.config import TrainConfig
from toolkit.errors import ConfigError, DataError

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


# -- k-fold cross-validation ------------------------------------------------------------------------------------
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Folds:
    """Fold ``fold`` of ``k`` (``train.folds``, ``train.fold``), seeded; ``test_fraction`` (``data.val_split``) of
    the training items is held out as the test split when the data has neither a test nor a val split."""

    k: int
    fold: int
    seed: int
    test_fraction: float


def folds_of(train: TrainConfig, test_fraction: float) -> Folds | None:
    """The ``Folds`` of a run's ``train.folds`` / ``train.fold`` / ``train.seed``; None for a plain run (folds 0).
    ``train.fold`` = -1 (every fold) reads as fold 0: the test split is the same for all folds."""
    k, fold = train.folds, train.fold
    if k == 0:
        return None
    if k < 2:
        raise ConfigError(f"train.folds={k} must be 0 (one run, no cross-validation) or at least 2")
    if not -1 <= fold < k:
        raise ConfigError(f"train.fold={fold} is out of range for train.folds={k}: give 0..{k - 1}, or -1 for "
                          "every fold")
    return Folds(k, max(fold, 0), train.seed, test_fraction)


def fold_indices(sizes: dict[str, int], folds: Folds, labels: Sequence[int] | None = None,
                 groups: Sequence[Any] | None = None) -> dict[str, np.ndarray]:
    """{"train", "val", "test"}: sorted indices into the given splits laid end to end in train, val, test order
    (``sizes``: items per split; ``labels``, ``groups``: one per item in that order, or None).

    The test split is held out of every fold: the data's test split; else its val split; else
    ``test_fraction`` of train (stratified by label; whole groups). The rest is cut into ``k`` folds with
    scikit-learn, shuffled by the seed: stratified by label (``StratifiedKFold``), never splitting a group
    (``GroupKFold``), both (``StratifiedGroupKFold``) or neither (``KFold``). Fold ``i`` validates on its part
    and trains on the others."""
    starts = np.cumsum([0] + [sizes.get(s, 0) for s in SPLITS])
    part = {s: np.arange(starts[i], starts[i + 1]) for i, s in enumerate(SPLITS)}
    y = None if labels is None else np.asarray(labels)
    g = None if groups is None else np.asarray(groups, dtype=object).astype(str)
    pool, test = _hold_out_test(part, folds, y, g)
    units = len(np.unique(g[pool])) if g is not None else len(pool)
    if units < folds.k:
        what = "groups" if g is not None else "items"
        raise DataError(f"train.folds={folds.k} needs at least {folds.k} training {what}; there are {units} after "
                        f"the test split is held out: lower train.folds or add data")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The least populated class")  # a rare class cannot be in every fold
        parts = list(_splitter(folds, y is not None, g is not None).split(
            pool, None if y is None else y[pool], None if g is None else g[pool]))
    train, val = parts[folds.fold]
    return {"train": np.sort(pool[train]), "val": np.sort(pool[val]), "test": np.sort(test)}


def _hold_out_test(part: dict[str, np.ndarray], folds: Folds, y: np.ndarray | None, g: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(the pool the folds are cut from, the test split): see ``fold_indices``."""
    from sklearn.model_selection import GroupShuffleSplit

    if len(part["test"]):
        return np.concatenate([part["train"], part["val"]]), part["test"]
    if len(part["val"]):
        return part["train"], part["val"]
    if g is not None:
        kept, held = next(GroupShuffleSplit(1, test_size=folds.test_fraction, random_state=folds.seed)
                          .split(part["train"], groups=g[part["train"]]))
    else:
        kept, held = val_holdout(y[part["train"]] if y is not None else len(part["train"]), folds.test_fraction,
                                 folds.seed)
    return part["train"][kept], part["train"][held]


def _splitter(folds: Folds, stratified: bool, grouped: bool) -> Any:
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    kind = {(True, True): StratifiedGroupKFold, (False, True): GroupKFold, (True, False): StratifiedKFold,
            (False, False): KFold}[stratified, grouped]
    return kind(folds.k, shuffle=True, random_state=folds.seed)


def apply_folds(splits: dict[str, Sequence[T]], folds: Folds, labels: Callable[[T], int] | None = None,
                groups: Callable[[T], Any] | None = None) -> dict[str, list[T]]:
    """``splits`` ({split: items}) regrouped into the fold's {"train", "val", "test"} by ``fold_indices``;
    ``labels`` / ``groups``: an item's class / group, when the data names them."""
    pool = [item for s in SPLITS for item in splits.get(s, [])]
    found = fold_indices({s: len(splits.get(s, [])) for s in SPLITS}, folds,
                         [labels(x) for x in pool] if labels else None, [groups(x) for x in pool] if groups else None)
    return {s: take(pool, idx) for s, idx in found.items()}
