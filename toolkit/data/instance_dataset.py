"""A torch Dataset over an ``InstanceData`` split, with an ``instance_pipeline`` transform."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from toolkit.data.formats.instance_record import InstanceRecord
from toolkit.data.record_dataset import RecordDataset


class InstanceDataset(RecordDataset):
    """Item: ``{"image": (3, H, W) float, "boxes": (N, 4) float32 xyxy pixels, "labels": (N,) int64,
    "masks": (N, H, W) uint8, "crowd": (N,) int64 0/1, "index": int, "scale": float}`` after ``transform``
    (objects whose mask the transform emptied are gone). ``scale``: output width / file width (the resize), so
    that metrics can be computed in the file's pixels."""

    def sample(self, rec: InstanceRecord, image: np.ndarray) -> dict[str, Any]:
        return {"image": image, "masks": rec.masks(), "labels": rec.labels, "crowd": rec.crowd}


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Instance batch: images of any size stay a list. ``{"images": [(3, H, W)], "targets": [{"boxes": (N, 4),
    "labels": (N,), "masks": (N, H, W) uint8, "iscrowd": (N,) 0/1}], "index": (B,), "scale": (B,)}``."""
    return {
        "images": [s["image"] for s in samples],
        "targets": [{"boxes": torch.as_tensor(s["boxes"], dtype=torch.float32).reshape(-1, 4),
                     "labels": torch.as_tensor(s["labels"], dtype=torch.int64).reshape(-1),
                     "masks": torch.as_tensor(s["masks"], dtype=torch.uint8).reshape(-1, *s["image"].shape[-2:]),
                     "iscrowd": torch.as_tensor(s["crowd"], dtype=torch.int64).reshape(-1)} for s in samples],
        "index": torch.tensor([s.get("index", -1) for s in samples]),
        "scale": torch.tensor([float(s.get("scale", 1.0)) for s in samples]),
    }
