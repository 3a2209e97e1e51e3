"""Classification datasets from a built-in name, an ImageFolder tree or a CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from toolkit.data import builtin
from toolkit.data.formats.csv import is_csv, read_csv_dataset
from toolkit.data.formats.imagefolder import is_imagefolder, read_imagefolder
from toolkit.data.image_io import read_image, to_float
from toolkit.data.splits import holdout
from toolkit.errors import DataError
from toolkit.registry import DATASETS

Reader = Callable[[Path, int], np.ndarray]


class ClassificationDataset(Dataset):
    """Samples ``{"image": float32 (H, W, C) in [0, 1] -> transform, "label": int, "index": int}``.

    ``items`` are file paths (read lazily) or one uint8/uint16 array (N, H, W[, C]) held in memory.
    """

    def __init__(self, items: Sequence[Path] | np.ndarray, labels: Sequence[int], channels: int,
                 transform: Callable[[dict], dict] | None = None, reader: Reader | None = None) -> None:
        self.items = items
        self.labels = np.asarray(labels, dtype=np.int64)
        self.channels = channels
        self.transform = transform
        self.reader = reader or (lambda path, ch: read_image(path, ch))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int] | None:
        """(H, W) shared by every image of an in-memory dataset; None for files (sizes may differ)."""
        return tuple(self.items.shape[1:3]) if isinstance(self.items, np.ndarray) else None

    def image(self, i: int) -> np.ndarray:
        if isinstance(self.items, np.ndarray):
            array = self.items[i]
            return to_float(array[:, :, None] if array.ndim == 2 else array)
        return self.reader(self.items[i], self.channels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = {"image": self.image(i), "label": int(self.labels[i]), "index": i}
        return self.transform(sample) if self.transform else sample


def load_splits(source: str, channels: int, val_split: float, seed: int, reader: Reader | None = None,
                limit: int = 0) -> tuple[dict[str, ClassificationDataset], list[str]]:
    """Datasets (without transforms) for train/val[/test] and the class names.

    ``channels``: 0 = decide from the first training image (1 for gray, 3 for colour).
    Without a val split, ``val_split`` of train is held out (stratified, seeded); ``limit`` > 0
    keeps a stratified subset of that many training samples.
    """
    if source in DATASETS:
        arrays = builtin.load_arrays(builtin.prepare(source))
        classes = [str(c) for c in arrays["classes"]]
        raw = {"train": (arrays["x_train"], arrays["y_train"]), "test": (arrays["x_test"], arrays["y_test"])}
    else:
        path = Path(source).expanduser()
        if is_imagefolder(path):
            raw, classes = read_imagefolder(path)
        elif is_csv(path):
            raw, classes = read_csv_dataset(path)
        else:
            raise DataError(f"data.source={source!r} is neither a built-in dataset ({', '.join(DATASETS.names())}), "
                            "an ImageFolder root (with train/CLASS/*.png) nor a CSV (path,label)")
    if "val" not in raw:
        raw["train"], raw["val"] = _split(*raw["train"], val_split, seed)
    if 0 < limit < len(raw["train"][1]):
        _, raw["train"] = _split(*raw["train"], limit / len(raw["train"][1]), seed)
    first = raw["train"][0][0]
    if channels == 0:
        channels = _channels_of(first, reader)
    return {s: ClassificationDataset(items, labels, channels, reader=reader) for s, (items, labels) in raw.items()}, classes


def _split(items: Any, labels: Any, fraction: float, seed: int) -> tuple[tuple, tuple]:
    if fraction <= 0:
        raise DataError("the dataset has no val split; set data.val_split to a fraction such as 0.1")
    tr, va = holdout(labels, fraction, seed)
    labels = np.asarray(labels)
    if isinstance(items, np.ndarray):
        return (items[tr], labels[tr]), (items[va], labels[va])
    return ([items[i] for i in tr], labels[tr]), ([items[i] for i in va], labels[va])


def _channels_of(first: Any, reader: Reader | None) -> int:
    if isinstance(first, np.ndarray):
        return 1 if first.ndim == 2 else first.shape[-1]
    image = (reader or (lambda p, c: read_image(p, c)))(first, 0)
    return image.shape[2]
