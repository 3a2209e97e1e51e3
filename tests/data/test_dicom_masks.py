"""2D segmentation of DICOM images: a mask folder of CT slices (.dcm) with PNG masks trains with one window
and with three stacked windows (issue 16, defect 2)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from PIL import Image
from pydicom.data import get_testdata_file

from toolkit.data.formats.masks import load_mask_splits
from toolkit.errors import DataError


def write_dicom_mask_dataset(root: Path) -> Path:
    """root/{train,val}/{images,masks}/: pydicom's 128x128 CT slice turned 0-3 quarter turns (and flipped for
    val) as .dcm, each with a PNG mask of its dense tissue (HU > 100 = class 1)."""
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for split, turns, flip in (("train", range(4), False), ("val", range(2), True)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for k in turns:
            stored = np.rot90(source.pixel_array, k)
            stored = np.ascontiguousarray(stored[:, ::-1] if flip else stored)
            ds = source.copy()
            ds.PixelData = stored.tobytes()
            ds.save_as(root / split / "images" / f"slice{k}.dcm")
            hu = stored * float(source.RescaleSlope) + float(source.RescaleIntercept)
            Image.fromarray((hu > 100).astype(np.uint8)).save(root / split / "masks" / f"slice{k}.png")
    return root


def test_dicom_images_pair_with_png_masks_and_sizes_are_checked(tmp_path: Path) -> None:
    root = write_dicom_mask_dataset(tmp_path / "ct")
    data = load_mask_splits(root)
    assert {s: len(p) for s, p in data.pairs.items()} == {"train": 4, "val": 2}
    assert all(i.suffix == ".dcm" and m.suffix == ".png" for p in data.pairs.values() for i, m in p)
    Image.fromarray(np.zeros((64, 128), np.uint8)).save(root / "train" / "masks" / "slice1.png")
    with pytest.raises(DataError, match=r"slice1\.png is 64x128 \(HxW\) but its image .*slice1\.dcm is 128x128"):
        load_mask_splits(root)


@pytest.mark.slow
@pytest.mark.parametrize("window, channels", [("brain", 1), ("brain,subdural,bone", 3)])
def test_segment_trains_on_dicom_images(tmp_path: Path, window: str, channels: int) -> None:
    from toolkit import train

    root = write_dicom_mask_dataset(tmp_path / "ct")
    metrics = train("segment", [f"data={root}", f"data.window={window}", "data.crop=64", "data.repeat=1",
                                "model.backbone=resnet18", "model.pretrained=false", "train.epochs=1",
                                "train.batch_size=2", "train.workers=0", "train.progress=false",
                                f"train.project={tmp_path}"])
    assert metrics["split"] == "val" and 0.0 <= metrics["dice"] <= 1.0
    run = tmp_path / "segment" / "exp"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["window"] == window and saved["data"]["channels"] == channels
    from toolkit.predict import Predictor

    result = Predictor.from_checkpoint(run / "weights" / "best.pt", device="cpu").predict(
        root / "val" / "images" / "slice1.dcm")[0]
    assert result.mask.shape == (128, 128) and result.image.shape == (128, 128, channels)
