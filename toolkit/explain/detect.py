"""Detection, every torchvision architecture the toolkit builds (Faster R-CNN, RetinaNet, FCOS, SSDlite):

- ``hirescam`` (default) and ``gradcam``: one heatmap per detected box, the CAM of pytorch-grad-cam's
  ``FasterRCNNBoxScoreTarget`` (the box's score plus its IoU with the model's matching box, 0 if none matches) at
  a backbone stage (default: the stride-16 one, which every pyramid level depends on) or a pyramid level
  (``fpn.<stage>``; a box taken from another level has a map of zeros there). HiResCAM weighs each activation by
  its own gradient, so a box's map shows where that box's evidence lies; Grad-CAM averages the gradient over the
  map first, which lights up every object of the class alike (benchmarks/explain_quality.py measures both).
- ``eigencam``: gradient-free, one map for the whole image from the first principal component of the feature
  pyramid (all levels resized to stride 16 and stacked, as pytorch-grad-cam's Faster R-CNN tutorial does).

The boxes are the Predictor's own (``task.predict`` without test-time views). Large images are explained on the
tiles prediction uses: each box in the tile that holds it best, a map of the tile placed in the image."""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
from torch import nn

from toolkit.errors import ConfigError
from toolkit.explain.base import Layer, backbone_stages, cam_maps, check_target, evaluate, pick_layer
from toolkit.explain.results import Explanation
from toolkit.inference.tiles import TiledDetector, Window

PYRAMID = "fpn"  # the detector's feature pyramid (every level): eigencam only
ALL = "all detections"
SIZE_DIVISIBLE = 32  # torchvision's detection transform pads batches to this; inputs are padded here the same way


