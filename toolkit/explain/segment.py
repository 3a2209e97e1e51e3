"""2D segmentation: a heatmap per class region — what drove the pixels predicted as that class — from
pytorch-grad-cam's ``SemanticSegmentationTarget`` (the class's logits summed over its predicted pixels); the score
is the class's mean softmax probability over those pixels."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget
from torch import nn

from toolkit.data.image_io import match_channels
from toolkit.explain.base import Layer, backbone_stages, cam_maps, check_target, evaluate, pick_layer, trace
from toolkit.explain.results import Explanation

DECODER = "decoder"  # the decoder's last feature map: the input of the output convolution


class SegmentExplainer:
    """``explainer(sample, target)``: heatmaps of ``model`` (a ``Segmenter``) for ``sample["image"]`` (H, W, C).
    ``layer``: a backbone stage (``stage1`` ..; default the deepest), ``decoder`` or a module path."""

    def __init__(self, task: Any, model: nn.Module, classes: list[str], method: str, layer: str | None) -> None:
        self.task, self.model, self.classes, self.method = task, model, classes, method
        channels = int(task.channels or 3)
        named = backbone_stages(model.backbone, channels)
        deepest = list(named)[-1]
        decoder = trace(model, torch.zeros(1, channels, 64, 64, device=next(model.parameters()).device)).decoder()
        if decoder:
            named[DECODER] = Layer(DECODER, model.get_submodule(decoder))
        self.layer = pick_layer(model, named, layer, deepest)

    def check(self, target: str) -> str:
        return check_target(target, self.classes)

    def __call__(self, sample: dict[str, Any], target: str | None = None) -> Explanation:
        """``target``: a class name; None = every class the model predicts in the image except the background."""
        start = time.perf_counter()
        image = sample["image"]
        x = self.task.transform(train=False)({"image": match_channels(image, self.task.channels or 3)})["image"]
        x = x[None].to(next(self.model.parameters()).device)
        probs = evaluate(self.model, x).float().softmax(1)[0].cpu()
        pred = probs.argmax(0).numpy()
        if target is None:
            background = self.task.cfg.data.background
            picked = [c for c in np.unique(pred).tolist() if c != background] or \
                     [c for c in range(len(self.classes)) if c != background][:1]
        else:
            picked = [self.classes.index(check_target(target, self.classes))]
        masks = {c: (pred == c).astype(np.float32) for c in picked}
        _, maps = cam_maps(self.method, self.model, self.layer, x,
                        [[SemanticSegmentationTarget(c, masks[c])] for c in picked])
        h, w = image.shape[:2]
        scores = {self.classes[c]: float(probs[c][masks[c] > 0].mean()) if masks[c].any() else None for c in picked}
        heatmaps = {self.classes[c]: scale_cam_image(m, (w, h))[0] for c, m in zip(picked, maps)}
        return Explanation(sample.get("source", ""), "segment", self.method, self.layer.name, image, heatmaps, scores,
                           seconds=time.perf_counter() - start)
