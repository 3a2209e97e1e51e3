from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import write_imagefolder
from toolkit.data.classification import load_splits
from toolkit.data.image_io import read_image
from toolkit.data.loaders import balanced_sampler
from toolkit.errors import DataError


@pytest.mark.parametrize("mode,channels", [("L", 1), ("I;16", 1), ("RGB", 3), ("RGBA", 3)])
def test_imagefolder_8_and_16_bit_gray_and_colour(tmp_path: Path, digits_arrays, mode: str, channels: int) -> None:
    root = write_imagefolder(tmp_path / mode.replace(";", ""), digits_arrays, mode=mode)
    splits, classes = load_splits(str(root), 0, 0.1, 0)
    assert classes == ["digit0", "digit1", "digit2"]
    assert len(splits["train"]) == 36 and len(splits["val"]) == 18
    image = splits["train"].image(0)
    assert image.dtype == np.float32 and image.shape == (16, 16, channels)
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.max() > 0.5  # 16-bit scaled by 65535


def test_csv_with_split_column_and_missing_file(tmp_path: Path, digits_arrays) -> None:
    root = write_imagefolder(tmp_path / "img", digits_arrays)
    lines = ["path,label,split"] + [f"{p.relative_to(tmp_path)},{p.parent.name},{p.parts[-3]}"
                                    for p in sorted(root.rglob("*.png"))]
    (tmp_path / "data.csv").write_text("\n".join(lines))
    splits, classes = load_splits(str(tmp_path / "data.csv"), 0, 0.1, 0)
    assert classes == ["digit0", "digit1", "digit2"] and len(splits["val"]) == 18
    (tmp_path / "bad.csv").write_text("\n".join(lines[:3] + ["img/train/digit0/missing.png,digit0,train"]))
    with pytest.raises(DataError, match=r"bad.csv:4: image file not found: img/train/digit0/missing.png"):
        load_splits(str(tmp_path / "bad.csv"), 0, 0.1, 0)
    (tmp_path / "nolabel.csv").write_text("file,class\na.png,x\n")
    with pytest.raises(DataError, match="'path' and 'label'"):
        load_splits(str(tmp_path / "nolabel.csv"), 0, 0.1, 0)


def test_empty_class_folder_and_unknown_source(tmp_path: Path, digits_arrays) -> None:
    root = write_imagefolder(tmp_path / "img", digits_arrays)
    (root / "train" / "empty").mkdir()
    with pytest.raises(DataError, match="class folder .*empty has no images"):
        load_splits(str(root), 0, 0.1, 0)
    with pytest.raises(DataError, match="neither a built-in dataset"):
        load_splits(str(tmp_path / "nothing"), 0, 0.1, 0)


def test_corrupt_and_truncated_images_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    for name in ("junk.png", "cut.png", "missing.png"):
        with pytest.raises(DataError, match=name):
            read_image(tmp_path / name)


def test_balanced_sampler_evens_out_classes() -> None:
    labels = [0] * 90 + [1] * 10
    sampler = balanced_sampler(labels, 4000, torch.Generator().manual_seed(0))
    drawn = np.bincount(np.asarray(labels)[list(sampler)])
    assert abs(drawn[0] - drawn[1]) < 300


def test_translation_of_same_sized_images_is_a_whole_pixel_shift() -> None:
    from toolkit.data.transforms import Augment, classification_pipeline

    image = np.random.default_rng(0).uniform(0.1, 1.0, (28, 20, 1)).astype(np.float32)
    pipe = classification_pipeline(0, True, Augment(hflip=0, translate=0.1), (0.0,), (1.0,), native_shape=(28, 20))
    shifts = set()
    for _ in range(200):
        out = pipe({"image": image})["image"][0].numpy()
        assert out.shape == (28, 20)
        # the shifted image: some rows / columns zero-filled, the rest the original moved by (dy, dx)
        def kept(dy: int, dx: int) -> tuple[slice, slice]:  # where the original stays in view after the shift
            return slice(max(-dy, 0), 28 - max(dy, 0)), slice(max(-dx, 0), 20 - max(dx, 0))

        found = [(dy, dx) for dy in range(-3, 4) for dx in range(-2, 3)
                 if np.array_equal(np.roll(out, (-dy, -dx), (0, 1))[kept(dy, dx)], image[kept(dy, dx)][..., 0])]
        assert len(found) == 1 and (out == 0).sum() == 28 * 20 - (28 - abs(found[0][0])) * (20 - abs(found[0][1]))
        shifts.add(found[0])
    assert shifts == {(dy, dx) for dy in range(-3, 4) for dx in range(-2, 3)}  # +-10% of 28 and 20 px, rounded
