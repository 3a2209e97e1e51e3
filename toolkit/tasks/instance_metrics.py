"""Instance-segmentation metrics: COCO mask / box mAP (pycocotools through torchmetrics), the microscopy field's
matching scores at IoU 0.5 .. 0.9 (the StarDist paper's: optimal one-to-one matching by IoU; precision, recall,
F1, accuracy = TP / (TP + FP + FN)), panoptic quality (MONAI) and object counts.

Crowd objects (COCO ``iscrowd``) are ignore regions: a prediction matching none of the true objects but covering
a crowd region by at least the IoU threshold of its own area (COCO's crowd rule) is neither a hit nor a miss.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from toolkit.data.formats.instance_record import boxes_of, encode
from toolkit.tasks.detect import COCO_IOUS, COCO_RECALLS
from toolkit.viz.instance import label_image

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def match_ious(iou: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of a (M true, N predicted) IoU matrix (StarDist's rule: most pairs with
    IoU >= ``thresh``, then the highest IoU): (true indices, predicted indices) of the matched pairs."""
    if iou.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    hit = iou >= thresh
    cost = -(hit.astype(np.float64) + iou / (2 * max(int(hit.sum()), 1))) * hit
    rows, cols = linear_sum_assignment(cost)
    keep = hit[rows, cols]
    return rows[keep], cols[keep]


def scores(tp: float, fp: float, fn: float, iou_sum: float) -> dict[str, float]:
    """precision, recall, f1, accuracy (TP / (TP + FP + FN)), mean_matched_iou and pq from the counts and the
    summed IoU of the matched pairs. An undefined ratio is 0 (StarDist's rule; e.g. precision without
    predictions), except that everything is 1 where nothing was to be found and nothing was found."""
    tp, fp, fn, iou_sum = float(tp), float(fp), float(fn), float(iou_sum)

    def ratio(num: float, den: float) -> float:
        return num / den if den else float(tp + fp + fn == 0)

    return {"tp": tp, "fp": fp, "fn": fn, "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn), "accuracy": ratio(tp, tp + fp + fn),
            "mean_matched_iou": iou_sum / tp if tp else 0.0, "pq": ratio(iou_sum, tp + fp / 2 + fn / 2)}


