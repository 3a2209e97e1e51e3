"""The physical size of an image's pixels, from the file's own metadata: OME-TIFF ``PhysicalSizeX``, ImageJ
TIFF (``unit`` + resolution), TIFF resolution tags in inch or cm, PNG ``pHYs`` (per metre) and JPEG / other
formats' DPI through PIL.

72 and 96 DPI are what image editors and libraries write when they know nothing of the pixels' size, so they read
as unknown (None), as does a resolution without a unit."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import IO

from PIL import Image

# µm per unit; ImageJ writes the micro sign escaped in the TIFF's description ("\\u00B5m")
UM_PER = {"m": 1e6, "cm": 1e4, "mm": 1e3, "um": 1.0, "\u00b5m": 1.0, "\u03bcm": 1.0, "\\u00b5m": 1.0, "micron": 1.0,
          "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0, "nm": 1e-3, "inch": 25400.0, "in": 25400.0}
PLACEHOLDER_DPI = (72.0, 96.0)


def pixel_size_um(path: str | Path, data: bytes | None = None) -> float | None:
    """Width of one pixel in µm (square pixels assumed: the x size), or None when the file does not say. ``data``:
    the file's bytes, already in memory (an upload), read instead of ``path``, which then only names it."""
    path = Path(path)
    source = path if data is None else io.BytesIO(data)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            return _tiff(source)
        with Image.open(source) as img:
            dpi = img.info.get("dpi")
    except Exception:  # noqa: BLE001 - an unreadable file simply has no pixel size; the image reader names it
        return None
    return _from_dpi(float(dpi[0])) if dpi else None


def _tiff(source: Path | IO[bytes]) -> float | None:
    import tifffile

    with tifffile.TiffFile(source) as tif:
        if tif.ome_metadata:
            size = _ome(tif.ome_metadata)
            if size:
                return size
        page = tif.pages[0]
        tags = page.tags
        if "XResolution" not in tags:
            return None
        numerator, denominator = tags["XResolution"].value
        per_unit = numerator / denominator if denominator else 0.0  # pixels per unit
        unit = tif.imagej_metadata.get("unit") if tif.imagej_metadata else None
        if unit is not None:
            factor = UM_PER.get(str(unit).strip().lower())
            return factor / per_unit if factor and per_unit > 0 else None
        resolution_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2  # TIFF default: inch
    if per_unit <= 0 or resolution_unit == 1:  # 1: no absolute unit
        return None
    return _from_dpi(per_unit) if resolution_unit == 2 else 1e4 / per_unit


def _ome(xml: str) -> float | None:
    """``PhysicalSizeX`` of the first ``Pixels`` element, in µm (``PhysicalSizeXUnit``, default µm)."""
    pixels = re.search(r"<(?:\w+:)?Pixels\b[^>]*>", xml)
    size = re.search(r'PhysicalSizeX="([^"]+)"', pixels.group(0)) if pixels else None
    if not size:
        return None
    unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', pixels.group(0))
    factor = UM_PER.get(unit.group(1).lower() if unit else "µm")
    return float(size.group(1)) * factor if factor else None


def _from_dpi(dpi: float) -> float | None:
    """µm per pixel of ``dpi``; PNG keeps whole pixels per metre, so 96 DPI comes back as 96.012."""
    return None if dpi <= 0 or any(abs(dpi - p) < 0.05 for p in PLACEHOLDER_DPI) else 25400.0 / dpi
