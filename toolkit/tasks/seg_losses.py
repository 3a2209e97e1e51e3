"""Segmentation losses: cross-entropy (torch), Dice and focal (MONAI), Dice + CE.

Every loss maps ``logits (B, K, H, W)`` and ``target (B, H, W)`` int64 class indices to a scalar;
pixels equal to ``ignore_index`` count for nothing; ``class_weights`` (K values) weight classes.
"""
from __future__ import annotations

from typing import Sequence

import torch
from monai.losses import DiceLoss, FocalLoss
from torch import nn

from toolkit.errors import ConfigError

LOSSES = ("ce", "dice", "dicece", "focal")


class _Dice(nn.Module):
    """MONAI's soft Dice over softmax probabilities, one-hot targets, Dice per class and image."""

    def __init__(self, weight: torch.Tensor | None, ignore_index: int) -> None:
        super().__init__()
        self.dice = DiceLoss(softmax=True, to_onehot_y=True, weight=weight, ignore_index=ignore_index)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice(logits, target.unsqueeze(1))


class _Focal(nn.Module):
    """MONAI's focal loss over softmax probabilities (gamma 2)."""

    def __init__(self, weight: torch.Tensor | None, ignore_index: int, gamma: float = 2.0) -> None:
        super().__init__()
        self.focal = FocalLoss(to_onehot_y=True, use_softmax=True, gamma=gamma, weight=weight,
                               ignore_index=ignore_index)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.focal(logits, target.unsqueeze(1))


class _Sum(nn.Module):
    def __init__(self, *losses: nn.Module) -> None:
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(loss(logits, target) for loss in self.losses)


def build_loss(name: str, num_classes: int, class_weights: Sequence[float] = (),
               ignore_index: int = 255) -> nn.Module:
    """``name``: ce | dice | dicece (Dice + CE, equal weight) | focal."""
    weight = None
    if class_weights:
        if len(class_weights) != num_classes:
            raise ConfigError(f"model.class_weights has {len(class_weights)} values but there are "
                              f"{num_classes} classes: give one weight per class")
        weight = torch.tensor(list(class_weights), dtype=torch.float32)
    if name == "ce":
        return nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index)
    if name == "dice":
        return _Dice(weight, ignore_index)
    if name == "dicece":
        return _Sum(_Dice(weight, ignore_index), nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index))
    if name == "focal":
        return _Focal(weight, ignore_index)
    raise ConfigError(f"unknown model.loss '{name}'; valid: {', '.join(LOSSES)}")
