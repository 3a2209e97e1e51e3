"""Semantic segmentation models: a shared backbone (encoder) + a decoder from ``SEG_HEADS``.

``build_segmenter("unet", "resnet18", num_classes=2)`` returns a ``Segmenter`` whose forward
takes images of any size and returns full-resolution logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from toolkit.backbones import Backbone, create_backbone
from toolkit.errors import ConfigError
from toolkit.heads.seg_decoders import SEG_HEADS


class Segmenter(nn.Module):
    """``forward(x: Tensor[B, C, H, W]) -> logits Tensor[B, num_classes, H, W]`` for any H, W.

    The input is zero-padded (right and bottom) to a multiple of the backbone's largest stride,
    the decoder's logits are upsampled (bilinear) from its output stride to the padded size and
    the padding is cut off again, so output pixel (i, j) is the prediction for input pixel (i, j).
    """

    def __init__(self, backbone: Backbone, head: str, num_classes: int, decoder_channels: int = 0) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes={num_classes}: a segmenter needs at least one class")
        decoder_cls = SEG_HEADS.get(head)
        extra = {"channels": decoder_channels} if decoder_channels > 0 else {}
        self.backbone = backbone
        self.decoder = decoder_cls(list(backbone.out_channels), list(backbone.strides), num_classes, **extra)
        self.head_name = head
        self.num_classes = num_classes

    @property
    def max_stride(self) -> int:
        return self.backbone.strides[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % self.max_stride, (-width) % self.max_stride
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        logits = self.decoder(list(self.backbone(x).values()))
        if logits.shape[-2:] != x.shape[-2:]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits[..., :height, :width]


def build_segmenter(head: str, backbone_name: str, num_classes: int, *, pretrained: bool | str = False,
                    in_chans: int = 3, trainable_stages: int | None = None,
                    decoder_channels: int = 0) -> Segmenter:
    """Backbone ``backbone_name`` (ImageNet weights if ``pretrained``; only the last
    ``trainable_stages`` stages trainable, ``None`` = all) + decoder ``head`` (unet | fpn |
    deeplabv3 | lraspp) with ``decoder_channels`` (0 = the decoder's default width)."""
    SEG_HEADS.get(head)  # fail on a bad head name before building a large backbone
    backbone = create_backbone(backbone_name, pretrained=pretrained, in_chans=in_chans,
                               trainable_stages=trainable_stages)
    return Segmenter(backbone, head, num_classes, decoder_channels)


__all__ = ["SEG_HEADS", "Segmenter", "build_segmenter"]
