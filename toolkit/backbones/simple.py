"""``simple_cnn``: stages of conv3x3-BN-ReLU + max-pool, the classic small MNIST network.

For small grayscale images (28-64 px) where an ImageNet network is overkill. Stage ``i`` has
``widths[i]`` channels at stride ``2**(i+1)``; ``simple_cnn_x2`` has two convs per stage.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from toolkit.backbones.base import Backbone
from toolkit.errors import WeightsError


def _block(cin: int, cout: int, convs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class _Stages(nn.Module):
    def __init__(self, in_chans: int, widths: tuple[int, ...], convs: int) -> None:
        super().__init__()
        chans = (in_chans, *widths)
        self.stages = nn.ModuleList(_block(a, b, convs) for a, b in zip(chans, chans[1:]))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            out[f"stage{i + 1}"] = x
        return out


class SimpleCNN(Backbone):
    def __init__(self, in_chans: int = 1, widths: tuple[int, ...] = (32, 64, 128), convs: int = 1) -> None:
        super().__init__()
        self.name = "simple_cnn" if convs == 1 else f"simple_cnn_x{convs}"
        self.body = _Stages(in_chans, widths, convs)
        self.stage_modules = [[f"stages.{i}"] for i in range(len(widths))]
        self._probe(in_chans)


def create_simple_cnn(*, pretrained: bool | str = False, in_chans: int = 1, convs: int = 1,
                      **_: object) -> SimpleCNN:
    if pretrained:
        raise WeightsError("simple_cnn has no pretrained weights; use model.pretrained=false "
                           "or an ImageNet backbone such as mobilenet_v2")
    return SimpleCNN(in_chans, convs=convs)
