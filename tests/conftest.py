"""Shared fixtures: small real datasets written by the tests themselves (no network)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toolkit.data import builtin
from toolkit.data.arrays import load_arrays

# fixtures shared across folders: detection / mask datasets and DICOM checks written by the tests
pytest_plugins = ["tests.helpers.detection", "tests.helpers.segmentation", "tests.helpers.dicom"]

@pytest.fixture(scope="session")
def digits_arrays() -> dict[str, np.ndarray]:
    """scikit-learn's real 8x8 digits, prepared by the toolkit's own prepare command."""
    return load_arrays(builtin.prepare("digits"))


def write_imagefolder(root: Path, arrays: dict[str, np.ndarray], classes: tuple[int, ...] = (0, 1, 2),
                      per_class: int = 12, size: int = 16, mode: str = "L") -> Path:
    """ImageFolder tree of real digits upscaled to ``size`` px: train/ and val/ per class."""
    for split, (xs, ys) in {"train": (arrays["x_train"], arrays["y_train"]),
                            "val": (arrays["x_test"], arrays["y_test"])}.items():
        for c in classes:
            folder = root / split / f"digit{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(xs[ys == c][:per_class if split == "train" else per_class // 2]):
                img = Image.fromarray(image).resize((size, size), Image.NEAREST)
                if mode == "I;16":
                    img = Image.fromarray((np.asarray(img).astype(np.uint16) * 257))
                elif mode != "L":
                    img = img.convert(mode)
                img.save(folder / f"{i:03d}.png")
    return root


@pytest.fixture()
def imagefolder(tmp_path: Path, digits_arrays: dict[str, np.ndarray]) -> Path:
    return write_imagefolder(tmp_path / "digits3", digits_arrays)


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory) -> Path:
    """A small classifier trained for 2 epochs on real digits through the toolkit's own API."""
    from toolkit import train

    project = tmp_path_factory.mktemp("digits_run")
    train("classify", ["data=digits", "train.epochs=2", "train.progress=false", f"train.project={project}"])
    return project / "classify" / "exp" / "weights" / "best.pt"
