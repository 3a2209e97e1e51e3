"""Classification head: global average pool of the deepest stage -> dropout -> linear."""
from __future__ import annotations

import torch
from torch import nn

from toolkit.backbones import Backbone


class ClassificationHead(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        x = next(reversed(features.values()))
        return self.fc(self.dropout(self.pool(x).flatten(1)))


class Classifier(nn.Module):
    """``forward(x: [B, C, H, W]) -> logits [B, num_classes]``."""

    def __init__(self, backbone: Backbone, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = ClassificationHead(backbone.out_channels[-1], num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
