"""Reading 2D images from disk into float arrays, with clear errors for bad files."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from toolkit.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DICOM_SUFFIXES = (".dcm", ".dicom")
MAX_PIXELS = 64_000_000  # larger images and masks are refused from their header (768 MB as float RGB)
_PIXEL_LIMIT_LOCK = threading.RLock()


class TooLarge(DataError):
    """An image over ``MAX_PIXELS``: refused before its pixels are decoded (decompression bombs)."""


@contextmanager
def pixel_limit(limit: int | None = MAX_PIXELS) -> Iterator[None]:
    """PIL's ``Image.MAX_IMAGE_PIXELS`` is ``limit`` inside the block and the caller's own value again after it
    (one thread at a time), so importing or calling the toolkit leaves the user's setting alone."""
    with _PIXEL_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def to_float(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float -> float32 in [0, 1] (uint by its dtype range; float as is)."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        return (array.astype(np.float32) - info.min) / float(info.max - info.min)
    return array.astype(np.float32)


def read_image(path: str | Path, channels: int = 0, window: str | Sequence[str] | None = None) -> np.ndarray:
    """Read an image as float32 (H, W, C) in [0, 1]; 8- and 16-bit, gray, RGB or RGBA, or DICOM. One over
    ``MAX_PIXELS`` is refused from its header (``image_size``) before it is decoded.

    ``channels``: 1 -> grayscale, 3 -> RGB, 0 -> keep (gray stays 1 channel, colour becomes 3).
    ``window`` (DICOM only; pixels are first mapped to physical units, e.g. HU, by the modality LUT):
    None or "" -> the file's own VOI LUT / window, else "auto" (1st-99th percentile); a preset ("brain",
    "subdural", "stroke", "lung", "mediastinum", "abdomen", "bone"); "auto"; "centre/width" (e.g. "40/80");
    several comma-separated (or a list), e.g. "brain,subdural,bone" -> one channel per window.
    """
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        image_size(path)
        array = read_dicom_image(path, window)
    elif path.suffix.lower() in (".tif", ".tiff"):
        image_size(path)
        array = _read_tiff(path)
    else:
        array = _read_pil(path)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise DataError(f"{path}: unsupported image shape {array.shape}; expected gray, RGB or RGBA")
    return np.ascontiguousarray(match_channels(to_float(array), channels))


def match_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """float (H, W, C) -> (H, W, channels): gray repeated to RGB, RGB to luminance; 0 keeps C."""
    if channels == 1 and image.shape[2] == 3:
        return image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)[:, None]
    if channels == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) in pixels from the file's header, pixels not decoded: PIL formats, TIFF or DICOM. Over
    ``MAX_PIXELS`` (height x width) it raises ``TooLarge``."""
    height, width = _header_size(Path(path))
    _check_pixels(path, height, width)
    return height, width


def _check_pixels(path: str | Path, height: int, width: int) -> None:
    if height * width > MAX_PIXELS:
        raise TooLarge(f"{path}: image is too large ({width} x {height} pixels; the toolkit reads up to "
                       f"{MAX_PIXELS / 1e6:g} megapixels); downscale it or cut it into tiles first")


def _header_size(path: Path) -> tuple[int, int]:
    try:
        if path.suffix.lower() in DICOM_SUFFIXES:
            from toolkit.medical.io import image_shape

            return image_shape(path)
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                shape = tif.pages[0].shape
            planar = len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4)
            return (shape[1], shape[2]) if planar else tuple(shape[:2])
        with pixel_limit(None), Image.open(path) as img:  # the header only: any size is read, then checked
            return img.height, img.width
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except Exception as e:  # PIL and tifffile raise many types for broken files
        raise DataError(f"{path}: not a readable image, corrupt or truncated ({type(e).__name__}: {e})"
                        .replace("\n", " ")) from None


def _read_pil(path: Path) -> np.ndarray:
    try:
        with pixel_limit(None), Image.open(path) as img:  # the toolkit's own limit is checked from the header
            _check_pixels(path, img.height, img.width)
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(img, dtype=np.uint16)
            if img.mode == "I":
                return np.asarray(img).astype(np.int32).clip(0, 65535).astype(np.uint16)
            if img.mode not in ("L", "RGB", "RGBA"):
                img = img.convert("RGBA" if "A" in img.mode else "RGB")
            return np.asarray(img)
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: not a readable image, corrupt or truncated ({e})".replace("\n", " ")) from None


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        array = tifffile.imread(path)
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except Exception as e:  # tifffile raises many types for broken files
        raise DataError(f"{path}: not a readable TIFF ({type(e).__name__}: {e})".replace("\n", " ")) from None
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    return array


def parse_windows(window: str | Sequence[str] | None) -> list[str | tuple[float, float]]:
    """"brain,subdural,bone" / ["lung"] / "40/80" -> [preset or (centre, width), ...]; None or "" -> []."""
    items = [w.strip() for w in window.split(",")] if isinstance(window, str) else list(window or [])
    out: list[str | tuple[float, float]] = []
    for item in (i for i in items if i):
        if "/" in str(item):
            try:
                centre, width = (float(v) for v in str(item).split("/"))
            except ValueError:
                raise DataError(f"window {item!r} is not centre/width in the image's units, e.g. 40/80") from None
            out.append((centre, width))
        else:
            out.append(str(item))
    return out


def read_dicom_image(path: Path, window: str | Sequence[str] | None = None) -> np.ndarray:
    """One single-frame DICOM image -> float32 (H, W, 1 | 3 | n windows) in [0, 1] from the full-depth pixels
    (modality LUT, then the file's VOI window or the given ``window``s; see ``read_image``)."""
    from toolkit.medical import read_dicom, stack_windows

    image = read_dicom(path)
    if image.pixels.ndim != (3 if image.photometric == "RGB" else 2):
        raise DataError(f"{path}: multi-frame DICOM ({image.pixels.shape[0]} frames); 2D training needs "
                        "single-frame files, and a slice series is a 3D scan (task segment3d)")
    windows = parse_windows(window)
    if image.photometric == "RGB" or len(windows) <= 1:
        display = image.display(windows[0] if windows else None)
        return display if display.ndim == 3 else display[:, :, None]
    return stack_windows(image.pixels, tuple(windows), invert=image.photometric == "MONOCHROME1")
