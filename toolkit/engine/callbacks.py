"""Callbacks run on rank 0 after each epoch: results.csv, curves, checkpoints, early stopping.

Callbacks only read the trainer's state (``row["is_best"]``, ``trainer.epochs_without_improvement``, which the
trainer computes before calling them); any subset of them can run."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.tasks.base import LOWER_IS_BETTER
from toolkit.viz import plot_results

if TYPE_CHECKING:
    from toolkit.engine.trainer import Trainer


class Callback:
    def on_epoch_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        pass


class ResultsLogger(Callback):
    """Appends one row per epoch to ``results.csv`` and redraws ``results.png``."""

    def on_epoch_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        path = trainer.run_dir / "results.csv"
        columns = [k for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and "/" not in k]
        existing = path.is_file() and path.stat().st_size > 0
        if existing:
            with open(path, newline="") as f:
                header = next(csv.reader(f), [])
            columns = header + [c for c in columns if c not in header]
            if header != columns:
                _rewrite_header(path, columns)
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if not existing:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in columns})
        plot_results(path, trainer.run_dir / "results.png")


def _rewrite_header(path: Path, columns: list[str]) -> None:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


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
    """``weights/last.pt`` every epoch, ``weights/best.pt`` when the trainer marked the epoch best."""

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
