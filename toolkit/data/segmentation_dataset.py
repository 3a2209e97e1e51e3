"""Torch dataset of (image, mask) files for semantic segmentation, and its padding collate."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from toolkit.data.formats.masks import read_mask
from toolkit.data.image_io import read_image


class SegmentationDataset(Dataset):
    """Sample ``i``: ``{"image": Tensor (C, H, W) float, "mask": Tensor (H, W) int64, "source": str}``
    after ``transform`` (a ``segmentation_pipeline``; the loader reseeds it through ``.transform``).

    ``channels``: 1 | 3 (0 = as stored in the first image); ``window``: DICOM windowing (``read_image``). ``repeat`` > 1 visits each pair that
    many times per epoch (different random crops of few large images).
    """

    def __init__(self, pairs: list[tuple[Path, Path]], channels: int = 0,
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None, repeat: int = 1,
                 window: str = "") -> None:
        self.pairs = list(pairs)
        self.window = window
        self.channels = channels or (read_image(self.pairs[0][0], 0, window).shape[2] if self.pairs else 3)
        self.transform = transform
        self.repeat = max(1, repeat)

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def load(self, index: int) -> dict[str, Any]:
        """The untransformed sample: image float32 (H, W, C) in [0, 1], mask uint8/uint16 (H, W)."""
        image_path, mask_path = self.pairs[index % len(self.pairs)]
        mask = read_mask(mask_path)
        mask = mask.astype(np.uint8 if mask.max(initial=0) < 256 else np.uint16)
        return {"image": read_image(image_path, self.channels, self.window), "mask": mask, "source": str(image_path)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.load(index)
        if self.transform is not None:
            sample = self.transform(sample)
        else:
            sample["image"] = torch.from_numpy(sample["image"].transpose(2, 0, 1).copy())
            sample["mask"] = torch.from_numpy(sample["mask"].astype(np.int64))
        return sample


class PadCollate:
    """Stack samples of different sizes: pad right/bottom to the largest, images with 0 (the
    normalised mean) and masks with ``ignore_index`` so padding never counts in loss or metrics.
    Batch: ``{"image": (B, C, H, W), "mask": (B, H, W) int64, "size": (B, 2) int64 unpadded
    (height, width), "source": list[str]}``."""

    def __init__(self, ignore_index: int) -> None:
        self.ignore_index = ignore_index

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        height = max(s["image"].shape[-2] for s in samples)
        width = max(s["image"].shape[-1] for s in samples)

        def pad(t: torch.Tensor, value: float) -> torch.Tensor:
            return F.pad(t, (0, width - t.shape[-1], 0, height - t.shape[-2]), value=value)

        return {"image": torch.stack([pad(s["image"], 0.0) for s in samples]),
                "mask": torch.stack([pad(s["mask"], self.ignore_index) for s in samples]),
                "size": torch.tensor([tuple(s["image"].shape[-2:]) for s in samples], dtype=torch.long),
                "source": [s.get("source", "") for s in samples]}
