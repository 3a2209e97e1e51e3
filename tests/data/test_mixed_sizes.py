"""Classification of an ImageFolder whose images differ in size with data.img_size=0 (issue 16, defect 5):
the run resizes every image to the median longer side, says so naming data.img_size, and records the size."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from toolkit.data.classification import common_size, load_splits

SIZES = ((16, 16), (16, 16), (30, 20))  # (H, W) of every third image: two small squares, one larger oblong


def write_mixed_imagefolder(root: Path, arrays: dict[str, np.ndarray], per_class: int = 9) -> Path:
    """root/{train,val}/digitC/NNN.png: real digits of classes 0-2, image i resized to SIZES[i % 3]."""
    for split, (xs, ys) in {"train": (arrays["x_train"], arrays["y_train"]),
                            "val": (arrays["x_test"], arrays["y_test"])}.items():
        for c in (0, 1, 2):
            (root / split / f"digit{c}").mkdir(parents=True)
            for i, image in enumerate(xs[ys == c][:per_class if split == "train" else 3]):
                height, width = SIZES[i % len(SIZES)]
                Image.fromarray(image).resize((width, height)).save(root / split / f"digit{c}" / f"{i:03d}.png")
    return root


def test_common_size_is_the_median_longer_side(tmp_path: Path, digits_arrays) -> None:
    datasets, _ = load_splits(str(write_mixed_imagefolder(tmp_path / "mixed", digits_arrays)), 0, 0.1, 0)
    side, note = common_size(datasets.values())
    assert side == 16 and "data.img_size" in note and "16x16 to 30x20" in note  # 2 of 3 images have sides 16
    same, _ = load_splits("digits", 0, 0.1, 0)
    assert common_size(same.values()) == (0, "")  # in-memory arrays share one size: nothing to resize


@pytest.mark.slow
def test_mixed_sizes_train_with_a_notice(tmp_path: Path, digits_arrays, capsys) -> None:
    from toolkit import train

    root = write_mixed_imagefolder(tmp_path / "mixed", digits_arrays)
    metrics = train("classify", [f"data={root}", "data.img_size=0", "model.backbone=simple_cnn",
                                 "model.pretrained=false", "train.epochs=1",
                                 "train.batch_size=8", "train.workers=0", "train.progress=false",
                                 f"train.project={tmp_path}"])
    assert 0.0 <= metrics["accuracy"] <= 1.0
    out = capsys.readouterr().out
    assert "data.img_size=0: the images come in 2 sizes" in out and "resized to 16x16 px" in out
    saved = yaml.safe_load((tmp_path / "classify" / "exp" / "config.yaml").read_text())
    assert saved["data"]["img_size"] == 16
