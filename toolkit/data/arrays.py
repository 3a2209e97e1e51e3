"""Built-in array datasets (``fashion-mnist``, ``digits``): images held in one ``arrays.npz`` per dataset
with x_train, y_train, x_test, y_test (uint8) and classes."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from toolkit.cache import sources_dir
from toolkit.errors import DataError

FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The ``arrays.npz`` of an array dataset: x_train, y_train, x_test, y_test, classes."""
    with np.load(path / "arrays.npz", allow_pickle=False) as f:
        return dict(f)


def prepare_fashion_mnist(root: Path) -> Path:
    """70k 28x28 grayscale images, 10 classes: Debian's dataset-fashion-mnist, else torchvision."""
    if (root / "arrays.npz").is_file():
        return root
    src = FASHION_MNIST_DEBIAN if FASHION_MNIST_DEBIAN.is_dir() else _download_fashion_mnist()
    arrays = {
        f"{x}_{split}": _read_idx(src / f"{prefix}-{kind}-ubyte.gz")
        for split, prefix in (("train", "train"), ("test", "t10k"))
        for x, kind in (("x", "images-idx3"), ("y", "labels-idx1"))
    }
    _write(root, arrays, FASHION_MNIST_CLASSES)
    return root


def prepare_digits(root: Path) -> Path:
    """scikit-learn's 1,797 real 8x8 handwritten digits with their fixed test set: scikit-learn's stratified 80/20
    ``train_test_split`` (seed 0), 1,437 / 360 images. It defines the dataset (as Fashion-MNIST's t10k files do),
    so the toolkit's validation splitter does not apply to it."""
    if (root / "arrays.npz").is_file():
        return root
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    x_tr, x_te, y_tr, y_te = train_test_split(images, digits.target.astype(np.uint8), test_size=0.2,
                                              random_state=0, stratify=digits.target)
    _write(root, {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}, [str(i) for i in range(10)])
    return root


def _write(root: Path, arrays: dict[str, np.ndarray], classes: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / "arrays.tmp.npz"
    np.savez(tmp, classes=np.array(classes), **arrays)
    os.replace(tmp, root / "arrays.npz")


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format): big-endian header of dims, then uint8 data."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _download_fashion_mnist() -> Path:
    from torchvision.datasets import FashionMNIST

    root = sources_dir()
    try:
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except (OSError, RuntimeError) as e:
        raise DataError("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist) and "
                        f"could not be downloaded ({type(e).__name__}); run `apt-get install "
                        "dataset-fashion-mnist` or go online") from None
    return root / "FashionMNIST" / "raw"
