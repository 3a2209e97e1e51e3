"""Scans uploaded as bytes (DICOM files, a zip of a series, a NIfTI file) -> ``Scan`` held in memory.

The readers (pydicom, nibabel, highdicom through ``io.py`` and ``nifti.py``) take paths, so each call here writes
the bytes into a private scratch folder in RAM (``/dev/shm``; the system temp folder only where that is missing or
too small) and deletes it before returning: nothing uploaded stays on disk. Messages name the uploaded file, never
the scratch folder; library warnings are collected (not logged) and pydicom's logger is silenced while reading,
because its messages may quote header values such as names."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from toolkit.errors import DataError
from toolkit.medical.io import BRATS_LABELS, dicom_metadata, list_series, open_dataset, read_series, write_dicom_seg
from toolkit.medical.nifti import is_nifti, read_nifti, write_mask_nifti
from toolkit.medical.volume import Volume

Upload = Sequence[tuple[str, bytes]]  # (file name, content)
MEMORY_DIR = Path("/dev/shm")
MAX_UNZIPPED = 2 * 1024 ** 3  # bytes; larger archives are refused (zip bombs)
# One upload is read at a time: the warning filters and pydicom's log level changed while reading are global.
_READING = threading.Lock()


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM series of an upload (no identifying fields)."""

    uid: str
    description: str
    modality: str
    slices: int
    rows: int
    cols: int

    @property
    def label(self) -> str:
        return f"{self.description or 'series'} ({self.modality}, {self.slices} slice(s) of {self.rows}x{self.cols})"


@dataclass
class Scan:
    """A loaded upload. ``volume``: (X, Y, Z[, C]) in physical units with a RAS affine, one channel per chosen
    series; ``headers``: pixel-less DICOM headers of the first series' slices sorted like axis k (for DICOM SEG;
    empty for NIfTI); ``header``/``full_header``: its first file's header with identifying tags hidden/shown."""

    volume: Volume
    channels: list[str]
    headers: list = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)
    full_header: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return "HU" if self.volume.meta.get("modality") == "CT" else ""


@contextmanager
def scratch_dir(size: int = 0) -> Iterator[Path]:
    """A private folder (mode 700), deleted on exit: in RAM (``/dev/shm``) when that is writable and has room for
    ``size`` bytes three times over (inputs and what is written from them), else in the system temp folder."""
    fits = MEMORY_DIR.is_dir() and os.access(MEMORY_DIR, os.W_OK) and shutil.disk_usage(MEMORY_DIR).free > 3 * size
    with tempfile.TemporaryDirectory(prefix="toolkit-", dir=MEMORY_DIR if fits else None) as tmp:
        yield Path(tmp)


class _Staged:
    """Uploads written to a scratch folder: ``paths``; ``notes()`` the warnings caught so far, renamed."""

    def __init__(self, paths: list[Path], renames: dict[str, str], caught: list) -> None:
        self.paths, self.renames, self.caught = paths, renames, caught

    def notes(self) -> list[str]:
        return list(dict.fromkeys(_rename(str(w.message), self.renames) for w in self.caught))


@contextmanager
def _staged(files: Upload) -> Iterator[_Staged]:
    """Write the uploads into a scratch folder for the readers; DataErrors raised inside name the uploads."""
    if not files:
        raise DataError("nothing uploaded; choose DICOM files, a .zip of a series or a .nii/.nii.gz file")
    logger = logging.getLogger("pydicom")
    with _READING, scratch_dir(sum(len(data) for _, data in files)) as tmp, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        level = logger.level
        logger.setLevel(logging.CRITICAL + 1)
        # one numbered folder per file: same names may repeat, and sorted paths keep the upload order
        paths = [tmp / f"{i:06d}" / (Path(name).name or "upload") for i, (name, _) in enumerate(files)]
        renames = {str(p): p.name for p in paths} | {str(tmp): "upload"}
        try:
            for path, (_, data) in zip(paths, files):
                path.parent.mkdir()
                path.write_bytes(data)
            yield _Staged(paths, renames, caught)
        except DataError as e:
            raise DataError(_rename(str(e), renames)) from None
        except Exception as e:  # noqa: BLE001  (untrusted bytes in third-party parsers: any failure is a bad upload)
            label = paths[0].name if len(paths) == 1 else f"{len(paths)} uploaded files"
            raise DataError(f"{label}: not readable, a file is truncated or corrupt ("
                            f"{type(e).__name__}: {_rename(str(e), renames)})".replace("\n", " ")) from None
        finally:
            logger.setLevel(level)


