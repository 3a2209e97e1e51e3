"""k-fold cross-validation splits (toolkit/data/splits.py): stratified, grouped, deterministic, disjoint, with the
test split held out of every fold; and the tasks that build their data from them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toolkit.config import TrainConfig
from toolkit.data.splits import Folds, apply_folds, fold_indices, folds_of
from toolkit.errors import ConfigError, DataError


def every_fold(k: int, sizes: dict[str, int], **kw) -> list[dict[str, np.ndarray]]:
    return [fold_indices(sizes, Folds(k, i, seed=3, test_fraction=0.2), **kw) for i in range(k)]


def test_stratified_folds_keep_the_class_proportions_of_digits(digits_arrays: dict[str, np.ndarray]) -> None:
    """Real digits through the classify task's own data path: each class's count in a fold's val differs by at
    most one sample between folds, the val folds cover the training items once, and the test split is untouched."""
    from toolkit.data.classification import load_splits

    labels = digits_arrays["y_train"]
    per_fold = []
    for i in range(5):
        datasets, _ = load_splits("digits", 0, 0.1, 0, folds=Folds(5, i, seed=0, test_fraction=0.1))
        assert np.array_equal(datasets["test"].labels, digits_arrays["y_test"])
        assert len(datasets["train"]) + len(datasets["val"]) == len(labels)
        per_fold.append(np.bincount(datasets["val"].labels, minlength=10))
    counts = np.stack(per_fold)
    assert (counts.max(0) - counts.min(0)).max() <= 1
    assert counts.sum(0).tolist() == np.bincount(labels, minlength=10).tolist()


def test_folds_are_deterministic_disjoint_and_cover_the_pool() -> None:
    sizes = {"train": 40, "val": 0, "test": 10}
    folds = every_fold(4, sizes)
    assert all(np.array_equal(a["val"], b["val"]) for a, b in zip(folds, every_fold(4, sizes)))
    vals = np.concatenate([f["val"] for f in folds])
    assert sorted(vals.tolist()) == list(range(40))  # each training item validates exactly once
    for f in folds:
        assert not set(f["train"]) & set(f["val"]) and f["test"].tolist() == list(range(40, 50))
    other = fold_indices(sizes, Folds(4, 0, seed=4, test_fraction=0.2))
    assert not np.array_equal(other["val"], folds[0]["val"])  # the seed shuffles


def test_the_held_out_test_split_is_the_val_split_or_a_share_of_train() -> None:
    with_val = fold_indices({"train": 20, "val": 5}, Folds(2, 1, 0, 0.2))
    assert with_val["test"].tolist() == list(range(20, 25))
    assert sorted(with_val["train"].tolist() + with_val["val"].tolist()) == list(range(20))
    alone = [fold_indices({"train": 30}, Folds(3, i, 0, 0.2)) for i in range(3)]
    test = alone[0]["test"]
    assert len(test) == 6 and all(np.array_equal(f["test"], test) for f in alone)
    assert not set(test) & set(np.concatenate([f["train"] for f in alone] + [f["val"] for f in alone]))


def test_grouped_folds_never_split_a_group() -> None:
    groups = [f"patient{i // 3}" for i in range(36)]  # three scans per patient
    for f in every_fold(4, {"train": 36}, groups=groups):
        where = {s: {groups[i] for i in f[s]} for s in ("train", "val", "test")}
        assert not where["train"] & where["val"] and not where["test"] & (where["train"] | where["val"])
    labels = [i % 2 for i in range(36)]
    for f in every_fold(3, {"train": 30, "test": 6}, groups=groups, labels=labels):
        assert not {groups[i] for i in f["train"]} & {groups[i] for i in f["val"]}


def test_segment3d_groups_the_scans_of_one_patient(tmp_path: Path) -> None:
    from toolkit.tasks.segment3d import decathlon_splits

    entries = []
    for i in range(12):
        for kind in ("img", "lab"):
            (tmp_path / f"{kind}{i}.nii.gz").write_bytes(b"")
        entries.append({"image": f"img{i}.nii.gz", "label": f"lab{i}.nii.gz", "patient": f"p{i // 4}"})
    (tmp_path / "dataset.json").write_text(json.dumps({"training": entries}))
    for i in range(2):
        _, lists = decathlon_splits(tmp_path, 0.3, 0, Folds(2, i, 0, 0.3))
        patients = {s: {e["patient"] for e in lists[s]} for s in ("train", "val", "test")}
        assert all(len(p) == 1 or s == "train" for s, p in patients.items())  # 3 patients: one each
        assert len(set().union(*patients.values())) == 3 and sum(map(len, patients.values())) == 3


def test_apply_folds_regroups_items_and_bad_settings_are_named() -> None:
    found = apply_folds({"train": list("abcdef"), "test": ["t"]}, Folds(3, 2, 0, 0.2))
    assert found["test"] == ["t"] and sorted(found["train"] + found["val"]) == list("abcdef")
    assert folds_of(TrainConfig(), 0.2) is None
    assert folds_of(TrainConfig(folds=3, fold=-1), 0.2) == Folds(3, 0, 0, 0.2)
    with pytest.raises(ConfigError, match="train.folds=1 must be 0"):
        folds_of(TrainConfig(folds=1), 0.2)
    with pytest.raises(ConfigError, match=r"train.fold=3 is out of range for train.folds=3: give 0..2"):
        folds_of(TrainConfig(folds=3, fold=3), 0.2)
    with pytest.raises(DataError, match="train.folds=5 needs at least 5 training items; there are 3"):
        fold_indices({"train": 3, "test": 1}, Folds(5, 0, 0, 0.2))
