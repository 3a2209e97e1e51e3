"""Experiment tracking callbacks (``train.logger``): TensorBoard and MLflow, beside ``results.csv``.

Both log the same things: each epoch's numbers (losses, metrics, per-class ones such as ``ap/<class>``, the
learning rate ``lr``) at step = epoch; the resolved config as text; at the end, the final evaluation's metrics
(``test/<name>``, or ``val/<name>`` without a test split) and the run's figures (sample predictions, confusion
matrix / PR curve, training curves) as images.

- TensorBoard (``torch.utils.tensorboard``): event files in the run directory; ``tensorboard --logdir runs``.
  On by default (``auto``) when the ``tensorboard`` package is installed.
- MLflow: the tracking server at ``$MLFLOW_TRACKING_URI`` when set, else a local store that works offline:
  ``<train.project>/mlflow.db`` (SQLite; MLflow's file store is in maintenance mode) with artifacts in
  ``<train.project>/mlartifacts``; ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``. Experiment = task,
  run name = run directory; a resumed run goes on in the same MLflow run.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import yaml
from PIL import Image

from toolkit.engine.callbacks import Callback
from toolkit.errors import ConfigError

if TYPE_CHECKING:
    from toolkit.engine.trainer import Trainer

LOGGERS = ("auto", "tensorboard", "mlflow", "none")
NOT_LOGGED = ("epoch", "time", "is_best")  # row entries that are not scores (the epoch is the step)
RUN_TAG = "toolkit.run_dir"


def build_trackers(logger: str, project: str) -> list[Callback]:
    """The callbacks ``train.logger`` names (comma-separated); ``auto`` is TensorBoard when it is installed."""
    names = [n.strip() for n in logger.split(",") if n.strip()] or ["none"]
    unknown = [n for n in names if n not in LOGGERS]
    if unknown:
        raise ConfigError(f"train.logger={logger!r}: unknown {', '.join(unknown)}; valid: {', '.join(LOGGERS)} "
                          "(several joined by commas, e.g. tensorboard,mlflow)")
    installed = importlib.util.find_spec("tensorboard") is not None
    trackers: list[Callback] = []
    if "tensorboard" in names or ("auto" in names and installed):
        if not installed:
            raise ConfigError("train.logger=tensorboard needs the tensorboard package: pip install tensorboard")
        trackers.append(TensorBoardLogger())
    if "mlflow" in names:
        if importlib.util.find_spec("mlflow") is None:
            raise ConfigError("train.logger=mlflow needs MLflow: pip install mlflow-skinny sqlalchemy alembic (or "
                              "the toolkit's 'tracking' extra)")
        trackers.append(MLflowLogger(project))
    return trackers


def scores(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of an epoch's row or a final evaluation, by name."""
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and k not in NOT_LOGGED and math.isfinite(v)}


def config_text(trainer: "Trainer") -> str:
    return yaml.safe_dump(trainer.cfg.to_dict(), sort_keys=False)


def figures(run_dir: Path) -> dict[str, np.ndarray]:
    """The run's PNG figures as uint8 RGB (H, W, 3), by file stem."""
    return {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in sorted(run_dir.glob("*.png"))}


class TensorBoardLogger(Callback):
    """Event files in the run directory (see the module docstring). A resumed run drops the events of the epochs
    after its checkpoint (``purge_step``), as results.csv does."""

    def __init__(self) -> None:
        self.writer: Any = None
        self.step = 0

    def on_epoch_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(trainer.run_dir), purge_step=trainer.start_epoch + 1)
            self.writer.add_text("config", "\n".join("    " + line for line in config_text(trainer).splitlines()),
                                 trainer.start_epoch + 1)  # indented: shown as code, not as Markdown
        self.step = int(row["epoch"])
        for name, value in scores(row).items():
            self.writer.add_scalar(name, value, self.step)
        self.writer.flush()

    def on_fit_end(self, trainer: "Trainer", metrics: dict[str, Any]) -> None:
        if self.writer is None:
            return
        split = metrics.get("split", "val")
        for name, value in scores(metrics).items():
            self.writer.add_scalar(f"{split}/{name}", value, self.step)
        for name, image in figures(trainer.run_dir).items():
            self.writer.add_image(name, image, self.step, dataformats="HWC")
        self.writer.close()
        self.writer = None


class MLflowLogger(Callback):
    """One MLflow run per run directory (see the module docstring)."""

    def __init__(self, project: str) -> None:
        root = Path(project).resolve()
        self.default_store = not os.environ.get("MLFLOW_TRACKING_URI")
        self.uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
        self.artifacts = (root / "mlartifacts").as_uri()
        self.client: Any = None
        self.run_id = ""
        self.step = 0

    def _start(self, trainer: "Trainer") -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        Path(trainer.cfg.train.project).mkdir(parents=True, exist_ok=True)
        task = trainer.cfg.task
        with _quiet("mlflow", "alembic"):  # their notes on creating the store's tables would flood the log
            self.client = client = MlflowClient(self.uri)
            experiment = client.get_experiment_by_name(task)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(
            task, artifact_location=self.artifacts if self.default_store else None)
        run_dir = str(trainer.run_dir.resolve())
        earlier = client.search_runs([experiment_id], f"tags.`{RUN_TAG}` = '{run_dir}'", max_results=1) \
            if trainer.start_epoch else []
        if earlier:
            self.run_id = earlier[0].info.run_id
            client.update_run(self.run_id, status="RUNNING")
        else:
            name = str(trainer.run_dir.relative_to(Path(trainer.cfg.train.project) / task)) \
                if trainer.run_dir.is_relative_to(Path(trainer.cfg.train.project) / task) else trainer.run_dir.name
            self.run_id = client.create_run(experiment_id, run_name=name, tags={RUN_TAG: run_dir}).info.run_id
            params = [Param(f"{section}.{k}", str(v)[:500]) for section, values in trainer.cfg.to_dict().items()
                      if isinstance(values, dict) for k, v in values.items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per call
                client.log_batch(self.run_id, params=params[i:i + 100])
        client.log_text(self.run_id, config_text(trainer), "config.yaml")

    def _log(self, values: dict[str, float], prefix: str = "") -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(_key(prefix + k), v, now, self.step) for k, v in values.items()]
        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per call
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def on_epoch_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        if self.client is None:
            self._start(trainer)
        self.step = int(row["epoch"])
        self._log(scores(row))

    def on_fit_end(self, trainer: "Trainer", metrics: dict[str, Any]) -> None:
        if self.client is None:
            return
        self._log(scores(metrics), f"{metrics.get('split', 'val')}/")
        for name, image in figures(trainer.run_dir).items():
            self.client.log_image(self.run_id, image, f"figures/{name}.png")
        self.client.set_terminated(self.run_id, "FINISHED")
        self.client = None


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Only warnings from these loggers within the block; their levels are restored after it."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _key(name: str) -> str:
    """A metric name MLflow accepts (letters, digits, ``_ - . / `` and spaces); e.g. a class name's other marks
    become ``_``."""
    return re.sub(r"[^\w\-. /]", "_", name)
