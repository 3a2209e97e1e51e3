"""SegmentTask end to end on a small mask dataset: data, train step, metrics, plots, prediction."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit import config
from toolkit.tasks.segment import SegmentData, SegmentModel, SegmentTask

from tests.helpers.segmentation import blob_sample


def make_task(source: Path, **model: object) -> SegmentTask:
    overrides = [f"data.source={source}", "data.crop=32", "model.backbone=simple_cnn", "train.seed=0"]
    overrides += [f"model.{k}={v}" for k, v in model.items()]
    cfg = config.build("segment", SegmentData, SegmentModel, [config.parse_overrides(overrides)])
    return SegmentTask(cfg)


def test_task_trains_evaluates_plots_and_predicts(mask_dataset: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = make_task(mask_dataset, loss="ce")
    data = task.build_data()
    assert data.classes == ["background", "disk"] and task.cfg.data.channels == 1 and data.info["crop"] == 32
    model = task.build_model(data.classes, pretrained=False)
    loader = torch.utils.data.DataLoader(data.train, batch_size=3, collate_fn=data.collate)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    losses = []
    for _ in range(8):
        for batch in loader:
            assert batch["image"].shape == (3, 1, 32, 32)
            loss = task.train_step(model, batch)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert np.mean(losses[-2:]) < losses[0]
    model.eval()
    task.reset()
    for batch in torch.utils.data.DataLoader(data.val, batch_size=2, collate_fn=data.collate):
        assert batch["image"].shape[-2:] == (48, 52)  # full images of different sizes, padded
        task.eval_step(model, batch)
    metrics = task.compute()
    assert {"dice", "iou", "mdice", "miou", "pixel_acc", "val_loss", "dice/disk", "iou/background"} <= set(metrics)
    assert 0 <= metrics["dice"] <= 1 and not math.isnan(metrics["pixel_acc"])
    assert "disk" in task.report(metrics)
    plots = task.plots(tmp_path, "val")
    assert plots and plots[0].stat().st_size > 1000
    assert task.examples[0][1].shape in ((40, 52), (48, 48))  # padding cut off before plotting

    image, _ = blob_sample(np.random.default_rng(3), 97, 131)
    Image.fromarray(image).save(tmp_path / "odd.png")
    result = task.predict(model, [task.read_input(tmp_path / "odd.png")])[0]
    assert result.mask.shape == (97, 131)
    summary = result.to_dict()
    assert summary["height"] == 97 and sum(summary["pixels"].values()) == 97 * 131
    written = result.save(tmp_path / "out")
    assert [p.name for p in written] == ["odd_mask.png", "odd_overlay.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(written[0])), result.mask)
    assert Image.open(written[1]).size == (131, 97)


def test_trainer_runs_segment_and_checkpoint_predicts(mask_dataset: Path, tmp_path: Path) -> None:
    from toolkit import train

    metrics = train("segment", [f"data={mask_dataset}", "data.crop=32", "model.backbone=simple_cnn", "model.pretrained=false",
                                "model.head=fpn", "train.epochs=2", "train.batch_size=4", "train.progress=false",
                                f"train.project={tmp_path}"])
    assert metrics["split"] == "val" and 0 <= metrics["dice"] <= 1
    run = tmp_path / "segment" / "exp"
    assert (run / "weights" / "best.pt").is_file() and (run / "predictions_val.png").is_file()
    from toolkit.engine.run import validate
    from toolkit.predict import Predictor

    again, report, plots = validate(run / "weights" / "best.pt", device="cpu")
    assert again["dice"] == pytest.approx(metrics["dice"]) and "Dice" in report and plots

    predictor = Predictor.from_checkpoint(run / "weights" / "best.pt", device="cpu")
    image, _ = blob_sample(np.random.default_rng(5), 97, 131)
    Image.fromarray(image).convert("RGB").save(tmp_path / "odd_rgb.png")
    from_file, from_array = predictor.predict([tmp_path / "odd_rgb.png", np.stack([image] * 3, axis=2)])
    assert from_file.mask.shape == from_array.mask.shape == (97, 131)
    assert from_file.classes == ["background", "disk"]
    np.testing.assert_array_equal(from_file.mask, from_array.mask)


@pytest.mark.parametrize("loss", ["dice", "dicece", "focal"])
def test_losses_through_task(mask_dataset: Path, loss: str) -> None:
    task = make_task(mask_dataset, loss=loss, head="lraspp")
    data = task.build_data(splits=("train",))
    model = task.build_model(data.classes, pretrained=False)
    batch = data.collate([data.train[0], data.train[1]])
    out = task.train_step(model, batch)["loss"]
    out.backward()
    assert torch.isfinite(out)


def test_otsu_baseline_scores_bright_blobs(mask_dataset: Path) -> None:
    from toolkit.tasks.segment import otsu_baseline

    metrics = otsu_baseline(str(mask_dataset), "val")
    assert metrics["dice/disk"] > 0.9 and set(metrics) >= {"dice", "iou", "pixel_acc"}
