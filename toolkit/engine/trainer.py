"""The training loop. Knows nothing task-specific: the Task supplies data, model, loss and metrics."""
from __future__ import annotations

import contextlib
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from toolkit import config as config_mod
from toolkit._version import __version__
from toolkit.backbones import weights as tv_weights
from toolkit.config import Config
from toolkit.data.loaders import auto_workers, build_loader, seed_everything, set_epoch
from toolkit.engine import checkpoint, distributed, rundir
from toolkit.engine.callbacks import Callback, Checkpointer, EarlyStopping, Monitor, ResultsLogger
from toolkit.engine.optim import Precision, build_ema, build_optimizer, build_scheduler
from toolkit.engine.trackers import build_trackers
from toolkit.errors import ConfigError, TrainingError
from toolkit.safe_io import disk_full_error, is_disk_full, remove_temp_files
from toolkit.tasks.base import Task


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor of a (nested) batch; 4-D float tensors optionally to channels_last."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.ndim == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    return batch


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


TRY_STABLE = "Try a lower train.lr, train.clip_grad=1.0 or train.amp=none"


class Trainer:
    """``Trainer(cfg, task).fit()`` -> final metrics. Writes ``runs/<task>/<name>/``."""

    clock = staticmethod(time.monotonic)  # seconds; for train.time_limit and the time column of results.csv

    def __init__(self, cfg: Config, task: Task, callbacks: list[Callback] | None = None,
                 notes: list[str] | None = None) -> None:
        self.cfg, self.task, self.t = cfg, task, cfg.train
        self.notes = list(notes or [])  # printed first: what the config resolution decided for the user
        self.dist = distributed.setup(self.t.device)
        self.callbacks = callbacks or [Checkpointer(), ResultsLogger(), EarlyStopping(self.t.patience),
                                       *build_trackers(self.t.logger, self.t.project)]
        self.monitor = Monitor(self.t.monitor or task.monitor)
        self.epochs_without_improvement = 0
        self.stop_reason = ""
        self.start_epoch = 0
        self.run_dir = Path()

    # -- set-up -------------------------------------------------------------------------------
    def _setup(self) -> None:
        t = self.t
        if t.threads:
            torch.set_num_threads(t.threads)
        torch.set_flush_denormal(True)  # denormal floats can slow CPU kernels by 10x or more
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(t.seed)
        self.data = self.task.build_data()
        device = self.dist.device
        workers = auto_workers(t.workers, device)
        kw = {"workers": workers, "seed": t.seed, "collate": self.data.collate, "pin_memory": device.type == "cuda"}
        self.train_loader = build_loader(self.data.train, t.batch_size, train=True, distributed=self.dist.enabled,
                                         balance_labels=self.data.info.get("balance_labels"), **kw)
        self.val_loader = build_loader(self.data.val, t.batch_size, train=False, **kw) if self.data.val else None
        self.test_loader = build_loader(self.data.test, t.batch_size, train=False, **kw) if self.data.test else None
        model = self.task.build_model(self.data.classes, pretrained=not t.resume).to(device)
        if not t.resume:
            self.cfg.provenance.update(tv_weights.pin(self.cfg.model))
        if t.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        if t.grad_accum < 1:
            raise ConfigError(f"train.grad_accum={t.grad_accum} must be >= 1")
        self.steps_per_epoch = max(1, math.ceil(len(self.train_loader) / t.grad_accum))
        self.optimizer = build_optimizer(model, t)
        self.scheduler = build_scheduler(self.optimizer, t, self.steps_per_epoch)
        self.precision = Precision(t.amp, device)
        self.ema = build_ema(model, t.ema)
        self.run_dir = self._run_dir()
        resumed = self._resume(Path(t.resume)) if t.resume else None
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.model = DistributedDataParallel(model, device_ids=ids)
        if self.dist.is_main:
            self._prepare_run_dir(resumed)

    def _run_dir(self) -> Path:
        """A resume from a run's ``weights/last.pt`` continues that run; any other checkpoint (``best.pt``, a
        copy elsewhere) starts a new directory, so that no later epoch's files are overwritten."""
        if self.t.resume and rundir.is_run_latest(Path(self.t.resume)):
            return Path(self.t.resume).resolve().parent.parent
        base, name = Path(self.t.project) / self.cfg.task, self.t.name or "exp"
        path = base / name
        if self.dist.is_main and (self.t.resume or not self.t.exist_ok):
            path = rundir.next_free(base, name)
        return Path(distributed.broadcast(str(path), self.dist))

    def _prepare_run_dir(self, resumed: dict[str, Any] | None) -> None:
        """Rank 0, before the first epoch: ``weights/``, ``config.yaml``; removes the temp files of writes a kill
        interrupted; on resume, brings ``results.csv`` and ``best.pt`` in line with the checkpoint
        (``rundir.repair``); a new run in a reused directory (train.exist_ok) starts its own table."""
        weights = self.run_dir / "weights"
        weights.mkdir(parents=True, exist_ok=True)
        stale = remove_temp_files(weights) + remove_temp_files(self.run_dir)
        if stale:
            self._log(f"removed {len(stale)} temp file(s) of writes a kill interrupted: "
                      f"{', '.join(p.name for p in stale)}")
        if resumed is None:
            (self.run_dir / rundir.RESULTS).unlink(missing_ok=True)
        else:
            ckpt = Path(self.t.resume)
            source = None if rundir.is_run_latest(ckpt) else rundir.source_run(ckpt)
            for note in rundir.repair(self.run_dir, resumed, source):
                self._log(note)
        config_mod.save(self.cfg, self.run_dir / "config.yaml")

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "format_version": checkpoint.FORMAT_VERSION,
            "model": unwrap(self.model).state_dict(),
            "ema": self.ema.module.state_dict() if self.ema else None,
            "config": self.cfg.to_dict(),
            "classes": list(self.data.classes),
            "epoch": int(row["epoch"]),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.precision.scaler.state_dict(),
            "rng": _rng_state(),
            "metrics": {k: float(v) for k, v in row.items() if isinstance(v, (int, float))},
            "best": {"metric": self.monitor.metric, "value": self.monitor.best,
                     "stale_epochs": self.epochs_without_improvement},
            "toolkit_version": __version__,
        }

    def save(self, state: dict[str, Any], name: str) -> None:
        checkpoint.save(state, self.run_dir / "weights" / name)

    def _resume(self, path: Path) -> dict[str, Any]:
        """Restore the model, optimiser, schedule, RNG and best-so-far state of checkpoint ``path``; returns it."""
        ckpt = checkpoint.load(path)
        checkpoint.load_model_state(self.model, {**ckpt, "ema": None}, path)
        if self.ema and ckpt.get("ema"):
            self.ema.module.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.precision.scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])
        self.start_epoch = ckpt["epoch"]
        best = ckpt.get("best", {})
        self.monitor = Monitor(best.get("metric", self.monitor.metric), best.get("value"))
        self.epochs_without_improvement = best.get("stale_epochs", 0)
        finished = f"already finished epoch {self.start_epoch} of {self.t.epochs}"
        if self.start_epoch >= self.t.epochs and not rundir.is_run_latest(path):
            raise ConfigError(f"{path} {finished}; raise train.epochs to train longer")
        if self.start_epoch >= self.t.epochs:  # e.g. killed during the final evaluation: redo only that
            self._log(f"resume: {self.run_dir} {finished}; only its final evaluation runs (raise train.epochs "
                      "to train longer)")
        elif rundir.is_run_latest(path):
            self._log(f"resume: {self.run_dir} goes on after epoch {self.start_epoch} (its weights/last.pt)")
        else:
            self._log(f"resume: {path} is not a run's latest checkpoint (weights/last.pt); training goes on after "
                      f"its epoch {self.start_epoch} in a new run directory {self.run_dir}")
        return ckpt

    # -- loop ---------------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        try:
            for note in self.notes:
                self._log(note)
            self._setup()
            for note in self.data.notes:
                self._log(note)
            self._log(self._summary())
            self.t0 = self.clock()
            epoch = self.start_epoch
            requested_epochs = self.t.epochs
            while epoch < self.t.epochs:  # train.epochs may shrink to fit train.time_limit
                started = self.clock()
                row = {"epoch": epoch + 1, **self._train_epoch(epoch)}
                self._check_finite(epoch)
                if self.dist.is_main:
                    row.update(self.evaluate(self.val_loader))
                    row["time"] = round(self.clock() - self.t0, 1)
                    self._track_best(row)
                if epoch - self.start_epoch < 2:
                    self._fit_to_time_limit(epoch, self.clock() - started, requested_epochs)
                if self.dist.is_main:
                    for cb in self.callbacks:
                        cb.on_epoch_end(self, row)
                    self._log(self._epoch_line(row))
                if self._time_up():
                    self.stop_reason = self.stop_reason or f"time limit of {self.t.time_limit} min reached"
                self.stop_reason = distributed.broadcast(self.stop_reason, self.dist)
                if self.stop_reason:
                    self._log(self.stop_reason)
                    break
                epoch += 1
            return self._finish()
        except (OSError, RuntimeError) as e:
            if is_disk_full(e):
                raise disk_full_error(Path(getattr(e, "filename", None) or self.run_dir)) from None
            raise
        finally:
            distributed.cleanup()

    def _track_best(self, row: dict[str, Any]) -> None:
        """Mark ``row["is_best"]`` and count the epochs without improvement of the monitored metric."""
        row["is_best"] = self.monitor.improved(row)
        self.epochs_without_improvement = 0 if row["is_best"] else self.epochs_without_improvement + 1

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        set_epoch(self.train_loader, self.t.seed, epoch)
        self.model.train()
        accum, total, count = self.t.grad_accum, 0.0, 0
        bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}/{self.t.epochs}", leave=False, dynamic_ncols=True,
                   disable=not (self.dist.is_main and self.t.progress), mininterval=1.0)
        for i, batch in enumerate(bar):
            batch = to_device(batch, self.dist.device, self.t.channels_last)
            last_micro = (i + 1) % accum == 0 or i + 1 == len(self.train_loader)
            skip_sync = self.dist.enabled and not last_micro
            with self.model.no_sync() if skip_sync else contextlib.nullcontext():
                with self.precision.autocast():
                    loss = self.task.train_step(self.model, batch)["loss"]
                if distributed.any_rank(not torch.isfinite(loss).item(), self.dist):
                    raise TrainingError(f"loss became {loss.item()} at epoch {epoch + 1}, step {i + 1}; stopped. "
                                        f"{self._last_good()} {TRY_STABLE}")
                self.precision.scaler.scale(loss / accum).backward()
            if last_micro:
                self._optimizer_step()
            total += loss.item()
            count += 1
            if count % 10 == 0:
                bar.set_postfix(loss=f"{total / count:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if self._time_up() and not self.dist.enabled:
                break
        return {"train_loss": total / max(1, count), "lr": self.optimizer.param_groups[0]["lr"]}

    def _check_finite(self, epoch: int) -> None:
        """Stop before a NaN/Inf weight or buffer (e.g. a BatchNorm variance after too large steps) of the model or
        its EMA is evaluated or saved; the loss can stay finite while they blow up."""
        models = {"model": unwrap(self.model), "EMA model": self.ema.module if self.ema else None}
        bad = next((f"the {what}'s {key}" for what, module in models.items() if module is not None
                    for key, value in module.state_dict().items()
                    if value.is_floating_point() and not torch.isfinite(value).all()), "")
        if distributed.any_rank(bool(bad), self.dist):
            raise TrainingError(f"{bad or 'a weight'} became NaN/Inf in epoch {epoch + 1}; stopped. "
                                f"{self._last_good()} {TRY_STABLE}")

    def _last_good(self) -> str:
        last = self.run_dir / "weights" / "last.pt"
        if last.is_file():
            return f"The last good checkpoint is {last}."
        return f"The last good checkpoint is {self.t.resume}." if self.t.resume else "No checkpoint was written."

    def _optimizer_step(self) -> None:
        scaler = self.precision.scaler
        if self.t.clip_grad:
            scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.t.clip_grad)
        scaler.step(self.optimizer)
        scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema:
            self.ema.update_parameters(unwrap(self.model))

    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema else unwrap(self.model)

    def evaluate(self, loader: Any, model: nn.Module | None = None, final: bool = False) -> dict[str, float]:
        if loader is None:
            return {}
        return evaluate(self.task, model or self.eval_model(), loader, self.dist.device, self.precision,
                        self.t.channels_last, self.t.progress, final)

    def _finish(self) -> dict[str, float]:
        """Reload best.pt, evaluate on test (else val), write task plots; rank 0 only."""
        metrics: dict[str, float] = {}
        if self.dist.is_main:
            best = self.run_dir / "weights" / "best.pt"
            model, evaluated = self.eval_model(), best if best.is_file() else "the last epoch's weights (no best.pt)"
            if best.is_file():
                ckpt = checkpoint.load(best)
                checkpoint.load_model_state(model, ckpt, best)
            split, loader = ("test", self.test_loader) if self.test_loader else ("val", self.val_loader)
            metrics = self.evaluate(loader, model, final=True)
            plots = self.task.plots(self.run_dir, split)
            self._log(f"\n{split} metrics of {evaluated}:\n{self.task.report(metrics)}\n"
                      f"plots: {', '.join(p.name for p in plots) or 'none'}\nrun directory: {self.run_dir}")
            metrics = {"split": split, **metrics}
            for cb in self.callbacks:
                cb.on_fit_end(self, metrics)
        distributed.barrier(self.dist)
        return metrics

    def _fit_to_time_limit(self, epoch: int, seconds: float, requested: int) -> None:
        """After each of a run's first two epochs: if the ``requested`` epochs will not fit into
        ``train.time_limit`` at the pace of the latest one (``seconds``, train + val), end the run (and so the
        learning-rate schedule) after the epochs that do, instead of cutting it off mid-schedule. The second
        look corrects the first, whose pace includes one-off start-up costs."""
        if not self.t.time_limit:
            return
        elapsed, seconds = distributed.broadcast((self.clock() - self.t0, seconds), self.dist)
        fit = min(requested, epoch + 1 + max(0, int((self.t.time_limit * 60 - elapsed) // seconds)))
        if fit != self.t.epochs:
            self._log(f"an epoch takes {seconds:.0f} s: {fit} of train.epochs={requested} fit into "
                      f"train.time_limit={self.t.time_limit} min; the schedule now ends after epoch {fit}")
            self.t.epochs = fit
            if self.dist.is_main:
                config_mod.save(self.cfg, self.run_dir / "config.yaml")

    # -- helpers ------------------------------------------------------------------------------
    def _time_up(self) -> bool:
        return bool(self.t.time_limit) and self.clock() - self.t0 > self.t.time_limit * 60

    def _log(self, text: str) -> None:
        if self.dist.is_main:
            tqdm.write(text)

    def _summary(self) -> str:
        n_params = sum(p.numel() for p in self.model.parameters())
        n_train = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        m = self.cfg.model
        return (f"{self.cfg.task}: {len(self.data.train)} train / {len(self.data.val or [])} val / "
                f"{len(self.data.test or [])} test samples, {len(self.data.classes)} classes | "
                f"{type(unwrap(self.model)).__name__}({getattr(m, 'backbone', '')}) {n_params / 1e6:.2f}M params "
                f"({n_train / 1e6:.2f}M trainable) | device {self.dist.device} x{self.dist.world_size} | "
                f"run {self.run_dir}")

    def _epoch_line(self, row: dict[str, Any]) -> str:
        shown = {k: v for k, v in row.items() if isinstance(v, float) and "/" not in k}
        text = "  ".join(f"{k} {v:.4g}" for k, v in shown.items())
        return f"epoch {row['epoch']}/{self.t.epochs}  {text}{'  *best' if row.get('is_best') else ''}"



def _rng_state() -> dict[str, Any]:
    """torch / numpy / python RNG states as tensors and lists (loadable with weights_only=True)."""
    _, keys, pos, *_ = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(keys.astype(np.int64)),
            "numpy_pos": int(pos), "python": list(random.getstate()[1])}


def _set_rng_state(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    np.random.set_state(("MT19937", rng["numpy"].numpy().astype(np.uint32), rng["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(rng["python"]), None))


@torch.no_grad()
def evaluate(task: Task, model: nn.Module, loader: Any, device: torch.device, precision: Precision | None = None,
             channels_last: bool = False, progress: bool = True, final: bool = False) -> dict[str, float]:
    """Run ``task.eval_step`` over ``loader`` and return ``task.compute()``. ``final``: a closing evaluation
    (``toolkit val``, a run's best.pt), not the per-epoch check (see ``Task.reset``)."""
    model.eval()
    task.reset(final)
    autocast = precision.autocast if precision else contextlib.nullcontext
    for batch in tqdm(loader, desc="  eval", leave=False, disable=not progress, mininterval=1.0):
        with autocast():
            task.eval_step(model, to_device(batch, device, channels_last))
    return task.compute()
