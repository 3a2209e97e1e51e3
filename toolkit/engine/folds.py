"""k-fold cross-validation (``train.folds=K``): one run per fold in ``<run>/fold0`` ... ``<run>/fold{K-1}``, each a
plain run (resumable from its ``weights/last.pt``), then ``<run>/summary.csv`` and a printed table of each
metric per fold with the mean and standard deviation.

``train.fold=i`` trains fold i alone into ``<project>/<task>/<name>`` (so folds can run on different machines);
every call merges the folds found there. The splits come from ``data.splits.fold_indices``: the test split is
held out of every fold, and ``toolkit val <run>`` / ``toolkit predict <run>`` use the folds as an ensemble."""
from __future__ import annotations

import copy
import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from toolkit.config import Config
from toolkit.data.splits import folds_of
from toolkit.engine import checkpoint, distributed, rundir
from toolkit.engine.trainer import Trainer
from toolkit.errors import ConfigError
from toolkit.safe_io import atomic_write_text
from toolkit.tasks import task_class

SUMMARY = "summary.csv"
NOT_SCORES = ("epoch", "train_loss", "lr", "time")  # columns of a results.csv row that are not validation scores
SAME_SPLITS = ("train.folds", "train.seed", "data.source", "data.val_split")  # what the splits of the folds depend on


def train_folds(cfg: Config, notes: list[str]) -> dict[str, Any]:
    """Train the folds ``cfg.train`` asks for, then merge every fold of the run directory into ``summary.csv``.
    Returns the mean of each validation score over the folds found."""
    t = cfg.train
    if t.folds == 0:
        raise ConfigError(f"train.fold={t.fold} needs train.folds=K (the number of folds)")
    folds_of(t, 0.0)  # checks train.folds and train.fold
    dist = distributed.setup(t.device)
    run = Path(distributed.broadcast(str(_run_dir(cfg, dist.is_main)), dist))
    for i in range(t.folds) if t.fold == -1 else [t.fold]:
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.train.fold, fold_cfg.train.name, fold_cfg.train.exist_ok = i, f"{run.name}/fold{i}", True
        fold_cfg.train.project = str(run.parent.parent)
        if not t.resume:  # on every process, so that all stop together
            _check_fold_dir(run / f"fold{i}", fold_cfg, retrain=t.exist_ok)
        Trainer(fold_cfg, task_class(cfg.task)(fold_cfg), notes=[*notes, f"fold {i} of train.folds={t.folds}: "
                                                                        f"{run / f'fold{i}'}"]).fit()
    if not dist.is_main:
        return {}
    table = summarize(run)
    print(format_summary(table, run, t.folds))
    return {"split": "val (mean over folds)", **{k: v[-2] for k, v in table.items() if k != "folds"}}


def _run_dir(cfg: Config, is_main: bool) -> Path:
    """``<project>/<task>/<name>``: a new one (``exp2`` ...) for all folds unless ``train.exist_ok``; the named one
    for a single fold (it merges with the others there); the fold's own parent on resume."""
    t = cfg.train
    if t.resume:
        ckpt = Path(t.resume)
        if not rundir.is_run_latest(ckpt) or not ckpt.resolve().parent.parent.name.startswith("fold"):
            raise ConfigError(f"train.resume={t.resume}: a fold resumes from its own weights/last.pt "
                              "(<run>/fold<i>/weights/last.pt)")
        return ckpt.resolve().parent.parent.parent
    base, name = Path(t.project) / cfg.task, (t.name or "exp").split("/")[0]
    if t.fold == -1 and not t.exist_ok and is_main:
        return rundir.next_free(base, name)
    return base / name


def _check_fold_dir(fold_dir: Path, cfg: Config, retrain: bool) -> None:
    """A fold is trained once (then resumed; ``retrain``: train.exist_ok), and only beside folds of the same split
    settings."""
    mine = _split_settings(cfg.to_dict())
    for other in sorted(fold_dir.parent.glob("fold*/config.yaml")):
        theirs = _split_settings(yaml.safe_load(other.read_text()))
        if theirs != mine and other.parent != fold_dir:
            changed = ", ".join(k for k in mine if mine[k] != theirs.get(k))
            raise ConfigError(f"{other.parent} was split with other settings ({changed}); folds of one run must "
                              f"share {', '.join(SAME_SPLITS)}: pick another train.name")
    if (fold_dir / "weights" / "last.pt").is_file() and not retrain:
        raise ConfigError(f"{fold_dir} already holds a run: resume it with train.resume={fold_dir}/weights/last.pt, "
                          "or give train.exist_ok=true to train it again")


def _split_settings(config: dict[str, Any]) -> dict[str, Any]:
    return {key: config[key.split(".")[0]].get(key.split(".")[1]) for key in SAME_SPLITS}


def summarize(run: Path) -> dict[str, list[float]]:
    """{score: [fold values ..., mean, std]} from each fold's ``weights/best.pt`` (its validation scores at the
    best epoch), written to ``<run>/summary.csv`` (one row per score; std: sample standard deviation, ddof 1).
    A score missing in a fold is NaN there."""
    folds = {p.parent.parent.name: checkpoint.load(p).get("metrics", {}) for p in rundir.fold_checkpoints(run)}
    if not folds:
        raise ConfigError(f"{run} holds no trained fold (fold*/weights/best.pt)")
    names = [k for k in rundir.table_row(next(iter(folds.values()))) if k not in NOT_SCORES]
    table = {}
    for name in ["best_epoch", *names]:
        values = np.array([m.get("epoch" if name == "best_epoch" else name, math.nan) for m in folds.values()], float)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        table[name] = [*values.tolist(), float(np.mean(values)), std]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["metric", *folds, "mean", "std"])
    writer.writerows([name, *(f"{v:.6g}" for v in values)] for name, values in table.items())
    atomic_write_text(text.getvalue(), run / SUMMARY)
    return {"folds": list(folds), **table}


def format_summary(table: dict[str, Any], run: Path, k: int) -> str:
    """The printed table: one line per score, one column per fold, then mean and std."""
    folds = table["folds"]
    head = f"{'metric':<16}" + "".join(f"{f:>10}" for f in [*folds, "mean", "std"])
    lines = [f"\ncross-validation, {len(folds)} of {k} folds (validation scores of each fold's best.pt):", head]
    lines += [f"{name[:16]:<16}" + "".join(f"{v:>10.4g}" for v in values)
              for name, values in table.items() if name != "folds"]
    missing = [f"fold{i}" for i in range(k) if f"fold{i}" not in folds]
    if missing:
        lines.append(f"not trained yet: {', '.join(missing)} (train one with train.fold=i train.name={run.name})")
    lines += [f"summary -> {run / SUMMARY}",
              f"ensemble of the folds: toolkit val {run} (held-out test split); toolkit predict {run} INPUT"]
    return "\n".join(lines)
