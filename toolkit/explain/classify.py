"""Classification: a heatmap per top-k class (or a named class) at a backbone stage, from pytorch-grad-cam's
``ClassifierOutputTarget``; the score is the class's softmax probability."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from toolkit.explain.base import Layer, backbone_stages, cam_maps, check_target, evaluate, pick_layer
from toolkit.explain.results import Explanation


class ClassifyExplainer:
    """``explainer(sample, target)``: heatmaps of ``model`` (a ``Classifier``) for ``sample["image"]`` (H, W, C).
    ``layer``: a backbone stage (``stage1`` ..; default the deepest with a map of 2 x 2 or more) or a module path."""

    def __init__(self, task: Any, model: nn.Module, classes: list[str], method: str, layer: str | None) -> None:
        self.task, self.model, self.classes, self.method = task, model, classes, method
        self.stages = backbone_stages(model.backbone, int(task.channels or 3))
        self.strides = dict(zip(model.backbone.stage_names, model.backbone.strides))
        self.layer = pick_layer(model, self.stages, layer, "") if layer else None

    def check(self, target: str) -> str:
        return check_target(target, self.classes)

    def deepest(self, x: torch.Tensor) -> Layer:
        """The default layer for input ``x``: the deepest stage whose map is at least 2 x 2 (a 1 x 1 map is one
        number, no heatmap)."""
        side = min(x.shape[-2:])
        usable = [s for s in self.stages if side // self.strides[s] >= 2] or list(self.stages)[:1]
        return self.stages[usable[-1]]

    def input_tensor(self, image: np.ndarray) -> torch.Tensor:
        """(1, C, h, w) model input of an (H, W, C) float image: the task's eval pipeline (resize, normalise)."""
        x = self.task.transform(train=False)({"image": image})["image"][None]
        return x.to(next(self.model.parameters()).device)

    def __call__(self, sample: dict[str, Any], target: str | None = None, *, top_k: int = 1) -> Explanation:
        """``target``: a class name; None = the ``top_k`` most probable classes."""
        start = time.perf_counter()
        image = sample["image"]
        x = self.input_tensor(image)
        probs = evaluate(self.model, x).float().softmax(1)[0].cpu()
        if target is None:
            picked = probs.topk(min(max(1, int(top_k)), len(self.classes))).indices.tolist()
        else:
            picked = [self.classes.index(check_target(target, self.classes))]
        layer = self.layer or self.deepest(x)
        _, maps = cam_maps(self.method, self.model, layer, x, [[ClassifierOutputTarget(c)] for c in picked])
        h, w = image.shape[:2]
        heatmaps = {self.classes[c]: scale_cam_image(m, (w, h))[0] for c, m in zip(picked, maps)}
        return Explanation(sample.get("source", ""), "classify", self.method, layer.name, image, heatmaps,
                           {self.classes[c]: float(probs[c]) for c in picked}, seconds=time.perf_counter() - start)

