"""The detection task: built-in nuclei data, negatives, tiled prediction, results and plots."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from toolkit.config import build
from toolkit.data.detection_check import check
from toolkit.data.detection_dataset import collate
from toolkit.data.nuclei import prepare_nuclei
from toolkit.inference.tiles import tile_windows
from toolkit.tasks.detect import DetectData, DetectModel, DetectTask


def _task(**data: object) -> DetectTask:
    model = {"arch": "fcos", "backbone": "simple_cnn", "pretrained": False}
    return DetectTask(build("detect", DetectData, DetectModel, [{"data": {"img_size": 64, **data}, "model": model}]))


def test_nuclei_prepare_is_idempotent_with_a_spatial_split(tmp_path: Path) -> None:
    root = prepare_nuclei(tmp_path / "nuclei")
    info = json.loads((root / "info.json").read_text())
    assert info["val"] == {"images": 4, "boxes": 28, "ignore_regions": 6, "instances": 28,
                           "instance_ignore_regions": 6} and info["train"]["images"] == 35
    assert check(root / "coco") == []
    mask = np.asarray(Image.open(next((root / "masks" / "val" / "masks").glob("*.png"))))
    assert set(np.unique(mask)) == {0, 1}
    stamp = (root / "coco" / "val" / "annotations.json").stat().st_mtime_ns
    prepare_nuclei(root)
    assert (root / "coco" / "val" / "annotations.json").stat().st_mtime_ns == stamp
    (root / "info.json").write_text(json.dumps({**info, "version": 1}))  # a copy made by an older rule
    prepare_nuclei(root)
    assert (root / "coco" / "val" / "annotations.json").stat().st_mtime_ns != stamp
    assert json.loads((root / "info.json").read_text()) == info


def test_nuclei_ignore_regions_are_nuclei_cut_by_a_tile_edge(tmp_path: Path) -> None:
    """Only a cut nucleus can keep less than 30% of its area, and a cut always reaches the tile's edge."""
    root = prepare_nuclei(tmp_path / "nuclei")
    for split in ("train", "val"):
        anns = json.loads((root / "coco" / split / "annotations.json").read_text())["annotations"]
        regions = [a["bbox"] for a in anns if a["iscrowd"]]
        assert regions and len(regions) < len(anns) / 4
        for x, y, w, h in regions:
            assert min(x, y) == 0 or max(x + w, y + h) == 128, (split, x, y, w, h)


def test_builtin_nuclei_sets_prediction_tiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path))
    task = _task(source="nuclei")
    bundle = task.build_data()
    assert bundle.classes == ["nucleus"] and len(bundle.val) == 4
    assert task.cfg.data.predict_tile == 128
    crowd = torch.cat([bundle.val[i]["crowd"] for i in range(4)])
    assert (crowd == 0).sum() == 28 and (crowd == 1).sum() == 6


@pytest.mark.parametrize("arch", ["fasterrcnn", "retinanet", "fcos", "ssdlite"])
def test_negatives_only_batch_trains(coco_dataset: Path, arch: str) -> None:
    task = _task(source=str(coco_dataset))
    task.cfg.model.arch = arch
    bundle = task.build_data()
    negative = next(s for s in (bundle.train[i] for i in range(len(bundle.train))) if len(s["boxes"]) == 0)
    assert negative["boxes"].shape == (0, 4) and negative["labels"].shape == (0,)
    model = task.build_model(bundle.classes)
    model.train()
    loss = task.train_step(model, collate([negative, negative]))["loss"]
    assert torch.isfinite(loss)
    loss.backward()


