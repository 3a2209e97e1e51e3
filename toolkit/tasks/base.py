"""The Task protocol: everything task-specific the trainer, Predictor and CLI need.

The trainer calls ``build_data`` / ``build_model`` once, then ``train_step`` per batch and
``reset`` -> ``eval_step``* -> ``compute`` per evaluation. The Predictor calls ``read_input`` and
``predict``. Batches are whatever the task's ``collate`` makes; the engine moves every tensor in
them (nested in dicts/lists) to the device.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from toolkit.config import Config


@dataclass
class DataBundle:
    """Datasets of one run. ``classes`` names the model's outputs in order."""

    train: Dataset | None
    val: Dataset | None
    test: Dataset | None
    classes: list[str]
    collate: Callable[[list[Any]], Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # e.g. per-class counts, for the log
    notes: list[str] = field(default_factory=list)  # settings fitted to the data, printed at the start of a run


class Result(Protocol):
    """One prediction (one image or volume)."""

    def to_dict(self) -> dict[str, Any]: ...

    def save(self, out_dir: Path) -> list[Path]: ...


class Task(Protocol):
    name: str
    DataConfig: type
    ModelConfig: type
    monitor: str  # default metric for best.pt / early stopping (higher is better unless in LOWER_IS_BETTER)
    outputs: str  # softmax | sigmoid (logits) | boxes: how an ensemble of the task's models combines them

    def __init__(self, cfg: Config) -> None: ...

    def build_data(self, splits: tuple[str, ...] = ("train", "val", "test")) -> DataBundle: ...

    def build_model(self, classes: list[str], pretrained: bool = True) -> nn.Module: ...

    def train_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]: ...

    def reset(self, final: bool = False) -> None:
        """Start an evaluation. ``final``: ``toolkit val`` or a run's closing evaluation, where a task may
        infer more thoroughly (detection's ``model.tta``); False for the per-epoch check."""

    def eval_step(self, model: nn.Module, batch: Any) -> None: ...

    def compute(self) -> dict[str, float]: ...

    def report(self, metrics: dict[str, float]) -> str: ...

    def plots(self, run_dir: Path, split: str) -> list[Path]: ...

    def read_input(self, path: Path) -> dict[str, Any]:
        """One input as a sample. Options of reading (e.g. segment3d's ``series_uid``) are keyword-only
        parameters after ``path``; the Predictor routes ``toolkit predict ... key=value`` options by them."""

    def predict(self, model: nn.Module, samples: list[dict[str, Any]]) -> list[Result]:
        """One Result per sample. Options of the model and post-processing (e.g. ``conf``) are keyword-only
        parameters after ``samples``, never ``**kwargs``: unknown options must be errors."""


LOWER_IS_BETTER = ("loss", "val_loss", "hd95")
