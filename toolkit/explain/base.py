"""What every explanation shares: the methods (pytorch-grad-cam classes) and the tasks that can use them, target
layers found by name, a model left exactly as it was, and one forward pass shared by several targets.

pytorch-grad-cam's ``cam(x, targets)`` runs a forward pass per call; ``cam_maps`` runs ONE forward pass and one
backward pass per target set, and hands each to the library's own ``get_cam_image`` (the CAM maths stays the
library's). Backward passes stop at the target layer: every parameter is frozen while explaining and a copy of
the layer's output is the only tensor that asks for a gradient."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from pytorch_grad_cam import (
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
)
from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients
from pytorch_grad_cam.base_cam import BaseCAM
from torch import nn

from toolkit.errors import ConfigError
from toolkit.inference.ensemble import Ensemble

METHODS: dict[str, type[BaseCAM]] = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "hirescam": HiResCAM,
                                     "layercam": LayerCAM, "scorecam": ScoreCAM, "eigencam": EigenCAM}
GRADIENT_FREE = ("scorecam", "eigencam")
# what each task's outputs allow (the first is the task's default): score-CAM needs one class score per image,
# 3D maps need 5D-aware weights, a box's own evidence needs per-activation weights (HiResCAM, see explain/detect.py)
TASK_METHODS = {"classify": ("gradcam", "gradcam++", "hirescam", "layercam", "scorecam", "eigencam"),
                "segment": ("gradcam", "gradcam++", "hirescam", "layercam", "eigencam"),
                "detect": ("hirescam", "gradcam", "eigencam"),
                "segment3d": ("hirescam", "gradcam")}
LAYERS = "layers"  # the ``method`` that shows feature maps and filters instead of a heatmap


def check_method(task: str, method: str) -> str:
    """``method`` if ``task`` can use it, else a ConfigError naming the ones it can."""
    valid = TASK_METHODS.get(task, ())
    if method not in valid and method != LAYERS:
        what = "is unknown" if method not in METHODS else f"does not apply to a {task} model"
        raise ConfigError(f"explanation method '{method}' {what}; valid for {task}: {', '.join(valid)} "
                          f"(or '{LAYERS}' for feature maps and filters)")
    return method


def check_explainable(model: nn.Module, source: str) -> None:
    """A ConfigError for a model without PyTorch weights (an ONNX export) or an ensemble of several checkpoints."""
    if sum(p.numel() for p in model.parameters()) == 0:
        raise ConfigError(f"{source} is an ONNX export; explanations need the PyTorch checkpoint (.pt) it was "
                          "exported from, e.g. runs/<task>/<name>/weights/best.pt")
    if isinstance(model, Ensemble):
        raise ConfigError(f"{source} is an ensemble of {len(model.members)} checkpoints; explanations need one of "
                          "them, e.g. a fold's weights/best.pt")


@contextmanager
def untouched(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode with every parameter frozen for the block; afterwards each module's mode, each
    parameter's ``requires_grad`` and ``.grad`` are what they were."""
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    try:
        model.eval()
        model.requires_grad_(False)
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
        for p, flag, grad in params:
            p.requires_grad_(flag)
            p.grad = grad


@contextmanager
def gradient_from(layer: nn.Module) -> Iterator[None]:
    """For the block, ``layer``'s output asks for a gradient (a copy of it that starts the graph, so in-place
    layers after it work): with the parameters frozen, backward passes stop there. The hook is removed afterwards."""
    def start_graph(_module: nn.Module, _args: tuple, output: Any) -> Any:
        if isinstance(output, torch.Tensor) and output.is_floating_point() and not output.requires_grad:
            return output.detach().requires_grad_(True).clone()
        return None

    handle = layer.register_forward_hook(start_graph)
    try:
        yield
    finally:
        handle.remove()


@dataclass
class Layer:
    """Where a CAM looks: the output of ``module`` (of ``model``), or for a module returning a dict of maps (a toolkit
    ``Backbone``) its ``key`` entry; backward passes stop at the output of ``entry`` (default: ``module``)."""

    name: str
    module: nn.Module
    key: str | None = None
    entry: nn.Module | None = None


class EntryHooks(ActivationsAndGradients):
    """pytorch-grad-cam's activation and gradient hooks on the ``key`` entry of a module's dict output: a backbone
    stage traced by torchvision's feature extractor may end in an addition, not in a module of its own."""

    def __init__(self, model: nn.Module, module: nn.Module, key: str) -> None:
        self.key = key
        super().__init__(model, [module], None)

    def save_activation(self, module: nn.Module, args: Any, output: dict[str, torch.Tensor]) -> None:
        super().save_activation(module, args, output[self.key])

    def save_gradient(self, module: nn.Module, args: Any, output: dict[str, torch.Tensor]) -> None:
        super().save_gradient(module, args, output[self.key])


