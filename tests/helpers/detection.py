"""Detection test data: small images with bright rectangles, written by the tests themselves."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit.config import build
from toolkit.data.detection_dataset import collate
from toolkit.data.formats.coco import write_coco
from toolkit.data.formats.detection import DetectionData, ImageRecord
from toolkit.tasks.detect import DetectData, DetectModel, DetectResult, DetectTask

CLASSES = ["cell", "dot"]


def make_split(folder: Path, n: int, size: int = 64, seed: int = 0, negatives: int = 0) -> DetectionData:
    """``n`` RGB images of ``size`` px with 1-3 filled rectangles each (the last ``negatives`` have none)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        image = np.full((size, size, 3), 20, np.uint8)
        boxes, labels = [], []
        for _ in range(0 if i >= n - negatives else int(rng.integers(1, 4))):
            w, h = rng.integers(size // 6, size // 3, 2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            label = int(rng.integers(0, len(CLASSES)))
            image[y:y + h, x:x + w] = (230, 60, 60) if label == 0 else (60, 230, 60)
            boxes.append([x, y, x + w, y + h])
            labels.append(label)
        path = folder / f"{folder.name}_{i:03d}.png"
        Image.fromarray(image).save(path)
        records.append(ImageRecord(path, size, size, np.asarray(boxes, np.float32).reshape(-1, 4),
                                   np.asarray(labels, np.int64)))
    return DetectionData(list(CLASSES), records)


@pytest.fixture
def split_maker() -> Callable[..., DetectionData]:
    """``make_split(folder, n, size=64, seed=0, negatives=0)``: a split of synthetic images."""
    return make_split


@pytest.fixture
def coco_dataset(tmp_path: Path) -> Path:
    """A COCO dataset folder: train (6 images, 1 negative) and val (3 images)."""
    root = tmp_path / "coco"
    write_coco(make_split(tmp_path / "raw" / "train", 6, negatives=1), root / "train")
    write_coco(make_split(tmp_path / "raw" / "val", 3, seed=1), root / "val")
    return root


def _task(arch: str, backbone: str, size: int) -> DetectTask:
    return DetectTask(build("detect", DetectData, DetectModel, [
        {"data": {"img_size": size}, "model": {"arch": arch, "backbone": backbone}}]))


def _batch(size: int) -> dict:
    images = [torch.rand(3, size, size) for _ in range(2)]
    s = size / 64
    return collate([
        {"image": images[0], "boxes": np.array([[4, 6, 30, 28], [36, 30, 60, 62]], np.float32) * s,
         "labels": np.array([0, 1])},
        {"image": images[1], "boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)},  # negative
    ])


def check_train_step_and_predict(arch: str, backbone: str, size: int) -> None:
    """One train step (finite loss, gradients reach the weights) and a predict in original pixels."""
    torch.manual_seed(0)
    task = _task(arch, backbone, size)
    model = task.build_model(["a", "b"], pretrained=False)
    model.train()
    losses = task.train_step(model, _batch(size))
    assert torch.isfinite(losses["loss"]) and losses["loss"].requires_grad
    losses["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    image = np.random.default_rng(0).random((50, 90, 3), dtype=np.float32)
    (result,) = task.predict(model, [{"image": image, "source": "x.png"}], conf=0.0)
    assert isinstance(result, DetectResult)
    assert result.boxes.shape[1:] == (4,) and len(result.boxes) == len(result.scores) == len(result.labels)
    if len(result.boxes):  # boxes are in ORIGINAL image pixels
        assert result.boxes[:, 2].max() <= 90 + 1e-3 and result.boxes[:, 3].max() <= 50 + 1e-3
        assert set(result.labels.tolist()) <= {0, 1}
    assert model.training  # predict restores the mode it found


@pytest.fixture
def train_and_predict() -> Callable[[str, str, int], None]:
    """``check(arch, backbone, size)``: one train step and a predict must work."""
    return check_train_step_and_predict
