"""Semantic segmentation metrics from torchmetrics, accumulated over every pixel of a split.

Dice = F1 score and IoU = Jaccard index per class, from one dataset-wide confusion count
(``multidim_average="global"``: pixels of all images pooled, as mmsegmentation's mIoU); pixel
accuracy = micro accuracy. Pixels equal to ``ignore_index`` (including collate padding) count
nowhere. A class absent from both ground truth and prediction over the whole split has no
defined Dice/IoU: it is reported as NaN and left out of the means. A class absent from the
ground truth but predicted scores 0.

Keys: ``dice``/``iou`` = mean over the foreground classes (all but ``background``; every class
when ``background`` < 0), ``mdice``/``miou`` = mean over all classes, ``pixel_acc``,
``dice/<class>``, ``iou/<class>``.
"""
from __future__ import annotations

import math

import torch


class SegMetrics:
    def __init__(self, classes: list[str], ignore_index: int, background: int = 0) -> None:
        import torchmetrics.classification as tmc  # here, not at the top: prediction starts 0.7 s sooner without it
        from torchmetrics import MetricCollection

        self.classes = list(classes)
        self.background = background if 0 <= background < len(classes) and len(classes) > 1 else -1
        kw = {"num_classes": max(2, len(classes)), "ignore_index": ignore_index, "sync_on_compute": False}
        self.metrics = MetricCollection({
            "dice": tmc.MulticlassF1Score(average="none", **kw),
            "iou": tmc.MulticlassJaccardIndex(average="none", **kw),
            "pixel_acc": tmc.MulticlassAccuracy(average="micro", **kw),
            "stats": tmc.MulticlassStatScores(average="none", **kw),
        })

    def reset(self) -> None:
        self.metrics.reset()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred`` and ``target``: (B, H, W) int64 class indices on any device."""
        self.metrics.update(pred.cpu(), target.cpu())

    def compute(self) -> dict[str, float]:
        values = self.metrics.compute()
        tp, fp, _, fn, _ = values["stats"].unbind(-1)
        empty = (tp + fp + fn) == 0
        out = {"pixel_acc": float(values["pixel_acc"])}
        foreground = [i for i in range(len(self.classes)) if i != self.background]
        for name in ("dice", "iou"):
            per_class = values[name].double().masked_fill(empty, math.nan)[: len(self.classes)]
            out[name] = _nanmean(per_class[foreground])
            out[f"m{name}"] = _nanmean(per_class)
            out.update({f"{name}/{c}": float(v) for c, v in zip(self.classes, per_class)})
        return out


def _nanmean(values: torch.Tensor) -> float:
    kept = values[~values.isnan()]
    return float(kept.mean()) if len(kept) else math.nan