class DetectExplainer:
    """``explainer(sample, target, conf=, iou=, top_k=)``: heatmaps of a toolkit ``Detector`` for the sample's
    ``image``."""

    def __init__(self, task: Any, model: nn.Module, classes: list[str], method: str, layer: str | None) -> None:
        self.task, self.model, self.classes, self.method = task, model, classes, method
        neck = model.model.backbone
        levels = {f"{PYRAMID}.{k}": Layer(f"{PYRAMID}.{k}", neck, k, entry) for k, entry in pyramid_entries(neck)}
        named = {**backbone_stages(neck.body, 3), PYRAMID: Layer(PYRAMID, neck), **levels}
        stride16 = [n for n, stride in zip(neck.body.stage_names, neck.body.strides) if stride <= 16][-1]
        self.layer = pick_layer(model, named, layer, PYRAMID if method == "eigencam" else stride16)
        if (self.layer.name == PYRAMID) != (method == "eigencam"):
            stages = ", ".join(n for n in named if n != PYRAMID)
            raise ConfigError(f"layer '{self.layer.name}' does not fit method '{method}': eigencam explains the "
                              f"feature pyramid (layer={PYRAMID}), gradcam one of its levels or a backbone stage "
                              f"({stages})")
        self.reshape = pyramid_reshape(neck.strides) if self.layer.name == PYRAMID else None
        self.tiles = TiledDetector(task.cfg.data.predict_tile, task.transform(train=False))
        self.mean = torch.as_tensor(model.model.transform.image_mean, dtype=torch.float32)

    def __call__(self, sample: dict[str, Any], target: str | int | None = None, *, conf: float = 0.25,
                 iou: float = 0.5, top_k: int = 10) -> Explanation:
        """``target``: a class name (its detections), a detection's index (0 = the highest score) or None (the
        ``top_k`` highest-scoring detections); ``conf``, ``iou``: as ``toolkit predict``."""
        start = time.perf_counter()
        (found,) = self.task.predict(self.model, [sample], conf=conf, iou=iou, tta="none")
        image, chosen = found.image, self.choose(found, target, top_k)
        names = {i: f"{self.classes[int(found.labels[i])]} #{i}" for i in chosen}
        if self.method == "eigencam":
            heatmaps, scores = {ALL: self.pyramid_map(image)}, {ALL: None}
        else:
            heatmaps = {names[i]: m for i, m in zip(chosen, self.box_maps(image, found.boxes[chosen],
                                                                          found.labels[chosen]))}
            scores = {names[i]: float(found.scores[i]) for i in chosen}
        boxes = {names[i]: [float(v) for v in found.boxes[i]] for i in chosen} if self.method != "eigencam" else {}
        return Explanation(sample.get("source", ""), "detect", self.method, self.layer.name, image, heatmaps, scores,
                           boxes, seconds=time.perf_counter() - start)

    def check(self, target: str | int) -> str | int:
        """A detection's index (checked against the detections of each input) or one of the classes."""
        return target if isinstance(target, int) or str(target).isdigit() else check_target(target, self.classes)

    def choose(self, found: Any, target: str | int | None, top_k: int) -> list[int]:
        """Indices (best first) of the detections to explain."""
        n = len(found.boxes)
        if target is None:
            return list(range(min(n, max(1, int(top_k)))))
        if isinstance(target, int) or str(target).isdigit():
            if not 0 <= int(target) < n:
                raise ConfigError(f"target={target}: the model found {n} detection(s) in {found.source} (indices "
                                  f"0..{n - 1}, best first); lower conf= or pick another")
            return [int(target)]
        label = self.classes.index(check_target(target, self.classes))
        return [i for i in range(n) if int(found.labels[i]) == label][:max(1, int(top_k))]

    def box_maps(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        """Grad-CAM (H, W) in [0, 1] of each box (N, 4 image pixels), computed in the tile that holds it best, one
        forward pass per tile."""
        h, w = image.shape[:2]
        windows = self.tiles.windows(h, w)
        homes = [best_window(box, windows) for box in boxes]
        out: list[np.ndarray] = [np.zeros((h, w), np.float32) for _ in boxes]
        for window in sorted(set(homes)):
            members = [i for i, home in enumerate(homes) if home == window]
            x, scale = self.tile_input(image, window)
            offset = np.array([window[1], window[0]] * 2, np.float32)
            passes = [[FasterRCNNBoxScoreTarget([int(labels[i])], [(boxes[i] - offset) * np.tile(scale, 2)])]
                      for i in members]
            for i, cam in zip(members, cam_maps(self.method, self.model, self.layer, x, passes)[1]):
                self.place(out[i], cam, x, scale, window)
        return [m / max(float(m.max()), 1e-12) for m in out]

    def pyramid_map(self, image: np.ndarray) -> np.ndarray:
        """EigenCAM (H, W) in [0, 1] of the whole image: each tile's map placed, overlaps averaged."""
        h, w = image.shape[:2]
        total, count = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
        for window in self.tiles.windows(h, w):
            x, scale = self.tile_input(image, window)
            _, (cam,) = cam_maps("eigencam", self.model, self.layer, x, [[]], self.reshape)
            self.place(total, cam, x, scale, window)
            y0, x0, th, tw = window
            count[y0:y0 + th, x0:x0 + tw] += 1
        total /= np.maximum(count, 1)
        return total / max(float(total.max()), 1e-12)

    def tile_input(self, image: np.ndarray, window: Window) -> tuple[torch.Tensor, np.ndarray]:
        """(1, 3, H', W') model input of ``window``, resized like a training image and padded to a multiple of 32
        with the model's mean colour (zero after its normalisation, as torchvision pads), and the (x, y) scale."""
        y, x, th, tw = window
        crop = image[y:y + th, x:x + tw]
        tensor = self.tiles.transform({"image": crop, "boxes": np.zeros((0, 4), np.float32),
                                       "labels": np.zeros(0, np.int64)})["image"]
        ph, pw = (math.ceil(s / SIZE_DIVISIBLE) * SIZE_DIVISIBLE for s in tensor.shape[1:])
        padded = self.mean.view(3, 1, 1).expand(3, ph, pw).clone()
        padded[:, :tensor.shape[1], :tensor.shape[2]] = tensor
        scale = np.array([tensor.shape[2] / tw, tensor.shape[1] / th], np.float32)
        return padded[None].to(next(self.model.parameters()).device), scale

    @staticmethod
    def place(canvas: np.ndarray, cam: np.ndarray, x: torch.Tensor, scale: np.ndarray, window: Window) -> None:
        """Add ``cam`` (1, h, w) of model input ``x`` (its padding cut off) into ``canvas`` at ``window``, scaled to
        [0, 1] (pytorch-grad-cam's ``scale_cam_image``)."""
        y, x0, th, tw = window
        full = scale_cam_image(cam, (x.shape[3], x.shape[2]))[0]
        used = full[:round(th * scale[1]), :round(tw * scale[0])]
        canvas[y:y + th, x0:x0 + tw] += np.asarray(Image.fromarray(used).resize((tw, th), Image.BILINEAR))


def pyramid_entries(neck: nn.Module) -> list[tuple[str, nn.Module | None]]:
    """(name, module whose output backward passes stop at) of each map of the detector's neck: an FPN level's own
    output convolution, else none (the passes go back to the image)."""
    with torch.no_grad():
        names = list(evaluate(neck, torch.zeros(1, 3, 64, 64, device=next(neck.parameters()).device)))
    blocks = list(getattr(getattr(neck, "fpn", None), "layer_blocks", []))
    return [(name, blocks[i] if i < len(blocks) else None) for i, name in enumerate(names)]


def best_window(box: np.ndarray, windows: list[Window]) -> Window:
    """The window holding most of ``box`` (x1, y1, x2, y2), ties to the one whose centre is nearest the box's."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2

    def rank(window: Window) -> tuple[float, float]:
        y, x, th, tw = window
        overlap = max(0.0, min(box[2], x + tw) - max(box[0], x)) * max(0.0, min(box[3], y + th) - max(box[1], y))
        return -overlap, (cx - x - tw / 2) ** 2 + (cy - y - th / 2) ** 2
    return min(windows, key=rank)


def pyramid_reshape(strides: list[int]) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """The pyramid's levels (an ordered dict, finest first, ``strides`` px) -> one (B, sum C, h, w) tensor of their
    absolute values at stride 16 (pytorch-grad-cam's ``fasterrcnn_reshape_transform`` for any level names)."""
    factor = max(1, 16 // strides[0])

    def reshape(levels: dict[str, torch.Tensor]) -> torch.Tensor:
        finest = next(iter(levels.values()))
        size = (math.ceil(finest.shape[-2] / factor), math.ceil(finest.shape[-1] / factor))
        return torch.cat([F.interpolate(v.abs(), size, mode="bilinear") for v in levels.values()], dim=1)
    return reshape
