"""What a 2D model computes inside for one image: the feature maps of every backbone stage, the first
convolution's learned filters, and for ``simple_cnn`` classifiers a walk through every layer (convolution, batch
norm, activation, pooling, dense) with what each did to the image and its shape."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from toolkit.data.image_io import match_channels
from toolkit.errors import ConfigError
from toolkit.explain.base import LAYERS, evaluate, first_conv, untouched
from toolkit.explain.results import FeatureMaps


class LayerView:
    """``view(sample)``: the ``FeatureMaps`` of a 2D ``model`` for ``sample["image"]``; a ConfigError at once for a
    3D model."""

    def __init__(self, task: Any, model: nn.Module, classes: list[str]) -> None:
        if task.name not in ("classify", "segment", "detect"):
            raise ConfigError(f"'{LAYERS}' shows the feature maps of 2D models (classify, segment, detect); this is a "
                              f"{task.name} model: use method=gradcam for its heatmaps")
        self.task, self.model, self.classes = task, model, classes

    def check(self, target: str) -> None:
        raise ConfigError(f"'{LAYERS}' shows every stage and takes no target (got target={target})")

    def __call__(self, sample: dict[str, Any], target: str | None = None) -> FeatureMaps:
        return feature_maps(self.task, self.model, self.classes, sample)


def feature_maps(task: Any, model: nn.Module, classes: list[str], sample: dict[str, Any]) -> FeatureMaps:
    """The ``FeatureMaps`` of ``model`` for ``sample["image"]`` (H, W, C) as the task prepares it."""
    backbone, x = _backbone_input(task, model, sample["image"])
    stages = [(name, t[0].float().cpu().numpy()) for name, t in evaluate(backbone, x).items()]
    conv_name, conv = first_conv(backbone)
    simple = task.name == "classify" and getattr(backbone, "name", "").startswith("simple_cnn")
    walk = walk_layers(model, x) if simple else []
    return FeatureMaps(sample.get("source", ""), task.name, conv_name, sample["image"], stages,
                       conv.weight.detach().float().cpu().numpy(), walk, list(classes))


def _backbone_input(task: Any, model: nn.Module, image: np.ndarray) -> tuple[nn.Module, torch.Tensor]:
    """(the model's backbone, (1, C, h, w) input it sees for ``image``: resized and normalised by the task)."""
    device = next(model.parameters()).device
    if task.name == "classify":
        return model.backbone, task.transform(train=False)({"image": image})["image"][None].to(device)
    if task.name == "segment":
        x = task.transform(train=False)({"image": match_channels(image, task.channels or 3)})["image"]
        return model.backbone, x[None].to(device)
    rgb = match_channels(image, 3)  # detect
    x = task.transform(train=False)({"image": rgb, "boxes": np.zeros((0, 4), np.float32),
                                     "labels": np.zeros(0, np.int64)})["image"]
    images, _ = evaluate(model.model.transform, [x.to(device)])  # the detector's own resize and normalisation
    return model.model.backbone.body, images.tensors


def walk_layers(model: nn.Module, x: torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """(operation, output) of every layer ``model`` runs on ``x`` (1, C, H, W), in order: maps (C, h, w), vectors
    (K,). Dropout (identity at inference) is left out."""
    steps = [("input", x[0].float().cpu().numpy())]

    def record(module: nn.Module) -> Callable[..., None]:
        def hook(_module: nn.Module, _args: tuple, output: torch.Tensor) -> None:
            out = output[0].detach().float().cpu().numpy().copy()  # a copy: an in-place ReLU changes it later
            steps.append((describe(module), out.reshape(-1) if out.ndim == 1 or out.shape[1:] == (1, 1) else out))
        return hook

    leaves = [m for m in model.modules() if not any(True for _ in m.children()) and not isinstance(m, nn.Dropout)]
    handles = [m.register_forward_hook(record(m)) for m in leaves]
    try:
        with untouched(model), torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return steps


def describe(module: nn.Module) -> str:
    """A short name of a layer for the walk, e.g. "conv 3x3, 32 filters", "max pool 2x2"."""
    if isinstance(module, nn.Conv2d):
        return f"conv {module.kernel_size[0]}x{module.kernel_size[1]}, {module.out_channels} filters"
    if isinstance(module, nn.MaxPool2d):
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        return f"max pool {k}x{k}"
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return "global average pool"
    if isinstance(module, nn.Linear):
        return "dense (class scores)"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "batch norm"
    return type(module).__name__
