"""The task's COCO mAP equals pycocotools' COCOeval run directly on the same predictions."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn

from toolkit.config import build
from toolkit.tasks.detect import DetectData, DetectModel, DetectTask

CLASSES = ["a", "b", "c"]


def _random_case(seed: int, n_images: int = 12, crowd: bool = False) -> tuple[list[dict], list[dict]]:
    """Ground truth and noisy predictions (with misses, false positives and negatives); with ``crowd``
    about a quarter of the ground-truth boxes are ignore regions."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for i in range(n_images):
        n = 0 if i % 5 == 4 else int(rng.integers(1, 6))
        xy = rng.uniform(0, 200, (n, 2))
        wh = rng.uniform(4, 120, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(0, len(CLASSES), n)
        keep = rng.random(n) > 0.2
        noisy = boxes[keep] + rng.normal(0, 4, (keep.sum(), 4))
        extra = np.concatenate([rng.uniform(0, 200, (2, 2)), rng.uniform(210, 330, (2, 2))], 1)
        p_boxes = np.concatenate([noisy, extra])
        p_boxes[:, 2:] = np.maximum(p_boxes[:, 2:], p_boxes[:, :2] + 1)
        p_labels = np.concatenate([labels[keep], rng.integers(0, len(CLASSES), 2)])
        boxes, p_boxes = boxes.round(), p_boxes.round()  # exact in float32, so areas agree bit for bit
        iscrowd = (rng.random(n) < 0.25) & crowd
        gts.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels),
                    "iscrowd": torch.tensor(iscrowd, dtype=torch.int64)})
        preds.append({"boxes": torch.tensor(p_boxes, dtype=torch.float32),
                      "scores": torch.tensor(rng.uniform(0.05, 1, len(p_labels)), dtype=torch.float32),
                      "labels": torch.tensor(p_labels)})
    return gts, preds


class _Replay(nn.Module):
    """A stand-in detector returning the stored predictions for the batch's images."""

    def __init__(self, preds: list[dict]) -> None:
        super().__init__()
        self.preds = preds
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, images: list[torch.Tensor]) -> list[dict]:
        return [self.preds[int(im[0, 0, 0])] for im in images]


def _cocoeval(gts: list[dict], preds: list[dict]) -> np.ndarray:
    images = [{"id": i, "width": 400, "height": 400} for i in range(len(gts))]
    anns, dets = [], []
    for i, (g, p) in enumerate(zip(gts, preds)):
        for b, lab, crowd in zip(g["boxes"].tolist(), g["labels"].tolist(), g["iscrowd"].tolist()):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": lab, "bbox": [b[0], b[1], w, h],
                         "area": w * h, "iscrowd": crowd})
        for b, s, lab in zip(p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist()):
            dets.append({"image_id": i, "category_id": lab, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                         "score": s})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": i, "name": c} for i, c in enumerate(CLASSES)]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("seed, crowd", [(0, False), (1, False), (2, True)])
def test_map_equals_direct_cocoeval(seed: int, crowd: bool) -> None:
    gts, preds = _random_case(seed, crowd=crowd)
    assert crowd == any(g["iscrowd"].any() for g in gts)
    task = DetectTask(build("detect", DetectData, DetectModel, []))
    task.classes = CLASSES
    task.reset()
    model = _Replay(preds)
    for start in range(0, len(gts), 5):
        idx = range(start, min(start + 5, len(gts)))
        task.eval_step(model, {"images": [torch.full((3, 8, 8), float(i)) for i in idx],
                               "targets": [gts[i] for i in idx]})
    metrics = task.compute()
    stats = _cocoeval(gts, preds)
    assert 0.05 < metrics["map50_95"] < 0.95  # a non-trivial case
    for key, k in (("map50_95", 0), ("map50", 1), ("map75", 2), ("map_small", 3), ("map_medium", 4),
                   ("map_large", 5), ("mar100", 8)):
        assert metrics[key] == pytest.approx(stats[k], abs=1e-6), key
    assert "ap/a" in metrics and "ap/c" in metrics


def _map(target: dict, pred: dict) -> dict:
    task = DetectTask(build("detect", DetectData, DetectModel, []))
    task.classes = CLASSES
    task.reset()
    task.eval_step(_Replay([pred]), {"images": [torch.zeros(3, 8, 8)], "targets": [target]})
    return task.compute()


def test_an_ignore_region_is_neither_required_nor_a_false_positive() -> None:
    box, region = [10.0, 10.0, 50.0, 50.0], [100.0, 100.0, 140.0, 140.0]
    both = {"boxes": torch.tensor([region, box]), "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([0, 0])}
    only_box = {k: v[1:] for k, v in both.items()}
    ignored = {"boxes": torch.tensor([box, region]), "labels": torch.tensor([0, 0]), "iscrowd": torch.tensor([0, 1])}
    unlabelled = {"boxes": torch.tensor([box]), "labels": torch.tensor([0]), "iscrowd": torch.tensor([0])}
    assert _map(unlabelled, both)["map50"] == pytest.approx(0.5, abs=0.01)  # the region's detection: a top FP
    assert _map(ignored, both)["map50"] == pytest.approx(1.0)  # ... ignored
    assert _map(ignored, only_box)["map50"] == pytest.approx(1.0)  # and not missed when not detected
