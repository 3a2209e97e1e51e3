"""Callbacks run on rank 0 after each epoch: results.csv, curves, checkpoints, early stopping.

Callbacks only read the trainer's state (``row["is_best"]``, ``trainer.epochs_without_improvement``, which the
trainer computes before calling them); any subset of them can run."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from toolkit.engine import rundir
from toolkit.tasks.base import LOWER_IS_BETTER
from toolkit.viz import plot_results

if TYPE_CHECKING:
    from toolkit.engine.trainer import Trainer


class Callback:
    def on_epoch_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        pass

    def on_fit_end(self, trainer: "Trainer", metrics: dict[str, Any]) -> None:
        """After the final evaluation (``metrics``: its split and scores) and the task's plots."""


class ResultsLogger(Callback):
    """Writes the epoch's row of ``results.csv`` (the whole file, atomically) and redraws ``results.png``.
    Runs after ``Checkpointer`` in the default list, so that a row never gets ahead of ``weights/last.pt``."""

    def on_epoch_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        rundir.add_row(trainer.run_dir, row)
        plot_results(trainer.run_dir / rundir.RESULTS, trainer.run_dir / "results.png")


class Monitor:
    """Tracks the best value of one metric (higher is better unless it is a loss/distance)."""

    def __init__(self, metric: str, best: float | None = None) -> None:
        self.metric = metric
        self.lower = metric.split("/")[-1] in LOWER_IS_BETTER
        self.best = best if best is not None else (math.inf if self.lower else -math.inf)

    def improved(self, row: dict[str, Any]) -> bool:
        value = row.get(self.metric)
        if value is None or not math.isfinite(value):
            return False
        better = value < self.best if self.lower else value > self.best
        if better:
            self.best = value
        return better


class Checkpointer(Callback):
    """``weights/last.pt`` every epoch, then ``weights/best.pt`` when the trainer marked the epoch best: best.pt
    is only ever a copy of a state that last.pt already holds (see ``rundir``)."""

    def on_epoch_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        state = trainer.state_dict(row)
        trainer.save(state, "last.pt")
        if row.get("is_best"):
            trainer.save(state, "best.pt")


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without improvement of the monitored metric."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        if self.patience and trainer.epochs_without_improvement >= self.patience:
            trainer.stop_reason = (f"early stop: {trainer.monitor.metric} did not improve for "
                                   f"{self.patience} epochs (best {trainer.monitor.best:.4f})")
