"""Display windowing: physical values (HU for CT) -> [0, 1] with the DICOM linear VOI function, and the
``DicomImage`` (pixels in physical units) it is applied to."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.errors import DataError

# (centre, width) in HU; common radiology presets.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "abdomen": (50.0, 400.0),
    "bone": (400.0, 1800.0),
}
AUTO_PERCENTILES = (1.0, 99.0)

Window = str | tuple[float, float]


def auto_window(array: np.ndarray, percentiles: tuple[float, float] = AUTO_PERCENTILES) -> tuple[float, float]:
    """(centre, width) spanning the given percentiles of the non-background values (for MR)."""
    values = np.asarray(array, dtype=np.float64).ravel()
    foreground = values[values > values.min()]
    lo, hi = np.percentile(foreground if foreground.size else values, percentiles)
    width = max(float(hi - lo), 1e-6)
    return float(lo + hi) / 2.0, width


def resolve_window(array: np.ndarray, window: Window) -> tuple[float, float]:
    """A preset name, "auto" or an explicit (centre, width) -> (centre, width)."""
    if isinstance(window, str):
        if window == "auto":
            return auto_window(array)
        if window not in WINDOW_PRESETS:
            raise DataError(f"unknown window preset {window!r}; use one of {sorted(WINDOW_PRESETS)}, 'auto' "
                            "or a (centre, width) pair")
        return WINDOW_PRESETS[window]
    centre, width = (float(v) for v in window)
    if width < 1:
        raise DataError(f"window width must be >= 1, got {width}")
    return centre, width


def apply_window(array: np.ndarray, window: Window = "auto", invert: bool = False) -> np.ndarray:
    """Linear VOI function of DICOM PS3.3 C.11.2.1.2.1 scaled to [0, 1]: float32, same shape.

    ``invert`` flips the result (for MONOCHROME1, where low values are bright)."""
    centre, width = resolve_window(array, window)
    if width == 1:
        out = (np.asarray(array) > centre - 0.5).astype(np.float32)
    else:
        out = ((np.asarray(array, dtype=np.float64) - (centre - 0.5)) / (width - 1) + 0.5).clip(0, 1)
    out = out.astype(np.float32)
    return 1.0 - out if invert else out


def stack_windows(array: np.ndarray, windows: tuple[Window, ...] = ("brain", "subdural", "bone"),
                  invert: bool = False) -> np.ndarray:
    """Several windows of one image stacked as channels: (H, W) -> (H, W, len(windows)) float32 in [0, 1]."""
    return np.stack([apply_window(array, w, invert) for w in windows], axis=-1)


@dataclass
class DicomImage:
    """Pixels of one DICOM file in physical units, (rows, cols) or (frames, rows, cols) [+ (3,) RGB]."""

    pixels: np.ndarray
    modality: str
    photometric: str
    path: str
    file_display: np.ndarray | None = None  # the file's own VOI LUT/window applied, [0, 1]
    bits_stored: int = 16

    def display(self, window: Window | None = None) -> np.ndarray:
        """float32 in [0, 1]: ``window`` (preset, "auto", (centre, width)); None -> the file's own VOI LUT
        or window if it has one, else "auto". MONOCHROME1 is inverted so that bone/air look as usual."""
        if self.photometric not in ("MONOCHROME1", "MONOCHROME2"):
            return (self.pixels / float(2 ** self.bits_stored - 1)).clip(0, 1).astype(np.float32)
        invert = self.photometric == "MONOCHROME1"
        if window is None and self.file_display is not None:
            return 1.0 - self.file_display if invert else self.file_display
        return apply_window(self.pixels, window or "auto", invert=invert)
