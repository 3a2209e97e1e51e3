"""Checkpoints as one model: a cross-validation run (its folds' ``best.pt``), several checkpoints, or one.

``restore(source)`` is what ``Predictor.from_checkpoint`` and ``toolkit val`` load: one checkpoint gives its
model, several an ``inference.ensemble.Ensemble`` that averages their probabilities (boxes: weighted boxes
fusion). The task (pre- and post-processing, data) is the first member's."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from toolkit.engine import checkpoint
from toolkit.engine.rundir import fold_checkpoints
from toolkit.errors import CheckpointError, ConfigError
from toolkit.inference.ensemble import Ensemble
from toolkit.tasks.base import LOWER_IS_BETTER

Source = str | Path | Sequence[str | Path]


def checkpoints(source: Source) -> list[Path]:
    """The checkpoint files of ``source``: a file; several (a list, or paths joined by commas); a cross-validation
    run directory (its ``fold*/weights/best.pt``); a plain run directory (its ``weights/best.pt``)."""
    if not isinstance(source, (str, Path)):
        return [p for item in source for p in checkpoints(item)]
    path = Path(source)
    if not path.exists() and "," in str(source):
        return checkpoints([p for p in str(source).split(",") if p])
    if path.is_dir():
        found = fold_checkpoints(path) or [p for p in [path / "weights" / "best.pt"] if p.is_file()]
        if not found:
            raise CheckpointError(f"{path} holds no checkpoint: neither fold*/weights/best.pt (a cross-validation "
                                  "run) nor weights/best.pt")
        return found
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return [path]


def is_folds_run(source: Source) -> bool:
    return isinstance(source, (str, Path)) and Path(source).is_dir() and bool(fold_checkpoints(Path(source)))


def default_split(source: Source) -> str:
    """``toolkit val``'s split when none is given: ``test`` for a cross-validation run (its held-out split; each
    fold's val split trained the other folds), else ``val``."""
    return "test" if is_folds_run(source) else "val"


def restore(source: Source, device: str = "auto", overrides: list[str] | None = None, backend: str = "auto"
            ) -> tuple[Any, nn.Module, list[str]]:
    """(task, model, classes) of ``source`` (see ``checkpoints``), the model in eval mode on ``device``; ``backend``:
    see ``checkpoint.restore`` (auto | torch | onnx)."""
    paths = checkpoints(source)
    restored = [checkpoint.restore(p, device, overrides, backend) for p in paths]
    task, model, classes = restored[0]
    if len(restored) == 1:
        return task, model, classes
    for path, (other, _, other_classes) in zip(paths[1:], restored[1:]):
        if other.name != task.name or other_classes != classes:
            raise ConfigError(f"{path} is a {other.name} model of classes {other_classes}, {paths[0]} a {task.name} "
                              f"model of {classes}: an ensemble needs models of one task and one set of classes")
    return task, Ensemble([m for _, m, _ in restored], task.outputs).eval(), classes


def check_split(source: Source, split: str) -> None:
    """An ensemble of folds is scored on data none of them trained on: not on a fold's val split."""
    if split == "val" and is_folds_run(source):
        raise ConfigError(f"{source} is a cross-validation run: each fold's val split is training data of the other "
                          "folds, so the ensemble is scored on the held-out test split (--split test)")


def score_members(source: Source, loader: Any, device: torch.device, overrides: list[str] | None,
                  ensemble: dict[str, float]) -> tuple[dict[str, float], str]:
    """Each member of ``source`` alone on ``loader``, by its task's monitored metric: (``{"<metric>/<member>":
    value}``, a line beside the ``ensemble``'s metrics). Members are named by their fold directory, else file."""
    from toolkit.engine.trainer import evaluate  # scoring only: prediction does not load the training loop

    scores = {}
    for path in checkpoints(source):
        task, model, _ = checkpoint.restore(path, str(device), overrides)
        name = path.parent.parent.name if path.parent.parent.name.startswith("fold") else str(path)
        metric = task.cfg.train.monitor or task.monitor
        scores[f"{metric}/{name}"] = evaluate(task, model, loader, device, final=True)[metric]
    values = list(scores.values())
    best = min(values) if metric in LOWER_IS_BETTER else max(values)
    shown = ", ".join(f"{k.split('/', 1)[1]} {v:.4f}" for k, v in scores.items())
    return scores, (f"{metric} of each member alone: {shown}; mean {sum(values) / len(values):.4f}, best "
                    f"{best:.4f}; the ensemble of {len(values)}: {ensemble[metric]:.4f}")
