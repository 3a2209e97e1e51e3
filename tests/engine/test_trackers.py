"""Experiment tracking (toolkit/engine/trackers.py), read back the way a user reads it: TensorBoard's event files
with TensorBoard's own EventAccumulator, MLflow's local store with MlflowClient; a resumed run goes on in both."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from toolkit.cli import main
from toolkit.engine.run import train

TINY = ["data=digits", "data.limit=200", "model.backbone=simple_cnn", "train.progress=false", "train.batch_size=64",
        "train.lr=0.003", "train.logger=tensorboard,mlflow"]


def test_tensorboard_and_mlflow_log_scores_config_and_figures(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = train("classify", [*TINY, "train.epochs=1", f"train.project={tmp_path}"])
    run = tmp_path / "classify" / "exp"
    final = train("classify", [f"train.resume={run / 'weights' / 'last.pt'}", "train.epochs=2"])

    events = EventAccumulator(str(run), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train_loss", "val_loss", "accuracy", "lr", "test/accuracy", "precision/0"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("accuracy")] == [1, 2]  # the resumed run went on in the same log
    assert [e.value for e in events.Scalars("test/accuracy")][-1] == pytest.approx(final["accuracy"], rel=1e-6)
    assert {"confusion_matrix", "results"} <= set(tags["images"])
    config = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "backbone: simple_cnn" in config and "logger: tensorboard,mlflow" in config

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (mlrun,) = client.search_runs([client.get_experiment_by_name("classify").experiment_id])
    assert mlrun.info.run_name == "exp" and mlrun.info.status == "FINISHED"
    assert mlrun.data.params["model.backbone"] == "simple_cnn" and mlrun.data.params["train.epochs"] == "1"
    history = client.get_metric_history(mlrun.info.run_id, "accuracy")
    assert [m.step for m in history] == [1, 2]
    assert [m.value for m in client.get_metric_history(mlrun.info.run_id, "test/accuracy")] == pytest.approx(
        [first["accuracy"], final["accuracy"]], rel=1e-6)
    artifacts = {a.path for a in client.list_artifacts(mlrun.info.run_id)}
    figures = {a.path for a in client.list_artifacts(mlrun.info.run_id, "figures")}
    assert "config.yaml" in artifacts and "figures/confusion_matrix.png" in figures
    assert (tmp_path / "mlartifacts").is_dir()


def test_an_unknown_logger_is_one_line(capsys) -> None:
    assert main(["train", "classify", "data=digits", "train.logger=wandb"]) == 2
    assert capsys.readouterr().err.startswith("error: train.logger='wandb': unknown wandb; valid: auto, tensorboard")
