"""The toolkit's pixel limit (``image_io.MAX_PIXELS``, 64 Mpx) holds wherever an image or mask is read: an image
over it is refused from its header, before a pixel is decoded, with one line naming the file and its size."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from toolkit.data.formats.masks import load_mask_splits, read_mask
from toolkit.data.detection_check import load
from toolkit.data.image_io import MAX_PIXELS, TooLarge, image_size, read_image
from toolkit.errors import DataError

TOO_LARGE = r"image is too large \(9000 x 8000 pixels; the toolkit reads up to 64 megapixels\)"


@pytest.fixture(scope="module")
def big_png(tmp_path_factory) -> Path:
    """9000 x 8000 = 72 Mpx of zeros in 1-bit mode: 9 kB on disk, 0.2 s to write."""
    path = tmp_path_factory.mktemp("big") / "big.png"
    Image.new("1", (9000, 8000)).save(path)
    return path


@pytest.fixture()
def no_decoding(monkeypatch) -> None:
    def load(self):
        raise AssertionError(f"{self.size} pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def test_images_and_masks_over_the_limit_are_refused_before_decoding(big_png: Path, no_decoding) -> None:
    assert 9000 * 8000 > MAX_PIXELS == 64_000_000
    limit = Image.MAX_IMAGE_PIXELS
    for read in (image_size, read_image, read_mask):
        with pytest.raises(TooLarge, match=f"^{big_png}: {TOO_LARGE}; downscale it or cut it into tiles first$"):
            read(big_png)
    assert Image.MAX_IMAGE_PIXELS == limit  # the caller's PIL setting is left alone


def test_a_21000_px_png_is_refused_like_any_other(big_png: Path, tmp_path: Path, no_decoding) -> None:
    """441 Mpx (its header says so; the body is the small one's): PIL itself only warns below twice its limit."""
    png = big_png.read_bytes()
    header = struct.pack(">II", 21000, 21000) + png[24:29]  # IHDR: width, height, then depth, colour type, ...
    path = tmp_path / "huge.png"
    path.write_bytes(png[:16] + header + struct.pack(">I", zlib.crc32(b"IHDR" + header)) + png[33:])
    with pytest.raises(DataError, match=r"too large \(21000 x 21000 pixels"):
        read_image(path)


def test_a_dataset_holding_one_stops_with_its_name(big_png: Path, tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    for kind in ("images", "masks"):
        (masks / kind).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / kind / "a.png")
    (masks / "images" / "b.png").write_bytes(big_png.read_bytes())
    (masks / "masks" / "b.png").write_bytes(big_png.read_bytes())
    with pytest.raises(DataError, match=f"^{masks / 'masks' / 'b.png'}: {TOO_LARGE}"):
        load_mask_splits(masks, val_split=0.0)

    yolo = tmp_path / "yolo"
    (yolo / "images" / "train").mkdir(parents=True)
    (yolo / "labels" / "train").mkdir(parents=True)
    (yolo / "data.yaml").write_text("path: .\ntrain: images/train\nnames: [cell]\n")
    (yolo / "images" / "train" / "b.png").write_bytes(big_png.read_bytes())
    (yolo / "labels" / "train" / "b.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=f"^{yolo / 'images' / 'train' / 'b.png'}: {TOO_LARGE}"):
        load(yolo)
