"""The backbone contract shared by every task head.

``forward(x: Tensor[B, C, H, W]) -> dict[str, Tensor]``: ordered stage outputs, shallow to deep.
``out_channels[i]`` and ``strides[i]`` (input pixels per feature pixel) describe stage ``i``.
"""
from __future__ import annotations

import torch
from torch import nn


class Backbone(nn.Module):
    """Multi-stage feature extractor. Subclasses set ``body``, ``stage_modules`` and call ``_probe``.

    ``stage_modules[i]`` lists the parameter-name prefixes that belong to stage ``i`` (the stem
    belongs to stage 0), so ``freeze(n)`` can freeze the first ``n`` stages.
    """

    name: str = "backbone"
    out_channels: list[int]
    strides: list[int]
    stage_names: list[str]
    stage_modules: list[list[str]]

    def __init__(self) -> None:
        super().__init__()
        self._frozen_bn: list[nn.Module] = []

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.body(x)

    @torch.no_grad()
    def _probe(self, in_chans: int, size: int = 64) -> None:
        """Run a dummy input once to record ``out_channels`` and ``strides`` of each stage."""
        was_training = self.training
        self.eval()
        feats = self.forward(torch.zeros(1, in_chans, size, size))
        self.train(was_training)
        self.stage_names = list(feats)
        self.out_channels = [f.shape[1] for f in feats.values()]
        self.strides = [size // f.shape[-1] for f in feats.values()]

    @property
    def num_stages(self) -> int:
        return len(self.out_channels)

    def freeze(self, stages: int) -> None:
        """Freeze parameters AND BatchNorm running statistics of the first ``stages`` stages."""
        stages = max(0, min(stages, self.num_stages))
        prefixes = tuple(p + "." for group in self.stage_modules[:stages] for p in group)
        self._frozen_bn = []
        for name, module in self.body.named_modules():
            if not (name + ".").startswith(prefixes):
                continue
            for p in module.parameters(recurse=False):
                p.requires_grad_(False)
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                self._frozen_bn.append(module)
        self.train(self.training)

    def set_trainable(self, trainable_stages: int | None) -> None:
        """Keep only the last ``trainable_stages`` stages trainable (``None`` = all)."""
        if trainable_stages is not None:
            self.freeze(self.num_stages - trainable_stages)

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        for bn in self._frozen_bn:
            bn.eval()
        return self
