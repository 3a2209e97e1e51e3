"""Segmentation decoders over a backbone's multi-scale features (encoder -> decoder -> logits).

Every decoder is built from the backbone's ``out_channels`` and ``strides`` (input pixels per
feature pixel, powers of two, shallow to deep), takes the list of stage features
``[Tensor(B, C_i, H / s_i, W / s_i)]`` and returns logits ``(B, num_classes, H / o, W / o)``
at its ``output_stride`` ``o``; the segmenter upsamples them to the input size.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP
from torchvision.models.segmentation.lraspp import LRASPPHead
from torchvision.ops import FeaturePyramidNetwork

from toolkit.registry import SEG_HEADS


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _conv_gn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.GroupNorm(math.gcd(32, cout), cout), nn.ReLU(inplace=True))


class UNetDecoder(nn.Module):
    """U-Net: from the deepest stage, upsample x2 and fuse the skip of the same stride (if the
    backbone has one) with two conv3x3-BN-ReLU, down to stride 1; then a conv3x3 classifier.
    Block width at stride ``s``: ``channels * s / 16`` (256, 128, 64, 32, 16 for the default),
    the widths of segmentation_models_pytorch's U-Net."""

    def __init__(self, in_channels: list[int], strides: list[int], num_classes: int, channels: int = 256) -> None:
        super().__init__()
        self.output_stride = 1
        self.skip_index = {s: i for i, s in enumerate(strides[:-1])}
        cin = in_channels[-1]
        self.blocks = nn.ModuleList()
        self.block_strides: list[int] = []
        stride = strides[-1] // 2
        while stride >= 1:
            skip = in_channels[self.skip_index[stride]] if stride in self.skip_index else 0
            cout = min(channels, max(8, channels * stride // 16))
            self.blocks.append(nn.Sequential(_conv_bn_relu(cin + skip, cout), _conv_bn_relu(cout, cout)))
            self.block_strides.append(stride)
            cin, stride = cout, stride // 2
        self.classifier = nn.Conv2d(cin, num_classes, 3, padding=1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for block, stride in zip(self.blocks, self.block_strides):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            if stride in self.skip_index:
                x = torch.cat([x, features[self.skip_index[stride]]], dim=1)
            x = block(x)
        return self.classifier(x)


class FPNDecoder(nn.Module):
    """FPN (Kirillov et al., as in segmentation_models_pytorch): torchvision's
    FeaturePyramidNetwork over the stages of stride >= 4, each level brought to the finest of
    them by conv3x3-GN-ReLU + x2 upsampling blocks, summed, dropout, conv1x1 classifier."""

    def __init__(self, in_channels: list[int], strides: list[int], num_classes: int, channels: int = 256,
                 dropout: float = 0.2) -> None:
        super().__init__()
        used = [i for i, s in enumerate(strides) if s >= 4]
        self.levels = used if len(used) >= 2 else list(range(len(strides)))
        self.output_stride = strides[self.levels[0]]
        seg_channels = channels // 2
        self.fpn = FeaturePyramidNetwork([in_channels[i] for i in self.levels], channels)
        self.branches = nn.ModuleList()
        for i in self.levels:
            ups = int(math.log2(strides[i] // self.output_stride))
            layers: list[nn.Module] = []
            for k in range(max(ups, 1)):
                layers.append(_conv_gn_relu(channels if k == 0 else seg_channels, seg_channels))
                if ups:
                    layers.append(nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False))
            self.branches.append(nn.Sequential(*layers))
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(seg_channels, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        pyramid = self.fpn({str(i): features[i] for i in self.levels})
        merged = sum(branch(p) for branch, p in zip(self.branches, pyramid.values()))
        return self.classifier(self.dropout(merged))


class DeepLabV3Decoder(nn.Module):
    """DeepLabV3: torchvision's ASPP on the deepest stage, conv3x3-BN-ReLU, conv1x1 classifier.

    The backbones are not dilated, so the output stride is the backbone's (32) and the atrous
    rates are those of the paper's output stride 16 halved: (3, 6, 9). The image-pooling branch
    normalises with GroupNorm instead of BatchNorm so a batch of one image still trains."""

    def __init__(self, in_channels: list[int], strides: list[int], num_classes: int, channels: int = 256,
                 rates: tuple[int, ...] = (3, 6, 9)) -> None:
        super().__init__()
        self.output_stride = strides[-1]
        aspp = ASPP(in_channels[-1], list(rates), out_channels=channels)
        aspp.convs[-1][2] = nn.GroupNorm(math.gcd(32, channels), channels)
        self.head = nn.Sequential(aspp, _conv_bn_relu(channels, channels), nn.Conv2d(channels, num_classes, 1))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.head(features[-1])


class LRASPPDecoder(nn.Module):
    """Lite R-ASPP (MobileNetV3 paper): torchvision's LRASPPHead on the deepest stage ("high")
    and the stage of a quarter of its stride ("low", stride 8 for stride-32 backbones)."""

    def __init__(self, in_channels: list[int], strides: list[int], num_classes: int, channels: int = 128) -> None:
        super().__init__()
        fine = [i for i, s in enumerate(strides) if s <= strides[-1] // 4]
        self.low = fine[-1] if fine else 0
        self.output_stride = strides[self.low]
        self.head = LRASPPHead(in_channels[self.low], in_channels[-1], num_classes, channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.head({"low": features[self.low], "high": features[-1]})


for _name, _cls in {"unet": UNetDecoder, "fpn": FPNDecoder, "deeplabv3": DeepLabV3Decoder,
                    "lraspp": LRASPPDecoder}.items():
    SEG_HEADS.register(_name, _cls)
