"""Necks over a ``Backbone``'s multi-scale stages.

``BackboneFPN``: torchvision's FeaturePyramidNetwork over every stage with stride >= ``min_stride``
(so a mobilenet gets its stride 4/8/16 maps, not only stride 32), plus extra levels: ``"pool"``
(max-pooled top level, Faster R-CNN) or ``"p6p7"`` (two stride-2 convs on P5, RetinaNet/FCOS).
``SSDFeatures``: the last two stages (strides 16 and 32) + stride-2 depthwise blocks (SSDlite).
"""
from __future__ import annotations

from collections import OrderedDict
from functools import partial

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7
from torchvision.ops.misc import Conv2dNormActivation

from toolkit.backbones.base import Backbone


class BackboneFPN(nn.Module):
    """``forward(x[B, C, H, W]) -> OrderedDict`` of ``out_channels``-channel maps, shallow to deep;
    ``strides`` lists their strides (input pixels per feature pixel), ``levels`` the tapped stages."""

    def __init__(self, backbone: Backbone, min_stride: int = 4, extra: str | None = "pool",
                 out_channels: int = 256) -> None:
        super().__init__()
        self.body = backbone
        picked = [i for i, s in enumerate(backbone.strides) if s >= min_stride] or [backbone.num_stages - 1]
        self.levels = [backbone.stage_names[i] for i in picked]
        extra_blocks = {"pool": LastLevelMaxPool(), "p6p7": LastLevelP6P7(out_channels, out_channels),
                        None: None}[extra]
        self.fpn = FeaturePyramidNetwork([backbone.out_channels[i] for i in picked], out_channels, extra_blocks)
        top = backbone.strides[picked[-1]]
        self.strides = [backbone.strides[i] for i in picked] + [top * 2 ** k for k in range(1, _n_extra(extra) + 1)]
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        feats = self.body(x)
        return self.fpn(OrderedDict((name, feats[name]) for name in self.levels))


def _n_extra(extra: str | None) -> int:
    return {"pool": 1, "p6p7": 2, None: 0}[extra]


class SSDFeatures(nn.Module):
    """``forward(x) -> OrderedDict`` of the backbone's last two stages then ``len(extra_channels)``
    extra maps, each halving the resolution; ``out_channels`` is a list (one per map)."""

    def __init__(self, backbone: Backbone, extra_channels: tuple[int, ...] = (512, 256, 256, 128)) -> None:
        super().__init__()
        self.body = backbone
        self.levels = backbone.stage_names[-2:]
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
        chans = [backbone.out_channels[-1], *extra_channels]
        self.extra = nn.ModuleList(_extra_block(a, b, norm) for a, b in zip(chans, chans[1:]))
        self.out_channels = backbone.out_channels[-2:] + list(extra_channels)
        self.strides = backbone.strides[-2:] + [backbone.strides[-1] * 2 ** k for k in range(1, len(extra_channels) + 1)]

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        feats = self.body(x)
        out = OrderedDict((name, feats[name]) for name in self.levels)
        y = out[self.levels[-1]]
        for i, block in enumerate(self.extra):
            y = block(y)
            out[f"extra{i + 1}"] = y
        return out


def _extra_block(cin: int, cout: int, norm: type) -> nn.Sequential:
    """1x1 reduce -> 3x3 depthwise stride 2 -> 1x1 expand (the SSDlite extra layer)."""
    mid = cout // 2
    act = nn.ReLU6
    return nn.Sequential(
        Conv2dNormActivation(cin, mid, 1, norm_layer=norm, activation_layer=act),
        Conv2dNormActivation(mid, mid, 3, stride=2, groups=mid, norm_layer=norm, activation_layer=act),
        Conv2dNormActivation(mid, cout, 1, norm_layer=norm, activation_layer=act),
    )