def _rename(text: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        text = text.replace(old, new)
    return text


def _dicom_source(paths: list[Path]) -> Path:
    """The folder of loose DICOM files, or the one zip (checked for emptiness and size)."""
    zips = [p for p in paths if zipfile.is_zipfile(p)]
    if not zips:
        if len(paths) == 1:
            open_dataset(paths[0], stop_before_pixels=True)  # its own message if it is not DICOM
        return paths[0].parent.parent
    if len(paths) > 1:
        raise DataError(f"{zips[0].name}: upload one zip on its own, or loose DICOM files, not both")
    with zipfile.ZipFile(zips[0]) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
    if not members:
        raise DataError(f"{zips[0].name}: the zip is empty; zip the folder holding the DICOM series")
    if sum(m.file_size for m in members) > MAX_UNZIPPED:
        raise DataError(f"{zips[0].name}: unzips to more than {MAX_UNZIPPED // 1024 ** 3} GB; upload one series")
    return zips[0]


def _nifti(paths: list[Path]) -> Path | None:
    found = [p for p in paths if is_nifti(p)]
    if found and len(paths) > 1:
        raise DataError(f"{found[0].name}: upload one NIfTI file on its own")
    return found[0] if found else None


def upload_series(files: Upload) -> list[SeriesInfo]:
    """The DICOM series in an upload; [] for a NIfTI file. DataError if there are none."""
    with _staged(files) as staged:
        return [] if _nifti(staged.paths) else _series(_dicom_source(staged.paths))


def _series(source: Path) -> list[SeriesInfo]:
    """By SeriesNumber, then in the order the files came."""
    found = sorted(list_series(source).items(), key=lambda item: int(item[1][0][1].get("SeriesNumber") or 0))
    return [SeriesInfo(uid, str(ds.get("SeriesDescription", "")), str(ds.get("Modality", "OT")), len(items),
                       int(ds.get("Rows", 0)), int(ds.get("Columns", 0)))
            for uid, items in found for ds in [items[0][1]]]


def load_upload(files: Upload, series: Sequence[SeriesInfo] = ()) -> Scan:
    """Read a NIfTI upload, or the chosen DICOM ``series`` stacked as channels (the first series when none is
    given; several must share one grid, e.g. T1, T1c, T2 and FLAIR of one study)."""
    with _staged(files) as staged:
        nifti = _nifti(staged.paths)
        if nifti:
            volume = read_nifti(nifti)
            channels = [f"channel {c + 1}" for c in range(volume.array.shape[3])] if volume.array.ndim == 4 else [""]
            return Scan(volume, channels, warnings=staged.notes())
        source = _dicom_source(staged.paths)
        chosen = list(series) or _series(source)[:1]
        volumes = [read_series(source, s.uid) for s in chosen]
        first = volumes[0]
        headers = [open_dataset(s, stop_before_pixels=True) for s in first.sources]
        views = [dicom_metadata(first.sources[0], show) for show in (False, True)]
        volume = _stack(volumes, chosen)
        return Scan(volume, [s.description or s.uid for s in chosen], headers, *views, warnings=staged.notes())


def _stack(volumes: list[Volume], chosen: Sequence[SeriesInfo]) -> Volume:
    """One channel per series (X, Y, Z, C), or the single volume; sources become plain file names."""
    first = volumes[0]
    for volume, info in zip(volumes[1:], chosen[1:]):
        if volume.shape != first.shape or not np.allclose(volume.affine, first.affine, atol=1e-3):
            raise DataError(f"series {info.label} does not share the grid of {chosen[0].label} (shape "
                            f"{volume.shape} vs {first.shape} or a different position); pick series of one grid")
    array = first.array if len(volumes) == 1 else np.stack([v.array for v in volumes], axis=-1)
    return replace(first, array=array, sources=tuple(Path(s.split("::")[-1]).name for s in first.sources))


def mask_downloads(mask: np.ndarray, scan: Scan, stem: str = "mask",
                   labels: dict[int, str] | None = None) -> dict[str, bytes]:
    """``mask`` (X, Y, Z) ints on the scan's grid -> {"<stem>.nii.gz": bytes, and "<stem>.seg.dcm" for DICOM}."""
    out = {}
    with scratch_dir(2 * mask.size) as tmp:
        out[f"{stem}.nii.gz"] = write_mask_nifti(mask, scan.volume, tmp / f"{stem}.nii.gz").read_bytes()
        if scan.headers:
            path = write_dicom_seg(np.asarray(mask), scan.headers, tmp / f"{stem}.seg.dcm", labels or BRATS_LABELS)
            out[f"{stem}.seg.dcm"] = path.read_bytes()
    return out
