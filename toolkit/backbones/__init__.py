"""Backbones: ``create_backbone(name, pretrained=..., in_chans=..., trainable_stages=...)``."""
from __future__ import annotations

from functools import partial

from toolkit.backbones.base import Backbone
from toolkit.backbones.simple import create_simple_cnn
from toolkit.backbones.torchvision import STAGES, create_torchvision_backbone
from toolkit.registry import BACKBONES

BACKBONES.register("simple_cnn", create_simple_cnn)
BACKBONES.register("simple_cnn_x2", partial(create_simple_cnn, convs=2))
for _name in STAGES:
    BACKBONES.register(_name, partial(create_torchvision_backbone, _name))


def create_backbone(name: str, *, pretrained: bool | str = False, in_chans: int = 3,
                    trainable_stages: int | None = None) -> Backbone:
    """Build a registered backbone; ``trainable_stages`` keeps only the last N stages trainable."""
    backbone = BACKBONES.get(name)(pretrained=pretrained, in_chans=in_chans)
    backbone.set_trainable(trainable_stages)
    return backbone


__all__ = ["Backbone", "create_backbone", "BACKBONES"]
