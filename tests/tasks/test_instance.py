"""The instance task: train / val / predict / resume on label images the test writes, Mask R-CNN on two
backbones, metrics computed in the files' pixels."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tests.helpers.instances import label_image
from toolkit.cli import main
from toolkit import config
from toolkit.config import build
from toolkit.data.formats.instance_record import InstanceData
from toolkit.engine.run import resolve_config
from toolkit.errors import ConfigError
from toolkit.predict import Predictor
from toolkit.tasks.instance import InstanceDataConfig, InstanceModel, InstanceTask

SHAPE = (32, 48)  # H, W of the test's files: resized 2x (img_size 96), so that true masks go back exactly


def _write_split(root: Path, split: str, n: int, seed: int) -> None:
    """``n`` noisy gray images with 3 bright discs / squares each and their 16-bit label images (DSB2018 layout)."""
    rng = np.random.default_rng(seed)
    (root / split / "images").mkdir(parents=True)
    (root / split / "labels").mkdir(parents=True)
    for i in range(n):
        labels = label_image(seed * 100 + i, 3, SHAPE)
        image = np.where(labels > 0, 190, 40) + rng.normal(0, 12, SHAPE)
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(root / split / "images" / f"{split}{i}.png")
        Image.fromarray(labels.astype(np.uint16)).save(root / split / "labels" / f"{split}{i}.png")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("instances") / "cells"
    _write_split(root, "train", 4, 1)
    _write_split(root, "val", 2, 2)
    return root


def _task(source: Path, backbone: str = "resnet18", **model: object) -> InstanceTask:
    return InstanceTask(build("instance", InstanceDataConfig, InstanceModel, [
        {"data": {"source": str(source), "img_size": 96}, "model": {"backbone": backbone, **model}}]))


class _Truth(nn.Module):
    """Stand-in Mask R-CNN: returns each image's true masks (as given to it in ``truth``) at score 0.9."""

    def __init__(self, truth: list[torch.Tensor]) -> None:
        super().__init__()
        self.truth, self.w = truth, nn.Parameter(torch.zeros(1))

    def forward(self, images: list[torch.Tensor]) -> list[dict]:
        out = []
        for masks in self.truth:
            n = len(masks)
            out.append({"boxes": torch.zeros(n, 4), "scores": torch.full((n,), 0.9),
                        "labels": torch.zeros(n, dtype=torch.int64), "masks": masks[:, None].float()})
        return out


def test_true_masks_score_one_in_the_files_pixels(dataset: Path, tmp_path: Path) -> None:
    task = _task(dataset)
    bundle = task.build_data()
    batch = bundle.collate([bundle.val[i] for i in range(len(bundle.val))])
    assert batch["images"][0].shape[-2:] == (64, 96)
    task.reset(final=True)
    task.eval_step(_Truth([t["masks"] for t in batch["targets"]]), batch)
    m = task.compute()
    assert m["acc50"] == m["f1_50"] == m["acc90"] == 1.0 and m["pq"] == pytest.approx(1.0, abs=0.02)
    assert m["segm_map50_95"] == pytest.approx(1.0) and m["box_map50"] == pytest.approx(1.0)
    assert (m["count_true"], m["count_pred"], m["count_error_pct"]) == (6, 6, 0.0)
    assert "mask mAP@[.5:.95] 1.0000" in task.report(m) and "accuracy" in task.report(m)
    paths = task.plots(tmp_path, "val")
    assert [p.name for p in paths] == ["images_val.csv", "val_predictions.png"]
    rows = list(csv.DictReader(paths[0].open()))
    assert [r["name"] for r in rows] == ["val0.png", "val1.png"] and rows[0]["count_true"] == "3"
    empty = _Truth([t["masks"][:0] for t in batch["targets"]])  # finds nothing
    task.reset()
    task.eval_step(empty, batch)
    m = task.compute()
    assert (m["acc50"], m["recall50"], m["count_pred"], m["count_error_pct"]) == (0.0, 0.0, 0, -100.0)


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v2"])
def test_mask_rcnn_trains_and_returns_masks_on_every_backbone(dataset: Path, backbone: str) -> None:
    torch.manual_seed(0)
    task = _task(dataset, backbone, mask_channels=32, fpn_channels=32)
    bundle = task.build_data()
    model = task.build_model(bundle.classes, pretrained=False)
    model.train()
    batch = bundle.collate([bundle.train[i] for i in range(2)])
    losses = task.train_step(model, batch)
    assert torch.isfinite(losses["loss"]) and "loss_mask" in losses
    losses["loss"].backward()
    assert model.model.roi_heads.mask_predictor.mask_fcn_logits.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        (out,) = model(batch["images"][:1])
    assert out["masks"].shape[1:] == (1, *batch["images"][0].shape[-2:])
    assert len(out["masks"]) == len(out["scores"])
    assert ((out["masks"] >= 0) & (out["masks"] <= 1)).all()


