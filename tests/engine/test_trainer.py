"""The loop on real digits: resume exactness, NaN guard, accumulation, EMA, early stopping."""
import hashlib
from pathlib import Path

import pytest
import torch
import yaml

from toolkit.engine import checkpoint
from toolkit.backbones import weights as tv_weights
from toolkit.engine.callbacks import Callback, Checkpointer, EarlyStopping, ResultsLogger
from toolkit.engine.run import resolve_config
from toolkit.engine.trainer import Trainer
from toolkit.errors import TrainingError
from toolkit.tasks.classify import ClassifyTask

BASE = ["data=digits", "model.backbone=simple_cnn", "train.progress=false", "train.batch_size=64",
        "train.lr=0.003"]


def fit(tmp_path: Path, *overrides: str, task_cls: type = ClassifyTask, callbacks: list | None = None) -> dict:
    cfg = resolve_config("classify", BASE + [f"train.project={tmp_path}", *overrides])
    return Trainer(cfg, task_cls(cfg), callbacks).fit()


class KillAfterFirstEpoch(Callback):
    def on_epoch_end(self, trainer, row):
        raise KeyboardInterrupt  # as if the run were killed right after epoch 1 was saved


def test_resume_gives_the_same_final_metrics(tmp_path: Path) -> None:
    straight = fit(tmp_path, "train.epochs=3", "train.name=a")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path, "train.epochs=3", "train.name=b",
            callbacks=[Checkpointer(), ResultsLogger(), KillAfterFirstEpoch()])
    ckpt = tmp_path / "classify" / "b" / "weights" / "last.pt"
    assert checkpoint.load(ckpt)["epoch"] == 1
    resumed = fit(tmp_path, f"train.resume={ckpt}", "train.epochs=3")
    assert resumed["accuracy"] == straight["accuracy"]
    assert resumed["val_loss"] == pytest.approx(straight["val_loss"], rel=1e-6)
    rows = (tmp_path / "classify" / "b" / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 4  # header + epochs 1..3 in the resumed run's own directory
    again = fit(tmp_path, f"train.resume={ckpt}", "train.epochs=3")  # finished: only the final evaluation runs
    assert again["accuracy"] == resumed["accuracy"]
    assert len((ckpt.parent.parent / "results.csv").read_text().split()) == 4
    with pytest.raises(Exception, match="raise train.epochs"):  # not the run's latest checkpoint: nothing to go on with
        fit(tmp_path, f"train.resume={ckpt.parent / 'best.pt'}", "train.epochs=3")
    fit(tmp_path, "train.epochs=2", "train.name=b", "train.exist_ok=true")  # a new run in the same directory
    assert [r.split(",")[0] for r in (tmp_path / "classify" / "b" / "results.csv").read_text().splitlines()[1:]] \
        == ["1", "2"]


class NanAfterFirstEpoch(ClassifyTask):
    steps = 0

    def train_step(self, model, batch):
        out = super().train_step(model, batch)
        NanAfterFirstEpoch.steps += 1
        if NanAfterFirstEpoch.steps > 25:  # digits: 20 steps per epoch
            out["loss"] = out["loss"] * float("nan")
        return out


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="loss became nan at epoch 2"):
        fit(tmp_path, "train.epochs=3", task_cls=NanAfterFirstEpoch)
    last = checkpoint.load(tmp_path / "classify" / "exp" / "weights" / "last.pt")
    assert last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


class InfVarianceInSecondEpoch(ClassifyTask):
    """From step 7 (digits limited to 300: 5 steps per epoch) a BatchNorm variance is inf; the loss stays finite
    (training normalises with batch statistics), the weights and buffers are not."""

    steps = 0

    def train_step(self, model, batch):
        InfVarianceInSecondEpoch.steps += 1
        if InfVarianceInSecondEpoch.steps == 7:
            next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_var.fill_(float("inf"))
        return super().train_step(model, batch)


def test_non_finite_weights_or_buffers_stop_before_they_are_saved(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"running_var became NaN/Inf in epoch 2; stopped. The last good "
                                            r"checkpoint is .*last\.pt"):
        fit(tmp_path, "train.epochs=3", "data.limit=300", task_cls=InfVarianceInSecondEpoch)
    last = checkpoint.load(tmp_path / "classify" / "exp" / "weights" / "last.pt")
    assert last["epoch"] == 1 and all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    with pytest.raises(TrainingError, match="in epoch 1; stopped. No checkpoint was written") as error:
        fit(tmp_path, "train.epochs=2", "data.limit=300", "train.batch_size=32", "train.optimizer=sgd", "train.lr=100",
            "train.deterministic=true")  # variances blow up in the first epoch
    assert "last.pt" not in str(error.value) and not (tmp_path / "classify" / "exp2" / "weights" / "last.pt").exists()


class TenSecondSteps(ClassifyTask):
    """Each training step takes 10 s on the trainer's (fake) clock."""

    now = 0.0

    def train_step(self, model, batch):
        TenSecondSteps.now += 10.0
        return super().train_step(model, batch)


