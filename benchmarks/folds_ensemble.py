"""Small data on brain-lesions: k-fold cross-validation of the default segment3d recipe, the folds' ensemble on the
held-out test split beside each fold alone, and whether the folds' disagreement (the uncertainty map) finds the
ensemble's errors.

    python benchmarks/folds_ensemble.py --folds 3 --minutes 6     # about 8 min per fold on 2 CPU cores
    python benchmarks/folds_ensemble.py --folds 5 --epochs 6      # a fixed budget: figures that do not depend on load

Uncertainty check: over every voxel of the test scans, the ensemble's wrong voxels (predicted BraTS label !=
reference label) that lie among the 5% most uncertain voxels, as a share of all its wrong voxels; a random pick of
5% of the voxels holds 5% of them. Also within the brain (voxels where the scan is non-zero), where the task is.
Writes runs/bench/folds_ensemble.{json,md}."""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import Timer, write  # noqa: E402

from toolkit import train  # noqa: E402
from toolkit.data.splits import folds_of  # noqa: E402
from toolkit.engine.run import validate  # noqa: E402
from toolkit.medical import read_nifti  # noqa: E402
from toolkit.predict import Predictor  # noqa: E402
from toolkit.tasks.segment3d import decathlon_splits, resolve_source  # noqa: E402

TOP = 0.05


def error_share(errors: np.ndarray, uncertainty: np.ndarray, top: float = TOP) -> float:
    """Share of the wrong voxels that lie among the ``top`` most uncertain ones."""
    picked = np.argsort(uncertainty, kind="stable")[-max(1, round(top * len(uncertainty))):]
    return float(errors[picked].sum() / max(1, errors.sum()))


def uncertainty_check(run: Path) -> dict[str, float]:
    """Predict each test case with the folds' ensemble; pool voxels over cases (see the module docstring)."""
    predictor = Predictor.from_checkpoint(run)
    cfg = predictor.task.cfg
    _, lists = decathlon_splits(resolve_source(cfg.data.source), cfg.data.val_split, cfg.train.seed,
                                folds_of(cfg.train, cfg.data.val_split))
    errors, spread, brain = [], [], []
    for case in lists["test"]:
        (result,) = predictor.predict(case["image"])
        truth = read_nifti(case["label"]).array.astype(np.int64)
        errors.append((result.mask != truth).ravel())
        spread.append(result.uncertainty.ravel())
        brain.append((np.abs(read_nifti(case["image"]).array).sum(-1) > 0).ravel())
    e, u, b = (np.concatenate(x) for x in (errors, spread, brain))
    return {"test cases": len(lists["test"]), "voxel error rate": float(e.mean()),
            "errors in top 5% uncertain (all voxels)": error_share(e, u),
            "errors in top 5% uncertain (brain voxels)": error_share(e[b], u[b]),
            "error rate in top 5% uncertain (brain)": float(e[b][np.argsort(u[b])[-round(TOP * b.sum()):]].mean()),
            "error rate of brain voxels": float(e[b].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=6.0, help="train.time_limit of each fold")
    parser.add_argument("--epochs", type=int, default=0, help="train.epochs of each fold instead of a time limit")
    parser.add_argument("--project", default="runs/bench-folds")
    args = parser.parse_args()
    run = Path(args.project) / "segment3d" / "brain-lesions-cv"
    if not (run / "summary.csv").is_file():
        with Timer() as timer:
            budget = f"train.epochs={args.epochs}" if args.epochs else f"train.time_limit={args.minutes}"
            train("segment3d", [f"train.folds={args.folds}", budget,
                                f"train.project={args.project}", "train.name=brain-lesions-cv", "train.exist_ok=true",
                                "train.progress=false"])
        print(f"trained {args.folds} folds in {timer.seconds / 60:.1f} min")
        (run / "train_minutes.txt").write_text(f"{timer.seconds / 60:.1f}\n")
    with open(run / "summary.csv", newline="") as f:
        cv = {row["metric"]: row for row in csv.DictReader(f)}
    metrics, report, _ = validate(run, split="test")
    print(report)
    members = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("dice_mean/")}
    rows = [{"model": f"fold{i}", "val Dice (own fold)": float(cv["dice_mean"][f"fold{i}"]),
             "test Dice": members[f"fold{i}"]} for i in range(args.folds)]
    rows += [{"model": "mean of the folds", "val Dice (own fold)": float(cv["dice_mean"]["mean"]),
              "test Dice": float(np.mean(list(members.values())))},
             {"model": "std of the folds", "val Dice (own fold)": float(cv["dice_mean"]["std"]),
              "test Dice": float(np.std(list(members.values()), ddof=1))},
             {"model": f"ensemble of {args.folds}", "val Dice (own fold)": "", "test Dice": metrics["dice_mean"]}]
    check = uncertainty_check(run)
    epochs = [int(float(cv["best_epoch"][f"fold{i}"])) for i in range(args.folds)]
    budget = f"train.epochs={args.epochs}" if args.epochs else f"train.time_limit={args.minutes} min"
    minutes = (run / "train_minutes.txt").read_text().strip() if (run / "train_minutes.txt").is_file() else "?"
    notes = (f"{args.folds} folds of `toolkit train segment3d` (recipe segment3d-brain-lesions, {budget} each, "
             f"{minutes} min in all; best epochs {epochs}; load average {os.getloadavg()[1]:.1f} on "
             f"{os.cpu_count()} cores); test split = the dataset's 16 validation cases, held out of every fold.\n\n"
             f"uncertainty: {json.dumps({k: round(v, 4) for k, v in check.items()})}")
    write("folds_ensemble", rows, notes)


if __name__ == "__main__":
    main()
