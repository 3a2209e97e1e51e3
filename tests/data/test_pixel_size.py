"""Pixel size in µm from the file's own metadata: ImageJ and OME TIFF, TIFF resolution in cm or inch, PNG pHYs;
placeholder DPI and files without a unit read as unknown."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from toolkit.data.pixel_size import pixel_size_um

IMAGE = np.zeros((16, 24), np.uint16)


def test_tiff_imagej_ome_and_resolution_tags(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "ij.tif", IMAGE, imagej=True, resolution=(1 / 0.325, 1 / 0.325),
                     metadata={"unit": "micron"})
    tifffile.imwrite(tmp_path / "ij_nm.tif", IMAGE, imagej=True, resolution=(1 / 650, 1 / 650), metadata={"unit": "nm"})
    tifffile.imwrite(tmp_path / "ome.ome.tif", IMAGE, ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 0.2, "PhysicalSizeXUnit": "µm"})
    tifffile.imwrite(tmp_path / "cm.tif", IMAGE, resolution=(10000 / 0.8, 10000 / 0.8), resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "inch.tif", IMAGE, resolution=(25400 / 2.0, 25400 / 2.0), resolutionunit="INCH")
    assert pixel_size_um(tmp_path / "ij.tif") == pytest.approx(0.325)
    assert pixel_size_um(tmp_path / "ij_nm.tif") == pytest.approx(0.65)
    assert pixel_size_um(tmp_path / "ome.ome.tif") == pytest.approx(0.2)
    assert pixel_size_um(tmp_path / "cm.tif") == pytest.approx(0.8)
    assert pixel_size_um(tmp_path / "inch.tif") == pytest.approx(2.0)


def test_unknown_placeholder_and_unitless_sizes_are_none(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "plain.tif", IMAGE)
    tifffile.imwrite(tmp_path / "72dpi.tif", IMAGE, resolution=(72, 72), resolutionunit="INCH")
    tifffile.imwrite(tmp_path / "nounit.tif", IMAGE, resolution=(3, 3), resolutionunit="NONE")
    Image.fromarray(IMAGE.astype(np.uint8)).save(tmp_path / "plain.png")
    Image.fromarray(IMAGE.astype(np.uint8)).save(tmp_path / "96dpi.png", dpi=(96, 96))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    for name in ("plain.tif", "72dpi.tif", "nounit.tif", "plain.png", "96dpi.png", "broken.png", "missing.tif"):
        assert pixel_size_um(tmp_path / name) is None, name


def test_png_phys_in_metres(tmp_path: Path) -> None:
    Image.fromarray(IMAGE.astype(np.uint8)).save(tmp_path / "cells.png", dpi=(25400 / 0.5, 25400 / 0.5))
    assert pixel_size_um(tmp_path / "cells.png") == pytest.approx(0.5, rel=1e-5)


def test_an_upload_in_memory_gives_the_size_its_file_gives(tmp_path: Path) -> None:
    """The apps read uploads from memory: the bytes and the name give what the file on disk gives."""
    tifffile.imwrite(tmp_path / "ij.tif", IMAGE, imagej=True, resolution=(1 / 0.325, 1 / 0.325),
                     metadata={"unit": "micron"})
    tifffile.imwrite(tmp_path / "ome.ome.tif", IMAGE, ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 0.2, "PhysicalSizeXUnit": "µm"})
    Image.fromarray(IMAGE.astype(np.uint8)).save(tmp_path / "cells.png", dpi=(25400 / 0.5, 25400 / 0.5))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    expected = {"ij.tif": 0.325, "ome.ome.tif": 0.2, "cells.png": 0.5, "broken.png": None}
    for name, size in expected.items():
        found = pixel_size_um(name, (tmp_path / name).read_bytes())
        assert found == (None if size is None else pytest.approx(size, rel=1e-5)), name
