"""Stand-ins for the tiled-inference tests: a per-image model that records its batch sizes, and tile transforms."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class PerImageModel(nn.Module):
    """Stand-in torchvision detector: ``predict`` answers each (C, H, W) image of a batch; ``calls`` holds the
    batch sizes it was called with."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))  # so the inferer finds the device
        self.calls: list[int] = []

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.calls.append(len(images))
        return [self.predict(x) for x in images]

    def predict(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model output (``boxes``, ``scores``, ``labels``, ...) for one image."""
        raise NotImplementedError


def as_is(sample: dict[str, Any]) -> dict[str, Any]:
    """The tile transform that only makes the (H, W, C) image a (C, H, W) tensor."""
    return {**sample, "image": torch.from_numpy(np.ascontiguousarray(sample["image"])).permute(2, 0, 1)}


def double(sample: dict[str, Any]) -> dict[str, Any]:
    """Resized to twice the size (exactly), as the eval pipeline resizes a tile to the training size."""
    return {**sample, "image": as_is(sample)["image"].repeat_interleave(2, 1).repeat_interleave(2, 2)}
