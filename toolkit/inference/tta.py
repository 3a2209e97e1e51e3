"""Test-time augmentation for detectors: detect on flipped / transposed views of each image, map the
boxes back to the image and fuse them with weighted boxes fusion (``ensemble_boxes``; Solovyev et al.,
"Weighted boxes fusion", 2021). A fused box is the score-weighted mean of the boxes that overlap it by
IoU >= ``FUSION_IOU``; its score is their mean, scaled down when fewer views than all found it.

Modes: ``none``; ``hflip`` (2 views); ``d4`` (8 views: every flip and 90-degree turn, for images with
no up or left, e.g. microscopy). ``DetectionTTA(mode)(images, model)`` is the inferer (MONAI's shape).
"""
from __future__ import annotations

from typing import Callable

import torch

from toolkit.errors import ConfigError

# a view: (transpose, horizontal flip, vertical flip), applied in that order
VIEWS = {"none": [(False, False, False)],
         "hflip": [(False, False, False), (False, True, False)],
         "d4": [(t, h, v) for t in (False, True) for h in (False, True) for v in (False, True)]}
FUSION_IOU = 0.55  # ensemble_boxes' default

Detections = list[dict[str, torch.Tensor]]
Detector = Callable[[list[torch.Tensor]], Detections]


def check_tta(mode: str) -> str:
    """``mode`` if it is a known one, else a ConfigError listing the valid modes."""
    if mode not in VIEWS:
        raise ConfigError(f"unknown model.tta '{mode}'; valid: {', '.join(VIEWS)}")
    return mode


def to_view(image: torch.Tensor, transpose: bool, hflip: bool, vflip: bool) -> torch.Tensor:
    """(C, H, W) image -> the view (C, W, H if transposed)."""
    x = image.transpose(-1, -2) if transpose else image
    x = x.flip(-1) if hflip else x
    return x.flip(-2) if vflip else x


def from_view(boxes: torch.Tensor, view_hw: tuple[int, int], transpose: bool, hflip: bool,
              vflip: bool) -> torch.Tensor:
    """(N, 4) xyxy boxes in a view's pixels (``view_hw`` = its height, width) -> the image's pixels."""
    h, w = view_hw
    x1, y1, x2, y2 = boxes.unbind(-1)
    if hflip:
        x1, x2 = w - x2, w - x1
    if vflip:
        y1, y2 = h - y2, h - y1
    return torch.stack((y1, x1, y2, x2) if transpose else (x1, y1, x2, y2), -1)


class DetectionTTA:
    """``tta(images, model)``: ``model`` (an eval-mode detector) on every view of ``images`` ((C, H, W) each), fused
    per image into ``{"boxes": (N, 4) xyxy pixels, "scores": (N,), "labels": (N,)}``, N at most what one view
    returns (the detector's ``detections_per_img``). ``none`` is one plain call; the mode is checked when made."""

    def __init__(self, mode: str = "none") -> None:
        self.views = VIEWS[check_tta(mode)]

    def __call__(self, images: list[torch.Tensor], model: Detector) -> Detections:
        if len(self.views) == 1:
            return model(images)
        per_view = [model([to_view(x, *v) for x in images]) for v in self.views]
        return [fuse(x, [dets[i] for dets in per_view], self.views) for i, x in enumerate(images)]


def fuse(image: torch.Tensor, dets: Detections, views: list[tuple[bool, bool, bool]]) -> dict[str, torch.Tensor]:
    from ensemble_boxes import weighted_boxes_fusion

    h, w = image.shape[-2:]
    scale = torch.tensor([w, h, w, h], dtype=torch.float32)
    boxes, scores, labels = [], [], []
    for d, v in zip(dets, views):
        view_hw = (w, h) if v[0] else (h, w)
        b = (from_view(d["boxes"].detach().float().cpu(), view_hw, *v) / scale).clamp(0, 1)
        keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])  # a degenerate box has nothing to fuse
        boxes.append(b[keep].tolist())
        scores.append(d["scores"].detach().float().cpu()[keep].tolist())
        labels.append(d["labels"].cpu()[keep].tolist())
    b, s, lab = weighted_boxes_fusion(boxes, scores, labels, iou_thr=FUSION_IOU, skip_box_thr=0.0)
    keep = max(len(d["scores"]) for d in dets)  # views that disagree fuse into more boxes than one view keeps
    b, s, lab = b[:keep], s[:keep], lab[:keep]  # highest scores first
    device = image.device
    return {"boxes": (torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4) * scale).to(device),
            "scores": torch.as_tensor(s, dtype=torch.float32).to(device),
            "labels": torch.as_tensor(lab).long().to(device)}
