"""Mask folders: pairing, classes.yaml, bit depths, seeded split, clear errors; masks stay aligned."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from toolkit.data.formats.masks import load_mask_splits, read_classes, read_mask
from toolkit.data.segmentation_dataset import PadCollate, SegmentationDataset
from toolkit.data.transforms import Augment, segmentation_pipeline
from toolkit.errors import DataError

from tests.helpers.segmentation import write_mask_dataset


def test_reads_splits_classes_and_ignore(tmp_path: Path) -> None:
    root = write_mask_dataset(tmp_path / "d", {"train": 4, "val": 2, "test": 1}, num_classes=3,
                              classes_yaml="names: {0: background, 1: disk, 2: square}\nignore_index: 7\n")
    data = load_mask_splits(root)
    assert data.classes == ["background", "disk", "square"] and data.ignore_index == 7
    assert {s: len(p) for s, p in data.pairs.items()} == {"train": 4, "val": 2, "test": 1}
    assert all(i.stem == m.stem for pairs in data.pairs.values() for i, m in pairs)
    assert read_classes(tmp_path / "none.yaml") == (None, None)


def test_no_val_gives_seeded_split_and_classes_from_masks(tmp_path: Path) -> None:
    root = write_mask_dataset(tmp_path / "d", {"train": 10}, num_classes=3)
    a, b = load_mask_splits(root, seed=1), load_mask_splits(root, seed=1)
    assert len(a.pairs["val"]) == 2 and len(a.pairs["train"]) == 8
    assert a.pairs == b.pairs
    assert load_mask_splits(root, seed=2).pairs["val"] != a.pairs["val"]
    assert a.classes == ["class0", "class1", "class2"]


def test_sixteen_bit_rgb_images_and_tiff_masks(tmp_path: Path) -> None:
    root = tmp_path / "d" / "train"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    mask = np.zeros((20, 30), np.uint16)
    mask[5:10, 5:12] = 300  # 16-bit class ids
    tifffile.imwrite(root / "masks" / "a.tif", mask)
    Image.fromarray((np.arange(600).reshape(20, 30) * 100).astype(np.uint16)).save(root / "images" / "a.png")
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(root / "images" / "b.png")
    Image.fromarray(mask.astype(np.uint8) // 255).save(root / "masks" / "b.png")
    data = load_mask_splits(tmp_path / "d", val_split=0.0)
    assert len(data.classes) == 301 and read_mask(root / "masks" / "a.tif").max() == 300
    sample = SegmentationDataset(data.pairs["train"], channels=3)[0]
    assert sample["image"].shape == (3, 20, 30) and sample["mask"].dtype == torch.int64
    assert sample["image"].max() <= 1.0 and sample["mask"].max() == 300


def _break(root: Path, action: str) -> None:
    masks = root / "train" / "masks"
    if action == "size":
        Image.fromarray(np.zeros((10, 11), np.uint8)).save(masks / "001.png")
    elif action == "class":
        bad = np.asarray(Image.open(masks / "002.png")).copy()
        bad[3, 4] = 5
        Image.fromarray(bad).save(masks / "002.png")
    elif action == "missing":
        (masks / "003.png").unlink()
    elif action == "orphan":
        Image.fromarray(np.zeros((40, 52), np.uint8)).save(masks / "extra.png")
    elif action == "rgb":
        Image.fromarray(np.zeros((40, 52, 3), np.uint8)).save(masks / "000.png")


@pytest.mark.parametrize("action, pattern", [
    ("size", r"001\.png is 10x11 .* 48x48: masks must match"),
    ("class", r"002\.png holds class id 5 but there are 2 classes .* classes\.yaml"),
    ("missing", r"003\.png has no mask: add .*003\.png"),
    ("orphan", r"extra\.png has no image"),
    ("rgb", r"000\.png: a mask must be one channel .* class indices"),
])
def test_bad_dataset_gives_clear_error(mask_dataset: Path, action: str, pattern: str) -> None:
    _break(mask_dataset, action)
    with pytest.raises(DataError, match=pattern):
        load_mask_splits(mask_dataset)


def test_missing_folder_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_mask_splits(tmp_path / "nope")
    root = write_mask_dataset(tmp_path / "d", classes_yaml="classes: {a: b}\n")
    with pytest.raises(DataError, match="class ids must be integers"):
        load_mask_splits(root)


def test_marker_pixel_stays_aligned_through_train_pipeline() -> None:
    """A one-pixel marker in image and mask lands on the same pixel after flips, rotations,
    affine warps and the random crop (image bilinear, mask nearest-neighbour)."""
    aug = Augment(hflip=0.5, vflip=0.5, rotate90=0.5, translate=0.1, scale=0.1, rotate=15)
    pipeline = segmentation_pipeline(48, True, aug, mean=(0.0,), std=(1.0,), ignore_index=255)
    checked = 0
    for seed in range(40):
        image = np.zeros((64, 80, 1), np.float32)
        mask = np.zeros((64, 80), np.uint8)
        y, x = 20 + seed % 20, 25 + (3 * seed) % 30
        image[y, x], mask[y, x] = 1.0, 1
        pipeline.set_seed(seed)
        out = pipeline({"image": image, "mask": mask})
        img, msk = out["image"][0].numpy(), out["mask"].numpy()
        assert img.shape == msk.shape == (48, 48)
        if (msk == 1).sum() == 0:
            assert img.max() < 0.5  # marker gone from the mask only if it left the image too
            continue
        ys, xs = np.nonzero(msk == 1)
        peak = np.unravel_index(img.argmax(), img.shape)
        assert abs(ys.mean() - peak[0]) <= 1 and abs(xs.mean() - peak[1]) <= 1, seed
        checked += 1
    assert checked >= 20


def test_pad_collate_pads_masks_with_ignore() -> None:
    a = {"image": torch.ones(1, 4, 5), "mask": torch.ones(4, 5, dtype=torch.long), "source": "a"}
    b = {"image": torch.ones(1, 6, 3), "mask": torch.zeros(6, 3, dtype=torch.long), "source": "b"}
    batch = PadCollate(255)([a, b])
    assert batch["image"].shape == (2, 1, 6, 5) and batch["mask"].shape == (2, 6, 5)
    assert (batch["mask"][0, 4:] == 255).all() and (batch["mask"][1, :, 3:] == 255).all()
    assert batch["image"][0, 0, 4:].sum() == 0 and batch["size"].tolist() == [[4, 5], [6, 3]]
