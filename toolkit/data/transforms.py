"""Augmentation pipelines (the ONLY module that imports albumentations).

Every pipeline maps a sample dict with ``image`` float32 (H, W, C) in [0, 1] to one with
``image`` float32 Tensor (C, H, W); boxes (N, 4) xyxy pixels and masks (H, W) int move in step.
Boxes carry ``labels`` (N,) and ``crowd`` (N,) 0/1 (1: an ignore region; all 0 when not given).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Sequence

import albumentations as A
import cv2
import numpy as np
import torch
from annotated_types import Interval

from toolkit.config import Fraction, NonNegativeFloat, Probability
from toolkit.data.formats.instance_record import boxes_of

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_stats(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """ImageNet mean/std; for one channel the mean of the RGB values (fits a summed-RGB stem)."""
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return (float(np.mean(IMAGENET_MEAN)),) * channels, (float(np.mean(IMAGENET_STD)),) * channels


@dataclass
class Augment:
    """Train-time augmentation strengths; 0 turns one off. ``translate``/``scale`` are fractions."""

    hflip: Probability = 0.5  # probability of a horizontal flip
    vflip: Probability = 0.0  # probability of a vertical flip
    rotate90: Probability = 0.0  # probability of a random 90-degree turn
    translate: Probability = 0.0  # shift, fraction of the image side
    scale: Fraction = 0.0  # zoom in or out by up to this fraction
    rotate: Annotated[float, Interval(ge=0, le=180)] = 0.0  # rotation, degrees
    color: NonNegativeFloat = 0.0  # brightness/contrast jitter
    erase: Probability = 0.0  # probability of one random erased box (classification)


class Pipeline:
    """Callable wrapper: seedable (``set_seed``) and returning tensors."""

    def __init__(self, compose: A.Compose) -> None:
        self.compose = compose

    def set_seed(self, seed: int) -> None:
        self.compose.set_random_seed(seed)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        targets = {k: v for k, v in sample.items() if k in ("image", "mask", "boxes", "labels")}
        if "boxes" in targets:
            targets["bboxes"] = np.asarray(targets.pop("boxes"), dtype=np.float32).reshape(-1, 4)
            targets["labels"] = np.asarray(targets["labels"], dtype=np.int64)
            targets["crowd"] = np.asarray(sample.get("crowd", np.zeros(len(targets["labels"]))), dtype=np.int64)
        out = self.compose(**targets)
        result = dict(sample)
        result["image"] = torch.from_numpy(np.ascontiguousarray(out["image"].transpose(2, 0, 1)))
        if "mask" in out:
            result["mask"] = torch.from_numpy(np.ascontiguousarray(out["mask"])).long()
        if "bboxes" in out:
            result["boxes"] = torch.as_tensor(np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4))
            result["labels"] = torch.as_tensor(np.asarray(out["labels"], dtype=np.int64))
            result["crowd"] = torch.as_tensor(np.asarray(out["crowd"], dtype=np.int64))
        return result


def _geometric(aug: Augment, border: int = cv2.BORDER_CONSTANT,
               shape: tuple[int, int] | None = None) -> list[A.BasicTransform]:
    """Flips, rotate90, then translate/scale/rotate. A pure translation of images of a known ``shape``
    (H, W) is a pad + random crop (whole-pixel shifts): the same augmentation as ``Affine``'s,
    at a quarter of its cost per sample (it dominates the loader of small images)."""
    ops: list[A.BasicTransform] = []
    if aug.hflip:
        ops.append(A.HorizontalFlip(p=aug.hflip))
    if aug.vflip:
        ops.append(A.VerticalFlip(p=aug.vflip))
    if aug.rotate90:
        ops.append(A.RandomRotate90(p=aug.rotate90))
    if aug.translate and not (aug.scale or aug.rotate) and shape:
        pad_y, pad_x = (max(1, round(aug.translate * side)) for side in shape)
        ops += [A.Pad((pad_x, pad_y), border_mode=border, fill=0, fill_mask=0), A.RandomCrop(*shape)]
    elif aug.translate or aug.scale or aug.rotate:
        ops.append(A.Affine(translate_percent=(-aug.translate, aug.translate), scale=(1 - aug.scale, 1 + aug.scale),
                            rotate=(-aug.rotate, aug.rotate), border_mode=border, fill=0, fill_mask=0, p=1.0))
    return ops


def _photometric(aug: Augment) -> list[A.BasicTransform]:
    if not aug.color:
        return []
    return [A.RandomBrightnessContrast(brightness_limit=aug.color, contrast_limit=aug.color, p=0.8)]


def _normalize(mean: Sequence[float] | None, std: Sequence[float] | None) -> list[A.BasicTransform]:
    return [] if mean is None else [A.Normalize(mean=mean, std=std, max_pixel_value=1.0)]


def at_least(image: np.ndarray, side: int) -> np.ndarray:
    """Float (H, W, C) ``image`` scaled up (aspect kept, bilinear) so that its shorter side is ``side`` px; one that
    large already is returned as it is."""
    if min(image.shape[:2]) >= side:
        return image
    return A.SmallestMaxSize(max_size=side)(image=image)["image"]


def classification_pipeline(size: int, train: bool, aug: Augment, mean: Sequence[float],
                            std: Sequence[float], seed: int = 0,
                            native_shape: tuple[int, int] | None = None) -> Pipeline:
    """Resize to ``size`` (0 = keep), augment when ``train``, normalise. ``native_shape``: (H, W) shared by
    every image when known (in-memory datasets); it lets a translation use the cheap pad + crop."""
    ops: list[A.BasicTransform] = [A.Resize(size, size)] if size else []
    if train:
        ops += _geometric(aug, shape=(size, size) if size else native_shape) + _photometric(aug)
        if aug.erase:
            ops.append(A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(0.1, 0.4),
                                       hole_width_range=(0.1, 0.4), fill=0, p=aug.erase))
    return Pipeline(A.Compose(ops + _normalize(mean, std), seed=seed))


def _resize_crop_augment(size: int, train: bool, aug: Augment, crop: float) -> list[A.BasicTransform]:
    """Longest side to ``size`` (0 = keep); train only: up to ``crop`` of each border cut and the rest resized to
    ``size`` again, then the geometric and colour augmentation."""
    resize = [A.LongestMaxSize(size)] if size else []
    ops: list[A.BasicTransform] = list(resize)
    if train and crop:
        ops += [A.RandomCropFromBorders(crop_left=crop, crop_right=crop, crop_top=crop, crop_bottom=crop)] + resize
    if train:
        ops += _geometric(aug) + _photometric(aug)
    return ops


def detection_pipeline(size: int, train: bool, aug: Augment, mean: Sequence[float] | None = None,
                       std: Sequence[float] | None = None, min_visibility: float = 0.3, crop: float = 0.0,
                       min_side: float = 0.0, seed: int = 0) -> Pipeline:
    """Boxes follow the image. ``size``: longest side (0 = keep). No normalisation by default:
    torchvision detectors normalise inside the model.

    Train only: ``crop`` cuts up to that fraction of the resized image from each border and resizes the
    rest to ``size`` (a zoom of up to 1 / (1 - 2 crop)), so objects are cut by an image edge as in tiled
    data. Boxes left with < ``min_visibility`` of their area or with a side under ``min_side`` pixels (at
    the model's input size) are dropped together with their labels."""
    ops = _resize_crop_augment(size, train, aug, crop)
    side = min_side if train else 0.0
    params = A.BboxParams(format="pascal_voc", label_fields=["labels", "crowd"], min_visibility=min_visibility,
                          min_width=side, min_height=side, clip=True, filter_invalid_bboxes=True)
    return Pipeline(A.Compose(ops + _normalize(mean, std), bbox_params=params, seed=seed))


def segmentation_pipeline(crop: int, train: bool, aug: Augment, mean: Sequence[float],
                          std: Sequence[float], ignore_index: int = 255, seed: int = 0) -> Pipeline:
    """Masks move with the image (nearest-neighbour). Train: random ``crop`` (padded with
    ``ignore_index`` where the image is smaller); eval: the full image, untouched in size."""
    ops: list[A.BasicTransform] = []
    if train:
        ops += _geometric(aug) + _photometric(aug)
        if crop:
            ops += [A.PadIfNeeded(crop, crop, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=ignore_index),
                    A.RandomCrop(crop, crop)]
    return Pipeline(A.Compose(ops + _normalize(mean, std), seed=seed))


class InstancePipeline(Pipeline):
    """A ``Pipeline`` for instance samples: ``masks`` (N, H, W) 0/1 move with the image (nearest-neighbour),
    ``labels`` and ``crowd`` (N,) follow; boxes are recomputed from the transformed masks and objects whose
    mask became empty are dropped. Output: ``masks`` uint8 (N, H, W), ``boxes`` float32 (N, 4) xyxy (x2/y2
    exclusive), ``labels`` / ``crowd`` int64 (N,) tensors."""

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        image = sample["image"]
        masks = np.asarray(sample["masks"], np.uint8).reshape(-1, *image.shape[:2])
        out = self.compose(image=image, masks=masks) if len(masks) else self.compose(image=image)
        result = dict(sample)
        result["image"] = torch.from_numpy(np.ascontiguousarray(out["image"].transpose(2, 0, 1)))
        height, width = out["image"].shape[:2]
        masks = np.asarray(out["masks"], np.uint8).reshape(-1, height, width) if len(masks) else \
            np.zeros((0, height, width), np.uint8)
        keep = masks.reshape(len(masks), height * width).any(axis=1)
        result["masks"] = torch.from_numpy(np.ascontiguousarray(masks[keep]))
        result["boxes"] = torch.from_numpy(boxes_of(masks[keep]))
        for key in ("labels", "crowd"):
            values = np.asarray(sample.get(key, np.zeros(len(keep))), np.int64).reshape(-1)
            result[key] = torch.from_numpy(values[keep])
        return result


def instance_pipeline(size: int, train: bool, aug: Augment, seed: int = 0, crop: float = 0.0,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> InstancePipeline:
    """Masks follow the image. ``size``: longest side (0 = keep); train only: ``crop`` as in
    ``detection_pipeline`` (up to that fraction cut from each border, the rest resized to ``size``), then the
    geometric and colour augmentation. No normalisation by default (torchvision's Mask R-CNN normalises inside)."""
    ops = _resize_crop_augment(size, train, aug, crop)
    return InstancePipeline(A.Compose(ops + _normalize(mean, std), seed=seed))
