"""A torch Dataset over a ``DetectionData`` split, with a ``detection_pipeline`` transform."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from toolkit.data.formats.detection import ImageRecord
from toolkit.data.record_dataset import RecordDataset


class DetectionDataset(RecordDataset):
    """Item: ``{"image": (3, H, W) float, "boxes": (N, 4) xyxy pixels float, "labels": (N,) int64,
    "crowd": (N,) int64 0/1, "index": int, "scale": float}`` after ``transform``: the record's objects, then
    its ignore regions (crowd 1); N may be 0 (a negative image). ``scale``: output width / file width (the
    resize), so that metrics can be computed in the file's pixels."""

    def sample(self, rec: ImageRecord, image: np.ndarray) -> dict[str, Any]:
        return {"image": image, "boxes": np.concatenate([rec.boxes, rec.ignore_boxes]),
                "labels": np.concatenate([rec.labels, rec.ignore_labels]),
                "crowd": np.repeat([0, 1], [len(rec.labels), len(rec.ignore_labels)])}


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Detection batch: images of any size stay a list. ``{"images": [(3, H, W)], "targets":
    [{"boxes": (N, 4), "labels": (N,), "iscrowd": (N,) 0/1}], "index": (B,), "scale": (B,)}``."""
    return {
        "images": [s["image"] for s in samples],
        "targets": [{"boxes": torch.as_tensor(s["boxes"], dtype=torch.float32).reshape(-1, 4),
                     "labels": torch.as_tensor(s["labels"], dtype=torch.int64).reshape(-1),
                     "iscrowd": torch.as_tensor(s.get("crowd", np.zeros(len(s["labels"]))),
                                                dtype=torch.int64).reshape(-1)} for s in samples],
        "index": torch.tensor([s.get("index", -1) for s in samples]),
        "scale": torch.tensor([float(s.get("scale", 1.0)) for s in samples]),
    }


def objects_only(target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch target without its ignore regions (``iscrowd`` 1) and without the ``iscrowd`` key."""
    keep = target["iscrowd"] == 0 if "iscrowd" in target else slice(None)
    return {k: v[keep] for k, v in target.items() if k != "iscrowd"}
