"""Entry points behind the CLI and the Python API: train, validate."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from toolkit import config as config_mod
from toolkit.config import Config
from toolkit.engine import checkpoint, ensemble, rundir
from toolkit.engine.folds import train_folds
from toolkit.engine.trainer import Trainer, evaluate
from toolkit.inference.ensemble import Ensemble
from toolkit.tasks import task_class

# train.* keys a resumed run may change: how long and where it runs, not what it learns
RESUMABLE = ("train.resume", "train.epochs", "train.time_limit", "train.patience", "train.device", "train.workers",
             "train.threads", "train.progress")


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
        return _resume_config(task, Path(resume), overrides), []
    source = str(parsed.get("data", {}).get("source") or cls.DataConfig().source)
    cfg = config_mod.load(task, cls.DataConfig, cls.ModelConfig, overrides, recipes=[task, f"{task}-{source}"])
    user = config_mod.user_keys(overrides)
    notes = []
    if "train.epochs" in user and "train.time_limit" not in user and cfg.train.time_limit:
        notes.append(f"note: all train.epochs={cfg.train.epochs} are trained; the recipe's train.time_limit="
                     f"{cfg.train.time_limit} min is dropped (give train.time_limit=MIN to keep a limit)")
        cfg.train.time_limit = 0.0
    return cfg, notes


def _resume_config(task: str, resume: Path, overrides: list[str]) -> Config:
    """The checkpoint's config with the user's overrides on top; only ``RESUMABLE`` keys may change, as the
    rest (data, model, optimiser, schedule) is fixed by the state the checkpoint holds."""
    cls = task_class(task)
    saved = checkpoint.load(resume)["config"]
    if saved["task"] != task:
        raise config_mod.ConfigError(f"{resume} was trained for task '{saved['task']}', not '{task}'")
    files = [config_mod.read_yaml(Path(o.split("=", 1)[1])) for o in overrides if o.startswith("cfg=")]
    user = config_mod.parse_overrides([o for o in overrides if not o.startswith("cfg=")])
    before = _flat(config_mod.build(task, cls.DataConfig, cls.ModelConfig, [saved]))
    cfg = config_mod.build(task, cls.DataConfig, cls.ModelConfig, [saved, *files, user])
    changed = [f"{k}={v}" for k, v in _flat(cfg).items() if v != before[k] and k not in RESUMABLE]
    if changed:
        raise config_mod.ConfigError(f"a resumed run keeps its checkpoint's settings; {', '.join(changed)} cannot "
                                     f"change (a resume may change {', '.join(RESUMABLE)}); start a new run "
                                     "without train.resume to change the others")
    return cfg


def _flat(cfg: Config) -> dict[str, Any]:
    return {f"{section}.{k}": v for section in config_mod.SECTIONS for k, v in cfg.to_dict()[section].items()}


def train(task: str, overrides: list[str] | None = None, **kwargs: Any) -> dict[str, float]:
    """Train ``task`` with ``a.b=c`` overrides (or keyword ``a__b=c``); returns the final metrics."""
    overrides = list(overrides or []) + [f"{k.replace('__', '.')}={v}" for k, v in kwargs.items()]
    cfg, notes = resolve(task, overrides)
    if cfg.train.folds or cfg.train.fold != -1:
        return train_folds(cfg, notes)
    return Trainer(cfg, task_class(task)(cfg), notes=notes).fit()


def val_dir(ckpt_path: str | Path, split: str = "val", out: str | Path | None = None) -> Path:
    """Where ``toolkit val`` writes: ``out`` when given, else ``<run>/val-<split>`` of the run the checkpoint
    belongs to (``<run>/weights/*.pt`` beside ``<run>/config.yaml``), else ``runs/val/<name>-<split>``."""
    if out:
        return Path(out)
    if Path(ckpt_path).is_dir():  # a run directory: a cross-validation run's folds, or a run's best.pt
        return Path(ckpt_path) / f"val-{split}"
    run = rundir.source_run(Path(ckpt_path))
    return run / f"val-{split}" if run else Path("runs") / "val" / f"{Path(ckpt_path).stem}-{split}"


def validate(ckpt_path: str | Path, overrides: list[str] | None = None, split: str | None = None,
             device: str = "auto", out: str | Path | None = None, backend: str = "auto"
             ) -> tuple[dict[str, float], str, list[Path]]:
    """Evaluate a checkpoint, or an ensemble (``ensemble.checkpoints``: a cross-validation run, several
    checkpoints) beside each of its members, on a split (its own data, or ``data=...``; default
    ``ensemble.default_split``): metrics, report, plot files (written to ``val_dir(ckpt_path, split, out)``).
    ``backend``: auto | torch | onnx (``checkpoint.restore``); a ``.onnx`` file is validated on onnxruntime."""
    split = split or ensemble.default_split(ckpt_path)
    ensemble.check_split(ckpt_path, split)
    task, model, classes = ensemble.restore(ckpt_path, device, overrides, backend)
    data = task.build_data(splits=(split,))
    dataset = getattr(data, split)
    if dataset is None:
        raise config_mod.ConfigError(f"the dataset has no '{split}' split")
    if list(data.classes) != classes:
        raise config_mod.ConfigError(f"the dataset's classes {list(data.classes)} differ from the checkpoint's "
                                     f"{classes}; validate on data labelled with the training classes")
    loader = torch.utils.data.DataLoader(dataset, batch_size=task.cfg.train.batch_size, collate_fn=data.collate)
    metrics = evaluate(task, model, loader, next(model.parameters()).device, final=True)
    out_dir = val_dir(ckpt_path, split, out)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots, report = task.plots(out_dir, split), task.report(metrics)
    if isinstance(model, Ensemble):
        scores, line = ensemble.score_members(ckpt_path, loader, next(model.parameters()).device, overrides, metrics)
        metrics, report = {**metrics, **scores}, f"{report}\n{line}"
    return metrics, report, plots