def test_time_limit_shortens_the_run_so_the_schedule_ends_on_time(tmp_path: Path) -> None:
    cfg = resolve_config("classify", BASE + [f"train.project={tmp_path}", "train.epochs=10", "train.time_limit=8",
                                             "train.warmup_epochs=0", "train.min_lr_ratio=0.01"])
    trainer = Trainer(cfg, TenSecondSteps(cfg))
    trainer.clock = lambda: TenSecondSteps.now
    trainer.fit()  # digits: 20 steps = 200 s per epoch; 480 s fit 2 of the 10 epochs
    rows = (tmp_path / "classify" / "exp" / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and "epochs: 2" in (tmp_path / "classify" / "exp" / "config.yaml").read_text()
    final_lr = checkpoint.load(tmp_path / "classify" / "exp" / "weights" / "last.pt")["metrics"]["lr"]
    assert final_lr == pytest.approx(0.003 * 0.01)  # the cosine reached its end, not cut off half-way


class SlowStart(TenSecondSteps):
    """As TenSecondSteps, plus a one-off 210 s on the run's first step (start-up costs)."""

    started = False

    def train_step(self, model, batch):
        TenSecondSteps.now += 0.0 if self.started else 210.0
        self.started = True
        return super().train_step(model, batch)


def test_time_limit_fit_is_corrected_after_the_second_epoch(tmp_path: Path) -> None:
    cfg = resolve_config("classify", BASE + [f"train.project={tmp_path}", "train.epochs=10", "train.time_limit=15",
                                             "train.warmup_epochs=0"])
    TenSecondSteps.now = 0.0
    trainer = Trainer(cfg, SlowStart(cfg))
    trainer.clock = lambda: TenSecondSteps.now
    trainer.fit()  # epoch 1 takes 410 s: 2 epochs seem to fit 900 s; epoch 2 takes 200 s: 3 do
    rows = (tmp_path / "classify" / "exp" / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 4 and "epochs: 3" in (tmp_path / "classify" / "exp" / "config.yaml").read_text()
    assert TenSecondSteps.now <= 900


def test_accumulation_ema_clip_and_early_stop(tmp_path: Path) -> None:
    metrics = fit(tmp_path, "train.epochs=6", "train.grad_accum=2", "train.ema=0.9", "train.clip_grad=1.0",
                  "train.patience=1", "train.monitor=val_loss", "train.optimizer=sgd", "train.lr=0.05")
    assert metrics["accuracy"] > 0.5
    ckpt = checkpoint.load(tmp_path / "classify" / "exp" / "weights" / "last.pt")
    assert ckpt["ema"] is not None and ckpt["best"]["metric"] == "val_loss"
    assert ckpt["scheduler"]["last_epoch"] == ckpt["epoch"] * 10  # 20 batches / accumulation 2


def test_digits_recipe_reaches_97_percent(tmp_path: Path) -> None:
    cfg = resolve_config("classify", ["data=digits", f"train.project={tmp_path}", "train.progress=false"])
    metrics = Trainer(cfg, ClassifyTask(cfg)).fit()
    assert metrics["split"] == "test" and metrics["accuracy"] >= 0.97


class Rows(Callback):
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def on_epoch_end(self, trainer, row):
        self.rows.append(dict(row))


def test_early_stopping_needs_no_checkpointer(tmp_path: Path) -> None:
    """The trainer decides "best" and counts stale epochs; a callback list without Checkpointer still stops."""
    seen = Rows()
    fit(tmp_path, "train.epochs=8", "train.lr=1e-12", "train.warmup_epochs=0", "train.monitor=val_loss",
        callbacks=[seen, EarlyStopping(2)])  # steps below float32 resolution: val_loss never improves after epoch 1
    assert [r["epoch"] for r in seen.rows] == [1, 2, 3]
    assert [r["is_best"] for r in seen.rows] == [True, False, False]
    assert not (tmp_path / "classify" / "exp" / "weights" / "best.pt").exists()  # no Checkpointer, no files


def test_pretrained_weights_are_pinned_in_config_and_checkpoint(tmp_path: Path) -> None:
    """``model.pretrained=true`` is recorded as the enum member that was loaded and the file's SHA-256."""
    fit(tmp_path, "train.epochs=1", "data.limit=40", "model.backbone=mobilenet_v2", "model.pretrained=true",
        "data.img_size=32", "train.batch_size=20")
    run = tmp_path / "classify" / "exp"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    member = tv_weights.resolve("mobilenet_v2", True)
    cached = tv_weights.cache_file(member)
    assert saved["model"]["pretrained"] == member.name == "IMAGENET1K_V1"
    assert saved["provenance"]["pretrained"] == "MobileNet_V2_Weights.IMAGENET1K_V1"
    assert saved["provenance"]["pretrained_sha256"] == hashlib.sha256(cached.read_bytes()).hexdigest()
    ckpt = checkpoint.load(run / "weights" / "last.pt")
    assert ckpt["config"]["provenance"] == saved["provenance"]
