"""Reading 2D images from disk into float arrays, with clear errors for bad files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from toolkit.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
Image.MAX_IMAGE_PIXELS = 20_000 * 20_000  # refuse decompression bombs beyond 400 Mpx


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


def read_image(path: str | Path, channels: int = 0) -> np.ndarray:
    """Read an image as float32 (H, W, C) in [0, 1]; 8- and 16-bit, gray, RGB or RGBA.

    ``channels``: 1 -> grayscale, 3 -> RGB, 0 -> keep (gray stays 1 channel, colour becomes 3).
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        array = _read_tiff(path)
    else:
        array = _read_pil(path)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise DataError(f"{path}: unsupported image shape {array.shape}; expected gray, RGB or RGBA")
    image = to_float(array)
    if channels == 1 and image.shape[2] == 3:
        image = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)[:, None]
    elif channels == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def _read_pil(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
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
    except Image.DecompressionBombError:
        raise DataError(f"{path}: image is too large (over {Image.MAX_IMAGE_PIXELS} pixels)") from None
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
