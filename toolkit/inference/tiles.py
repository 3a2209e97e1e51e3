"""Detection on images larger than the model was trained on: cut into overlapping tiles, detect on each tile
resized like a training image, map the boxes back to the image and merge them.

A box touching an inner tile edge is dropped (the neighbouring tile, overlapping it by >= 25%, sees that
object whole); the rest are merged with class-wise NMS (``torchvision.ops.batched_nms``).
``TiledDetector(...)(image, model)`` is the inferer (MONAI's shape)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torchvision.ops import batched_nms

from toolkit.inference.tta import DetectionTTA

TILE_BATCH = 16  # tiles per model call

Window = tuple[int, int, int, int]  # (y, x, height, width) in image pixels


def tile_windows(h: int, w: int, tile: int, overlap: int = 0) -> list[Window]:
    """(y, x, height, width) windows of ``tile`` px covering an h x w image, neighbours overlapping by at least
    ``overlap`` px (0 = a quarter of the tile)."""
    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        step = max(1, tile - (overlap or tile // 4))
        return sorted(set(list(range(0, n - tile, step)) + [n - tile]))
    return [(y, x, min(tile, h), min(tile, w)) for y in starts(h) for x in starts(w)]


class TiledDetector:
    """``tiles(image, model)``: detections ``{"boxes": (N, 4) xyxy image pixels, "scores": (N,), "labels": (N,)}``
    (CPU tensors) on an (H, W, 3) float image of any size.

    ``tile``: images with a side over this many pixels are cut into tiles (0 = always the whole image);
    ``transform``: the eval detection pipeline (a sample dict -> ``{"image": (3, h, w) tensor, ...}``);
    ``views``: how each batch of tiles meets the model (default one plain call); ``conf``: detections with a
    lower score are dropped; ``iou``: the NMS threshold of the merge."""

    def __init__(self, tile: int, transform: Callable[[dict[str, Any]], dict[str, Any]],
                 views: DetectionTTA | None = None, conf: float = 0.0, iou: float = 0.5,
                 batch: int = TILE_BATCH) -> None:
        self.tile, self.transform, self.views = tile, transform, views or DetectionTTA("none")
        self.conf, self.iou, self.batch = conf, iou, batch

    def windows(self, h: int, w: int) -> list[Window]:
        """The tiles of an h x w image: one window over all of it when it fits in one tile."""
        return tile_windows(h, w, self.tile) if self.tile and max(h, w) > self.tile else [(0, 0, h, w)]

    def __call__(self, image: np.ndarray, model: nn.Module) -> dict[str, torch.Tensor]:
        h, w = image.shape[:2]
        windows = self.windows(h, w)
        device = next(model.parameters()).device
        found = []
        for start in range(0, len(windows), self.batch):
            chunk = windows[start:start + self.batch]
            crops = [self._prepare(image[y:y + th, x:x + tw]) for y, x, th, tw in chunk]
            dets = self.views([c.to(device) for c in crops], model)
            found += [_to_window(det, crop.shape[1:], window, (h, w)) for window, crop, det in zip(chunk, crops, dets)]
        boxes, scores, labels = (torch.cat([f[i] for f in found]) for i in range(3))
        keep = scores >= self.conf
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, self.iou)
        return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}

    def _prepare(self, crop: np.ndarray) -> torch.Tensor:
        """(h, w, 3) float crop -> (3, h', w') model input, resized like a training image."""
        sample = {"image": crop, "boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}
        return self.transform(sample)["image"]


def _to_window(det: dict[str, torch.Tensor], shape: tuple[int, int], window: Window,
               image_hw: tuple[int, int], margin: float = 2.0) -> tuple[torch.Tensor, ...]:
    """Map detections on a resized crop back to image pixels; drop boxes cut by an inner tile edge."""
    y, x, th, tw = window
    boxes = det["boxes"].cpu() * torch.tensor([tw / shape[1], th / shape[0]] * 2) + torch.tensor([x, y, x, y])
    keep = torch.ones(len(boxes), dtype=torch.bool)
    if x > 0:
        keep &= boxes[:, 0] > x + margin
    if y > 0:
        keep &= boxes[:, 1] > y + margin
    if x + tw < image_hw[1]:
        keep &= boxes[:, 2] < x + tw - margin
    if y + th < image_hw[0]:
        keep &= boxes[:, 3] < y + th - margin
    return boxes[keep], det["scores"].cpu()[keep], det["labels"].cpu()[keep]
