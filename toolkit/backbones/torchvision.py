"""torchvision classifier families as multi-stage backbones (``feature_extraction`` + Weights API)."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from toolkit.backbones import weights as tv_weights
from toolkit.backbones.base import Backbone
from toolkit.errors import WeightsError
from toolkit.safe_io import load_state_dict_file


def _features_stages(ends: list[int]) -> list[tuple[str, list[str]]]:
    """Stages of a ``features`` Sequential that end at the given block indices."""
    stages, start = [], 0
    for end in ends:
        stages.append((f"features.{end}", [f"features.{i}" for i in range(start, end + 1)]))
        start = end + 1
    return stages


_RESNET = [("relu", ["conv1", "bn1"])] + [(f"layer{i}", [f"layer{i}"]) for i in range(1, 5)]
_REGNET = [("stem", ["stem"])] + [(f"trunk_output.block{i}", [f"trunk_output.block{i}"]) for i in range(1, 5)]
_EFFICIENTNET = _features_stages([1, 2, 3, 5, 8])

# model name -> [(return node, parameter prefixes of that stage)], strides 2, 4, 8, 16, 32 (convnext: 4..32)
STAGES: dict[str, list[tuple[str, list[str]]]] = {
    "resnet18": _RESNET, "resnet34": _RESNET, "resnet50": _RESNET,
    "mobilenet_v2": _features_stages([1, 3, 6, 13, 18]),
    "mobilenet_v3_small": _features_stages([0, 1, 3, 8, 12]),
    "mobilenet_v3_large": _features_stages([1, 3, 6, 12, 16]),
    **{f"efficientnet_b{i}": _EFFICIENTNET for i in range(4)},
    "convnext_tiny": _features_stages([1, 3, 5, 7]),
    "regnet_y_400mf": _REGNET, "regnet_y_800mf": _REGNET, "regnet_x_400mf": _REGNET,
}


class TorchvisionBackbone(Backbone):
    def __init__(self, name: str, model: nn.Module) -> None:
        super().__init__()
        self.name = name
        stages = STAGES[name]
        nodes = {node: f"stage{i + 1}" for i, (node, _) in enumerate(stages)}
        self.body = create_feature_extractor(model, return_nodes=nodes)
        self.stage_modules = [prefixes for _, prefixes in stages]
        self._probe(_first_conv(self.body)[1].in_channels)


def create_torchvision_backbone(name: str, *, pretrained: bool | str = False, in_chans: int = 3,
                                **_: object) -> TorchvisionBackbone:
    """Build ``name`` with ImageNet weights if asked (``True``, an enum name, or a .pth/.safetensors path)."""
    model = _build_classifier(name, pretrained)
    if in_chans != 3:
        adapt_stem(model, in_chans)
    return TorchvisionBackbone(name, model)


def _build_classifier(name: str, pretrained: bool | str) -> nn.Module:
    if pretrained is False or pretrained in ("", "none", "false"):
        return torchvision.models.get_model(name, weights=None)
    if isinstance(pretrained, str) and pretrained.endswith((".pth", ".pt", ".safetensors")):
        model = torchvision.models.get_model(name, weights=None)
        _load_file(model, Path(pretrained))
        return model
    weights = tv_weights.resolve(name, pretrained)
    tv_weights.ensure_cached(name, weights)
    return torchvision.models.get_model(name, weights=weights)


def _load_file(model: nn.Module, path: Path) -> None:
    state = load_state_dict_file(path)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if len(usable) < len(own) // 2:
        raise WeightsError(f"{path} does not hold weights for this model: only {len(usable)} of "
                           f"{len(own)} tensors match by name and shape")
    model.load_state_dict(usable, strict=False)


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    return next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))


@torch.no_grad()
def adapt_stem(model: nn.Module, in_chans: int) -> None:
    """Make the first conv take ``in_chans`` channels: 1 sums the RGB kernel, N repeats it scaled."""
    name, conv = _first_conv(model)
    weight = conv.weight
    if in_chans == 1:
        new_weight = weight.sum(dim=1, keepdim=True)
    else:
        reps = math.ceil(in_chans / weight.shape[1])
        new_weight = weight.repeat(1, reps, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)
    new = nn.Conv2d(in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode)
    new.weight.copy_(new_weight)
    if conv.bias is not None:
        new.bias.copy_(conv.bias)
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)
