"""The one hold-out splitter (toolkit/data/splits.py) and the tasks that use it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toolkit.data.formats.detection import DetectionData, ImageRecord
from toolkit.data.formats.masks import holdout_pairs
from toolkit.data.splits import holdout, take, val_holdout
from toolkit.errors import DataError


def test_holdout_is_stratified_seeded_and_disjoint() -> None:
    labels = np.repeat([0, 1, 2], [50, 30, 2])
    train, held = holdout(labels, 0.2, seed=3)
    assert np.bincount(labels[held]).tolist() == [10, 6, 1]  # a share of every class, one of a class of two
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(len(labels)))
    again, other = holdout(labels, 0.2, seed=3), holdout(labels, 0.2, seed=4)
    assert np.array_equal(again[1], held) and not np.array_equal(other[1], held)


@pytest.mark.parametrize("n, fraction, seed", [(10, 0.2, 0), (39, 0.1, 0), (112, 0.2, 7), (5, 0.5, 1)])
def test_without_labels_the_split_is_the_seeded_permutations_head(n: int, fraction: float, seed: int) -> None:
    """The rule every task's val split followed before there was one splitter: the first max(1, round(n * f))
    of ``default_rng(seed).permutation(n)``; the same seed keeps the same validation images."""
    expected = np.sort(np.random.default_rng(seed).permutation(n)[:max(1, round(n * fraction))])
    train, val = val_holdout(n, fraction, seed)
    assert np.array_equal(val, expected) and np.array_equal(train, np.setdiff1d(np.arange(n), expected))
    assert np.array_equal(holdout(np.zeros(n, int), fraction, seed)[1], val)  # one class = no labels


def test_every_task_splits_with_it(tmp_path: Path) -> None:
    from toolkit.tasks.detect import _holdout
    from toolkit.tasks.segment3d import decathlon_splits

    n, fraction, seed = 23, 0.2, 5
    _, expected = val_holdout(n, fraction, seed)
    records = [ImageRecord(Path(f"{i}.png"), 8, 8, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
               for i in range(n)]
    _, det_val = _holdout(DetectionData(["a"], records), fraction, seed)
    assert [r.path.stem for r in det_val.records] == [str(i) for i in expected]
    pairs = [(Path(f"i{i}.png"), Path(f"m{i}.png")) for i in range(n)]
    assert holdout_pairs(pairs, fraction, seed)[1] == take(pairs, expected)
    for i in range(n):
        for kind in ("img", "lab"):
            (tmp_path / f"{kind}{i}.nii.gz").write_bytes(b"")
    training = [{"image": f"img{i}.nii.gz", "label": f"lab{i}.nii.gz"} for i in range(n)]
    (tmp_path / "dataset.json").write_text(json.dumps({"training": training}))
    _, lists = decathlon_splits(tmp_path, fraction, seed)
    assert [Path(e["image"]).name for e in lists["val"]] == [f"img{i}.nii.gz" for i in expected]


@pytest.mark.parametrize("fraction, pattern", [(0.0, r"data\.val_split=0\.0; set data\.val_split"),
                                               (1.0, r"data\.val_split=1\.0; set data\.val_split"),
                                               (0.1, r"data\.val_split=0\.1 of 1 items leaves 1 to train and 0")])
def test_impossible_val_splits_name_data_val_split(fraction: float, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        val_holdout(1 if fraction == 0.1 else 10, fraction, 0)


def test_optional_val_split_of_zero_holds_nothing_out() -> None:
    train, val = val_holdout(4, 0.0, 0, optional=True)
    assert train.tolist() == [0, 1, 2, 3] and val.size == 0
    assert take(np.arange(10, 14), np.array([1, 3])).tolist() == [11, 13]
    assert take("abcd", np.array([0, 2])) == ["a", "c"]
