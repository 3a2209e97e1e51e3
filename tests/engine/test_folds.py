"""k-fold cross-validation runs end to end on real digits (toolkit/engine/folds.py): fold0/ fold1/ and summary.csv,
one fold at a time merged with the folds already there, a fold resumed, and the folds scored as an ensemble on the
held-out test split by `toolkit val RUN_DIR`."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from toolkit.cli import main
from toolkit.engine import checkpoint
from toolkit.engine.run import train

TINY = ["data=digits", "data.limit=300", "model.backbone=simple_cnn", "train.epochs=1", "train.progress=false",
        "train.batch_size=64", "train.lr=0.003", "train.logger=none", "train.folds=2"]


def summary(run: Path) -> dict[str, dict[str, str]]:
    with open(run / "summary.csv", newline="") as f:
        return {row["metric"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def folds_run(tmp_path_factory) -> tuple[Path, dict]:
    """A 2-fold run ``<project>/classify/cv`` and what ``train`` returned."""
    project = tmp_path_factory.mktemp("folds")
    means = train("classify", [*TINY, f"train.project={project}", "train.name=cv"])
    return project / "classify" / "cv", means


def test_two_folds_then_their_ensemble_on_the_test_split(folds_run, tmp_path: Path, capsys) -> None:
    run, means = folds_run
    assert sorted(p.name for p in run.iterdir()) == ["fold0", "fold1", "summary.csv"]
    table = summary(run)
    folds = [checkpoint.load(run / f / "weights" / "best.pt")["metrics"]["accuracy"] for f in ("fold0", "fold1")]
    assert [float(table["accuracy"][f]) for f in ("fold0", "fold1")] == pytest.approx(folds, rel=1e-5)
    assert float(table["accuracy"]["mean"]) == pytest.approx(np.mean(folds), rel=1e-5) == means["accuracy"]
    assert float(table["accuracy"]["std"]) == pytest.approx(np.std(folds, ddof=1), rel=1e-4)
    configs = [checkpoint.load(run / f / "weights" / "best.pt")["config"]["train"] for f in ("fold0", "fold1")]
    assert [c["fold"] for c in configs] == [0, 1] and [c["name"] for c in configs] == ["cv/fold0", "cv/fold1"]

    assert main(["val", str(run), "--out", str(tmp_path / "val")]) == 0  # the test split by default
    out = capsys.readouterr().out
    assert "accuracy of each member alone: fold0" in out and "the ensemble of 2:" in out
    assert main(["val", str(run), "--split", "val"]) == 2
    assert "each fold's val split is training data of the other folds" in capsys.readouterr().err


def test_one_fold_at_a_time_merges_and_resumes(folds_run, tmp_path: Path, capsys) -> None:
    run = tmp_path / "classify" / "cv"
    shutil.copytree(folds_run[0] / "fold0", run / "fold0")  # as if trained on another machine
    one = [*TINY, f"train.project={tmp_path}", "train.name=cv"]
    train("classify", [*one, "train.fold=1"])
    table = summary(run)
    assert list(table["accuracy"]) == ["metric", "fold0", "fold1", "mean", "std"]
    assert table["accuracy"]["fold0"] == summary(folds_run[0])["accuracy"]["fold0"]
    assert main(["train", "classify", *one, "train.fold=1"]) == 2
    assert "already holds a run: resume it with train.resume=" in capsys.readouterr().err
    assert main(["train", "classify", *one, "train.fold=1", "train.seed=5"]) == 2  # other splits: not merged
    assert "cv/fold0 was split with other settings (train.seed)" in capsys.readouterr().err

    last = run / "fold1" / "weights" / "last.pt"
    train("classify", [f"train.resume={last}", "train.epochs=2"])
    assert checkpoint.load(last)["epoch"] == 2 and (run / "fold1" / "results.csv").read_text().count("\n") == 3
    shutil.copy(last, tmp_path / "elsewhere.pt")
    assert main(["train", "classify", f"train.resume={tmp_path / 'elsewhere.pt'}", "train.epochs=3"]) == 2
    assert "a fold resumes from its own weights/last.pt" in capsys.readouterr().err


def test_a_missing_fold_is_named_in_the_table(tmp_path: Path, capsys) -> None:
    from toolkit.engine.folds import format_summary

    table = {"folds": ["fold1"], "accuracy": [0.5, 0.5, float("nan")]}
    assert "not trained yet: fold0, fold2 (train one with train.fold=i train.name=cv)" in format_summary(
        table, tmp_path / "cv", 3)
