"""The torch Dataset shared by the detection and instance datasets: one item per record of a split."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from torch.utils.data import Dataset

from toolkit.data.image_io import read_image


class RecordDataset(Dataset):
    """Item ``index``: ``transform(sample(record, image))`` plus ``"index"`` and ``"scale"`` (output width / file
    width, the resize), so that metrics can be computed in the file's pixels. ``data``: a split with ``classes``
    and ``records`` (each with a ``path``); ``image``: (H, W, C) float as ``read_image`` gives it."""

    def __init__(self, data: Any, transform: Callable[[dict[str, Any]], dict[str, Any]], channels: int = 3) -> None:
        self.data = data
        self.classes = data.classes
        self.transform = transform
        self.channels = channels

    def __len__(self) -> int:
        return len(self.data.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.data.records[index]
        image = read_image(rec.path, self.channels)
        out = self.transform(self.sample(rec, image))
        out["index"] = index
        out["scale"] = out["image"].shape[-1] / image.shape[1]
        return out

    def sample(self, rec: Any, image: np.ndarray) -> dict[str, Any]:
        """The transform's input for ``rec`` whose pixels are ``image``."""
        raise NotImplementedError