class _CenterBox(nn.Module):
    """Stand-in detector: one box over the middle fifth of every input, score 0.9, class 1."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, images: list[torch.Tensor]) -> list[dict]:
        out = []
        for im in images:
            h, w = im.shape[1:]
            out.append({"boxes": torch.tensor([[0.4 * w, 0.4 * h, 0.6 * w, 0.6 * h]]),
                        "scores": torch.tensor([0.9]), "labels": torch.tensor([1])})
        return out


def test_large_images_are_predicted_in_tiles_in_original_pixels(tmp_path: Path) -> None:
    task = _task(predict_tile=100)
    task.classes = ["a", "b"]
    image = np.zeros((250, 400, 3), np.float32)
    (res,) = task.predict(_CenterBox(), [{"image": image, "source": "big.png"}], conf=0.5, iou=0.5)
    windows = tile_windows(250, 400, 100)
    assert len(res.boxes) == len(windows)  # one box per tile, none touches a tile edge
    for (y, x, h, w), box in zip(sorted(windows), sorted(res.boxes.tolist(), key=lambda b: (b[1], b[0]))):
        assert np.allclose(box, [x + 0.4 * w, y + 0.4 * h, x + 0.6 * w, y + 0.6 * h], atol=0.5)
    assert set(res.labels.tolist()) == {1}
    whole = _task().predict(_CenterBox(), [{"image": image, "source": "big.png"}])[0]
    assert np.allclose(whole.boxes, [[160, 100, 240, 150]], atol=0.5)  # resized to 64 px and back
    d = res.to_dict()
    assert json.loads(json.dumps(d))["width"] == 400 and d["detections"][0]["class"] == "b"
    assert d["count"] == len(windows)
    coco = res.to_coco(image_id=7)
    assert coco[0]["category_id"] == 2 and coco[0]["image_id"] == 7 and len(coco[0]["bbox"]) == 4
    (png,) = res.save(tmp_path)
    assert png.name == "big_pred.png" and Image.open(png).size[0] > 0


def test_conf_filters_and_plots_are_written(coco_dataset: Path, tmp_path: Path) -> None:
    task = _task(source=str(coco_dataset))
    bundle = task.build_data()
    assert task.predict(_CenterBox(), [{"image": np.zeros((64, 64, 3), np.float32)}], conf=0.95)[0].boxes.shape == (0, 4)
    task.reset()
    task.eval_step(_CenterBox(), collate([bundle.val[i] for i in range(len(bundle.val))]))
    metrics = task.compute()
    assert 0 <= metrics["map50_95"] <= 1 and "ap/cell" in metrics and "mAP@[.5:.95]" in task.report(metrics)
    paths = task.plots(tmp_path, "val")
    assert [p.name for p in paths] == ["val_pr_curve.png", "val_predictions.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


class _Fixed(nn.Module):
    """Stand-in detector returning the given detections."""

    def __init__(self, detections: list[dict]) -> None:
        super().__init__()
        self.detections, self.w = detections, nn.Parameter(torch.zeros(1))

    def forward(self, images: list[torch.Tensor]) -> list[dict]:
        return self.detections


def test_size_buckets_are_computed_in_the_files_pixels(coco_dataset: Path) -> None:
    task = _task(source=str(coco_dataset), img_size=160)  # 64-px files, boxes 10-21 px, shown 2.5x larger
    bundle = task.build_data()
    batch = collate([bundle.val[i] for i in range(len(bundle.val))])
    assert batch["scale"].tolist() == [2.5] * 3
    sides = torch.cat([t["boxes"][:, 2:] - t["boxes"][:, :2] for t in batch["targets"]])
    assert (sides.prod(1) >= 32 ** 2).any()  # some boxes would count as medium at the resized scale
    task.reset()
    task.eval_step(_Fixed([{**t, "scores": torch.ones(len(t["labels"]))} for t in batch["targets"]]), batch)
    metrics = task.compute()
    assert metrics["map_small"] == pytest.approx(1.0) and np.isnan(metrics["map_medium"])


def test_test_time_views_serve_closing_evaluations_and_predict_not_the_per_epoch_check(coco_dataset: Path) -> None:
    task = DetectTask(build("detect", DetectData, DetectModel, [
        {"data": {"img_size": 64, "source": str(coco_dataset)}, "model": {"backbone": "simple_cnn", "tta": "d4"}}]))
    batch = collate([task.build_data().val[0]])
    calls = []

    class Counting(_CenterBox):
        def forward(self, images):
            calls.append(len(images))
            return super().forward(images)

    for final, views in ((False, 1), (True, 8)):
        calls.clear()
        task.reset(final)
        task.eval_step(Counting(), batch)
        assert calls == [1] * views
    calls.clear()
    (result,) = task.predict(Counting(), [{"image": np.zeros((64, 64, 3), np.float32)}], conf=0.5)
    assert calls == [1] * 8 and np.allclose(result.boxes, [[25.6, 25.6, 38.4, 38.4]], atol=1e-3)
    calls.clear()
    task.predict(Counting(), [{"image": np.zeros((64, 64, 3), np.float32)}], tta="none")
    assert calls == [1]