def cam_maps(method: str, model: nn.Module, layer: Layer, x: torch.Tensor,
             passes: Sequence[Sequence[Callable[[Any], torch.Tensor]]],
             reshape: Callable[[Any], torch.Tensor] | None = None) -> tuple[Any, list[np.ndarray]]:
    """(the model's output for ``x`` (B, C, ...), raw maps (B, *layer's spatial shape) >= 0 at ``layer``, one per
    entry of ``passes`` (one target per image)): one forward pass of ``model`` and one backward pass per entry. The
    model is restored and the hooks removed afterwards. A target the output does not depend on gives zeros."""
    with untouched(model), gradient_from(layer.entry or layer.module), torch.enable_grad():
        cam = METHODS[method](model=model, target_layers=[layer.module], reshape_transform=reshape)
        if layer.key is not None:
            cam.activations_and_grads.release()
            cam.activations_and_grads = EntryHooks(model, layer.module, layer.key)
        hooks = cam.activations_and_grads
        try:
            outputs = hooks(x)
            activations = hooks.activations[0].float().numpy()
            maps = []
            for targets in passes:
                hooks.gradients = []
                grads = np.zeros_like(activations)
                if method not in GRADIENT_FREE:
                    score = sum(target(output) for target, output in zip(targets, outputs))
                    if isinstance(score, torch.Tensor) and score.requires_grad:
                        score.sum().backward(retain_graph=True)
                        grads = hooks.gradients[0].float().numpy()
                cam_image = cam.get_cam_image(x, layer.module, list(targets), activations, grads, False)
                maps.append(np.maximum(cam_image, 0).astype(np.float32))
            return outputs, maps
        finally:
            hooks.release()


def evaluate(model: nn.Module, *inputs: Any) -> Any:
    """``model(*inputs)`` in eval mode without gradients; the model is left as it was."""
    with untouched(model), torch.no_grad():
        return model(*inputs)


@dataclass
class Trace:
    """One forward pass seen module by module: ``produced`` maps each tensor a module returned (by id) to the
    OUTERMOST module that returned it (a container returns its last child's tensor), ``leaves`` lists the leaf
    modules in the order they ran, ``head_input`` is the input of the last one (the output layer's)."""

    produced: dict[int, str]
    leaves: list[str]
    head_input: int | None
    output: Any
    kept: list[Any]  # the tensors, so that their ids stay unique while the trace lives

    def decoder(self) -> str | None:
        """The module whose output the output layer takes (the last decoder layer), if a module returned it."""
        return self.produced.get(self.head_input) if self.head_input is not None else None


def trace(model: nn.Module, *inputs: Any) -> Trace:
    """A no-grad forward pass of ``model`` (left as it was) recorded as a ``Trace``."""
    found = Trace({}, [], None, None, [])

    def record(name: str, leaf: bool) -> Callable[..., None]:
        def hook(_module: nn.Module, args: tuple, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                found.produced[id(output)] = name
                found.kept.append(output)
            if leaf:
                found.leaves.append(name)
                if args and isinstance(args[0], torch.Tensor):
                    found.head_input = id(args[0])
                    found.kept.append(args[0])
        return hook

    handles = [m.register_forward_hook(record(n, not any(True for _ in m.children())))
               for n, m in model.named_modules() if n]
    try:
        found.output = evaluate(model, *inputs)
    finally:
        for h in handles:
            h.remove()
    return found


def backbone_stages(backbone: nn.Module, channels: int, size: int = 32) -> dict[str, Layer]:
    """Each stage of a toolkit ``Backbone`` as a ``Layer``: the backbone's entry of that name, backward passes
    stopping at the last layer run inside the stage (found by running it once on zeros, ``channels`` x ``size``)."""
    seen = trace(backbone, torch.zeros(1, channels, size, size, device=next(backbone.parameters()).device))
    modules = dict(backbone.named_modules())
    stages = {}
    for stage, prefixes in zip(backbone.stage_names, backbone.stage_modules):
        inside = [n for n in seen.leaves if any(n == f"body.{p}" or n.startswith(f"body.{p}.") for p in prefixes)]
        stages[stage] = Layer(stage, backbone, stage, modules[inside[-1]] if inside else None)
    return stages


def pick_layer(model: nn.Module, named: dict[str, Layer], layer: str | None, default: str) -> Layer:
    """``layer`` (``default`` when None): one of ``named``, or any module path of ``model``; else a ConfigError
    listing the named ones."""
    name = layer or default
    if name in named:
        return named[name]
    modules = dict(model.named_modules())
    if not name or name not in modules:
        raise ConfigError(f"unknown layer '{name}'; valid: {', '.join(named)} (or a module path of the model, e.g. "
                          f"{next(n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)))})")
    return Layer(name, modules[name])


def first_conv(model: nn.Module) -> tuple[str, nn.Module]:
    """(path, module) of the first convolution of ``model``."""
    return next((n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)))


def check_target(target: Any, valid: Sequence[str], what: str = "class") -> str:
    """``target`` (a name) if it is one of ``valid``, else a ConfigError listing them."""
    if str(target) not in valid:
        raise ConfigError(f"target '{target}' is not a {what} of this model; valid: {', '.join(valid)}")
    return str(target)
