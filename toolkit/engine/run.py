"""Entry points behind the CLI and the Python API: train, validate."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from toolkit import config as config_mod
from toolkit.config import Config
from toolkit.engine import checkpoint
from toolkit.engine.trainer import Trainer, evaluate
from toolkit.tasks import task_class


def resolve_config(task: str, overrides: list[str]) -> Config:
    """The run's config; see ``resolve``."""
    return resolve(task, overrides)[0]


def resolve(task: str, overrides: list[str]) -> tuple[Config, list[str]]:
    """Recipe < cfg=FILE < overrides, and the notes to print on the run's first lines. With
    ``train.resume=CKPT`` the checkpoint's config is the base.

    The recipe is ``configs/<task>.yaml``, overlaid by ``configs/<task>-<data.source>.yaml`` when the
    dataset (given, or the task's default) is a built-in one with its own settings. A ``train.epochs`` the user
    gives is trained in full: a recipe's ``train.time_limit`` is then dropped, and a note says so."""
    cls = task_class(task)
    parsed = config_mod.parse_overrides([o for o in overrides if not o.startswith("cfg=")])
    resume = parsed.get("train", {}).get("resume")
    if resume:
        saved = checkpoint.load(Path(resume))["config"]
        if saved["task"] != task:
            raise config_mod.ConfigError(f"{resume} was trained for task '{saved['task']}', not '{task}'")
        return config_mod.build(task, cls.DataConfig, cls.ModelConfig, [saved, parsed]), []
    source = str(parsed.get("data", {}).get("source") or cls.DataConfig().source)
    cfg = config_mod.load(task, cls.DataConfig, cls.ModelConfig, overrides, recipes=[task, f"{task}-{source}"])
    user = config_mod.user_keys(overrides)
    notes = []
    if "train.epochs" in user and "train.time_limit" not in user and cfg.train.time_limit:
        notes.append(f"note: all train.epochs={cfg.train.epochs} are trained; the recipe's train.time_limit="
                     f"{cfg.train.time_limit} min is dropped (give train.time_limit=MIN to keep a limit)")
        cfg.train.time_limit = 0.0
    return cfg, notes


def train(task: str, overrides: list[str] | None = None, **kwargs: Any) -> dict[str, float]:
    """Train ``task`` with ``a.b=c`` overrides (or keyword ``a__b=c``); returns the final metrics."""
    overrides = list(overrides or []) + [f"{k.replace('__', '.')}={v}" for k, v in kwargs.items()]
    cfg, notes = resolve(task, overrides)
    return Trainer(cfg, task_class(task)(cfg), notes=notes).fit()


def validate(ckpt_path: str | Path, overrides: list[str] | None = None, split: str = "val",
             device: str = "auto") -> tuple[dict[str, float], str, list[Path]]:
    """Evaluate a checkpoint on a split (its own data, or ``data=...``): metrics, report, plot files."""
    task, model, classes = checkpoint.restore(ckpt_path, device, overrides)
    data = task.build_data(splits=(split,))
    dataset = getattr(data, split)
    if dataset is None:
        raise config_mod.ConfigError(f"the dataset has no '{split}' split")
    if list(data.classes) != classes:
        raise config_mod.ConfigError(f"the dataset's classes {list(data.classes)} differ from the checkpoint's "
                                     f"{classes}; validate on data labelled with the training classes")
    loader = torch.utils.data.DataLoader(dataset, batch_size=task.cfg.train.batch_size, collate_fn=data.collate)
    metrics = evaluate(task, model, loader, next(model.parameters()).device, final=True)
    out_dir = Path(ckpt_path).resolve().parent.parent / f"val-{split}"
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = task.plots(out_dir, split)
    return metrics, task.report(metrics), plots