def test_only_mask_rcnn_is_an_instance_architecture(dataset: Path) -> None:
    with pytest.raises(ConfigError, match="maskrcnn"):
        _task(dataset, arch="fasterrcnn").build_model(["nucleus"], pretrained=False)


def test_train_val_predict_resume(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs = tmp_path / "runs"
    common = ["model.pretrained=false", "model.fpn_channels=32", "model.mask_channels=32",
              "model.detections_per_img=20", "data.img_size=96", "train.batch_size=2", "train.progress=false",
              "train.workers=0", f"train.project={runs}"]
    assert main(["train", "instance", f"data={dataset}", "model.backbone=resnet18", "train.epochs=1", *common]) == 0
    run = runs / "instance" / "exp"
    assert main(["val", str(run / "weights" / "best.pt"), "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "mask mAP@[.5:.95]" in out and "box mAP@.5" in out and "F1" in out and "panoptic quality" in out
    m = json.loads((tmp_path / "m.json").read_text())
    keys = {"segm_map50_95", "segm_map50", "box_map50_95", "box_map50", "pq", "count_true", "count_pred",
            *(f"{k}{t}" for k in ("acc", "f1_", "precision", "recall") for t in (50, 60, 70, 80, 90))}
    assert keys <= set(m) and m["count_true"] == 6
    assert all(0 <= m[k] <= 1 for k in keys - {"count_true", "count_pred", "pq"})
    assert m["acc90"] <= m["acc50"] and m["f1_90"] <= m["f1_50"]
    assert len(list(csv.DictReader((run / "val-val" / "images_val.csv").open()))) == 2

    image = dataset / "val" / "images" / "val0.png"
    (result,) = Predictor.from_checkpoint(run / "weights" / "best.pt", device="cpu").predict(image, conf=0.0)
    assert result.label_image.shape == SHAPE and result.label_image.dtype == np.uint16
    assert result.label_image.max() == len(result.scores)
    assert main(["predict", str(run / "weights" / "best.pt"), str(image), "--out", str(tmp_path / "pred")]) == 0
    saved = np.asarray(Image.open(tmp_path / "pred" / "val0_instances.png"))
    assert saved.shape == SHAPE

    assert main(["train", "instance", f"train.resume={run / 'weights' / 'last.pt'}", "train.epochs=2"]) == 0
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and "segm_map50_95" in rows[0]


def test_every_data_and_model_key_is_described() -> None:
    rows = config.describe(resolve_config("instance", []))
    assert [key for key, _, meaning in rows if key.startswith(("data.", "model.")) and not meaning] == []
    assert dict((k, v) for k, v, _ in rows)["model.arch"] == "maskrcnn"


def test_builtin_nuclei_is_the_detectors_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path))
    task = InstanceTask(resolve_config("instance", ["data=nuclei"]))
    bundle = task.build_data(splits=("val",))
    assert bundle.classes == ["nucleus"] and len(bundle.val) == 4 and bundle.train is None
    assert task.cfg.data.predict_tile == 128 and task.cfg.data.img_size == 448
    crowd = torch.cat([bundle.val[i]["crowd"] for i in range(4)])
    assert (crowd == 0).sum() == 28 and (crowd == 1).sum() == 6
    assert bundle.val[0]["masks"].shape[1:] == (448, 448)


def test_a_dataset_without_val_holds_out_images_and_fits_sizes(dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "only_train"
    shutil.copytree(dataset / "train", root / "train")
    task = _task(root)
    task.cfg.data.val_split, task.cfg.data.img_size, task.cfg.model.anchor_size = 0.25, 0, 0
    bundle = task.build_data()
    assert (len(bundle.train), len(bundle.val)) == (3, 1) and isinstance(bundle.val.data, InstanceData)
    assert task.cfg.data.img_size == 64 and task.cfg.model.anchor_size > 0  # 48-px files, rounded up to 32s
    assert any("data.img_size=0" in n for n in bundle.notes) and any("model.anchor_size=0" in n for n in bundle.notes)
