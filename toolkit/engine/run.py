"""Entry points behind the CLI and the Python API: train, validate."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from toolkit import config as config_mod
from toolkit.config import Config
from toolkit.engine import checkpoint
from toolkit.engine.distributed import pick_device
from toolkit.engine.trainer import Trainer, evaluate
from toolkit.tasks import task_class


def resolve_config(task: str, overrides: list[str]) -> Config:
    """Recipe < cfg=FILE < overrides; with ``train.resume=CKPT`` the checkpoint's config is the base.

    The recipe is ``configs/<task>.yaml``, overlaid by ``configs/<task>-<data.source>.yaml`` when the
    dataset (given, or the task's default) is a built-in one with its own settings."""
    cls = task_class(task)
    parsed = config_mod.parse_overrides([o for o in overrides if not o.startswith("cfg=")])
    resume = parsed.get("train", {}).get("resume")
    if resume:
        saved = checkpoint.load(Path(resume))["config"]
        if saved["task"] != task:
            raise config_mod.ConfigError(f"{resume} was trained for task '{saved['task']}', not '{task}'")
        return config_mod.build(task, cls.DataConfig, cls.ModelConfig, [saved, parsed])
    source = str(parsed.get("data", {}).get("source") or cls.DataConfig().source)
    return config_mod.load(task, cls.DataConfig, cls.ModelConfig, overrides, recipes=[task, f"{task}-{source}"])


def train(task: str, overrides: list[str] | None = None, **kwargs: Any) -> dict[str, float]:
    """Train ``task`` with ``a.b=c`` overrides (or keyword ``a__b=c``); returns the final metrics."""
    overrides = list(overrides or []) + [f"{k.replace('__', '.')}={v}" for k, v in kwargs.items()]
    cfg = resolve_config(task, overrides)
    return Trainer(cfg, task_class(task)(cfg)).fit()


def validate(ckpt_path: str | Path, overrides: list[str] | None = None, split: str = "val",
             device: str = "auto") -> tuple[dict[str, float], str, list[Path]]:
    """Evaluate a checkpoint on a split (its own data, or ``data=...``): metrics, report, plot files."""
    ckpt = checkpoint.load(Path(ckpt_path))
    cls = task_class(ckpt["config"]["task"])
    parsed = config_mod.parse_overrides(list(overrides or []))
    cfg = config_mod.build(ckpt["config"]["task"], cls.DataConfig, cls.ModelConfig, [ckpt["config"], parsed])
    task = cls(cfg)
    data = task.build_data(splits=(split,))
    dataset = getattr(data, split)
    if dataset is None:
        raise config_mod.ConfigError(f"the dataset has no '{split}' split")
    dev = pick_device(device)
    model = task.build_model(ckpt["classes"], pretrained=False)
    checkpoint.load_model_state(model, ckpt, ckpt_path)
    model.to(dev).eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.train.batch_size, collate_fn=data.collate)
    metrics = evaluate(task, model, loader, dev, final=True)
    out_dir = Path(ckpt_path).resolve().parent.parent / f"val-{split}"
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = task.plots(out_dir, split)
    return metrics, task.report(metrics), plots