def label_ious(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(M, N) IoU of the objects of two (H, W) integer label images (0 background; ids in increasing order)."""
    t_ids, t_inv = np.unique(truth, return_inverse=True)
    p_ids, p_inv = np.unique(pred, return_inverse=True)
    overlap = np.bincount(t_inv.ravel() * len(p_ids) + p_inv.ravel(),
                          minlength=len(t_ids) * len(p_ids)).reshape(len(t_ids), len(p_ids))
    union = overlap.sum(1, keepdims=True) + overlap.sum(0, keepdims=True) - overlap
    iou = overlap / np.maximum(union, 1)
    return iou[t_ids > 0][:, p_ids > 0]


def matching(truth: np.ndarray, pred: np.ndarray, thresh: float = 0.5) -> dict[str, float]:
    """The matching scores (``scores``) of a predicted (H, W) label image against the true one at IoU ``thresh``."""
    iou = label_ious(truth, pred)
    rows, cols = match_ious(iou, thresh)
    tp = len(rows)
    return scores(tp, iou.shape[1] - tp, iou.shape[0] - tp, float(iou[rows, cols].sum()))


class InstanceMetrics:
    """Accumulates images: ``update(preds, targets, names)`` with per image ``pred = {"masks": (N, H, W),
    "scores": (N,), "labels": (N,)}`` and ``target = {"masks": (M, H, W), "labels": (M,), "iscrowd": (M,)}``
    (numpy or torch). The matching scores, PQ and counts use predictions with score >= ``conf``; COCO mAP uses
    all of them."""

    def __init__(self, num_classes: int, conf: float = 0.5) -> None:
        from monai.metrics import PanopticQualityMetric
        from torchmetrics.detection import MeanAveragePrecision

        self.num_classes, self.conf = num_classes, conf
        self.map = MeanAveragePrecision(box_format="xyxy", iou_type=("bbox", "segm"), backend="pycocotools",
                                        iou_thresholds=COCO_IOUS, rec_thresholds=COCO_RECALLS, sync_on_compute=False)
        self.pq = PanopticQualityMetric(num_classes, reduction="sum_batch", return_confusion_matrix=True)
        self.counts: list[np.ndarray] = []  # per image: (len(THRESHOLDS), 4) tp, fp, fn, iou_sum
        self.rows: list[dict[str, Any]] = []

    def update(self, preds: list[dict[str, Any]], targets: list[dict[str, Any]],
               names: list[str] | None = None) -> None:
        for i, (pred, target) in enumerate(zip(preds, targets)):
            pred, target = _numpy(pred), _numpy(target)
            self.map.update([_coco_item(pred, scores=True)], [_coco_item(target)])
            name = names[i] if names else str(len(self.rows))
            self._add(pred, target, name)

    def _add(self, pred: dict[str, np.ndarray], target: dict[str, np.ndarray], name: str) -> None:
        keep = pred["scores"] >= self.conf
        p_masks, p_labels, p_scores = pred["masks"][keep], pred["labels"][keep], pred["scores"][keep]
        crowd = target.get("iscrowd", np.zeros(len(target["masks"]), np.int64)).astype(bool)
        t_masks, t_labels = target["masks"][~crowd], target["labels"][~crowd]
        p_rles, t_rles, c_rles = encode(p_masks), encode(t_masks), encode(target["masks"][crowd])
        iou = _iou(t_rles, p_rles, crowd=False)
        covered = _iou(c_rles, p_rles, crowd=True).max(axis=0, initial=0.0)  # share of each prediction on crowd
        counts, kept = np.zeros((len(THRESHOLDS), 4)), np.ones(len(p_rles), bool)
        for k, thresh in enumerate(THRESHOLDS):
            rows, cols = match_ious(iou, thresh)
            ignored = covered >= thresh
            ignored[cols] = False
            tp = len(rows)
            counts[k] = tp, len(p_rles) - tp - ignored.sum(), len(t_rles) - tp, iou[rows, cols].sum()
            kept = ~ignored if k == 0 else kept  # the objects counted: those not ignored at IoU 0.5
        self.counts.append(counts)
        pq = self.pq(*(torch.from_numpy(_panoptic(m, lab, sc))[None] for m, lab, sc in
                       ((p_masks[kept], p_labels[kept], p_scores[kept]), (t_masks, t_labels, None))))
        pq_image = _pq(pq[0].numpy())
        row = scores(*counts[0])
        self.rows.append({"name": name, "count_true": len(t_rles), "count_pred": int(kept.sum()),
                          "tp50": int(row["tp"]), "fp50": int(row["fp"]), "fn50": int(row["fn"]),
                          "acc50": row["accuracy"], "f1_50": row["f1"], "precision50": row["precision"],
                          "recall50": row["recall"], "mean_matched_iou50": row["mean_matched_iou"], "pq": pq_image})

    def compute(self) -> dict[str, float]:
        """The metrics of every image so far (see the module doc); nan where no image was seen."""
        out: dict[str, float] = {}
        r = self.map.compute()
        for kind in ("segm", "bbox"):
            key = "segm" if kind == "segm" else "box"
            out[f"{key}_map50_95"] = float(r[f"{kind}_map"])
            out[f"{key}_map50"] = float(r[f"{kind}_map_50"])
        totals = np.sum(self.counts, axis=0) if self.counts else np.zeros((len(THRESHOLDS), 4))
        for thresh, total in zip(THRESHOLDS, totals):
            s, t = scores(*total), round(thresh * 100)
            out.update({f"acc{t}": s["accuracy"], f"f1_{t}": s["f1"], f"precision{t}": s["precision"],
                        f"recall{t}": s["recall"]})
        out["mean_matched_iou50"] = scores(*totals[0])["mean_matched_iou"]
        out["pq"] = _pq(self.pq.aggregate().numpy()) if self.rows else float("nan")
        true, pred = sum(r["count_true"] for r in self.rows), sum(r["count_pred"] for r in self.rows)
        out.update({"count_true": float(true), "count_pred": float(pred),
                    "count_error_pct": 100.0 * (pred - true) / true if true else float("nan")})
        return out

    def per_image(self) -> list[dict[str, Any]]:
        """One row per image: name, count_true, count_pred, tp50, fp50, fn50, acc50, f1_50, precision50,
        recall50, mean_matched_iou50, pq."""
        return list(self.rows)


def _numpy(item: dict[str, Any]) -> dict[str, np.ndarray]:
    out = {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for k, v in item.items()}
    out["masks"] = out["masks"].reshape(-1, *out["masks"].shape[-2:]) > 0.5 if out["masks"].dtype.kind == "f" \
        else out["masks"].reshape(-1, *out["masks"].shape[-2:]).astype(bool)
    return out


def _coco_item(item: dict[str, np.ndarray], scores: bool = False) -> dict[str, torch.Tensor]:
    """A torchmetrics MeanAveragePrecision entry (boxes from the masks)."""
    out = {"boxes": torch.from_numpy(boxes_of(item["masks"])), "masks": torch.from_numpy(item["masks"]),
           "labels": torch.as_tensor(item["labels"], dtype=torch.int64).reshape(-1)}
    if scores:
        out["scores"] = torch.as_tensor(item["scores"], dtype=torch.float32).reshape(-1)
    else:
        out["iscrowd"] = torch.as_tensor(item.get("iscrowd", np.zeros(len(item["masks"]))), dtype=torch.int64)
    return out


def _iou(truth: list[dict], pred: list[dict], crowd: bool) -> np.ndarray:
    """(M, N) IoU of true and predicted RLEs; ``crowd``: intersection over the prediction's area instead."""
    if not truth or not pred:
        return np.zeros((len(truth), len(pred)))
    return np.asarray(mask_utils.iou(pred, truth, [int(crowd)] * len(truth))).reshape(len(pred), len(truth)).T


def _panoptic(masks: np.ndarray, labels: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    """(2, H, W) MONAI panoptic input: instance ids, class ids (1..K, 0 background); where masks overlap, the
    higher score (None: the earlier mask) keeps the pixel."""
    instances, kept = label_image(masks, scores)
    classes = np.concatenate([[0], np.asarray(labels, np.int64)[kept] + 1])[instances]
    return np.stack([instances.astype(np.int64), classes])


def _pq(confusion: np.ndarray) -> float:
    """Mean PQ over the classes with any object, from MONAI's (K, 4) tp, fp, fn, iou_sum."""
    tp, fp, fn, iou_sum = confusion.reshape(-1, 4).T
    seen = tp + fp + fn > 0
    return float(np.mean(iou_sum[seen] / (tp[seen] + fp[seen] / 2 + fn[seen] / 2))) if seen.any() else 1.0
