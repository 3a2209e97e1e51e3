"""Scans in and masks out; the only module that imports pydicom.

One DICOM file -> pixels in physical units (modality LUT) + the file's own VOI LUT; a folder or zip of DICOM
files -> one series as a Volume, sorted along the slice normal (ImagePositionPatient . normal, never
InstanceNumber or file name), with gaps, duplicates, mixed geometry and several series reported by name;
a Volume -> a DICOM series; a mask -> NIfTI on the source grid and DICOM SEG (highdicom) referencing the
source series; a header view that hides patient-identifying tags."""
from __future__ import annotations

import copy
import io
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from toolkit.errors import DataError
from toolkit.medical.nifti import is_nifti, read_nifti, write_mask_nifti
from toolkit.medical.volume import LPS_TO_RAS, Volume, quantise_uint16, slice_spacing
from toolkit.medical.windowing import DicomImage

ZIP_SEP = "::"  # "archive.zip::member.dcm" names one file inside a zip
BRATS_LABELS = {1: "necrotic core", 2: "oedema", 4: "enhancing rim"}
SOP_CLASSES = {"MR": "1.2.840.10008.5.1.4.1.1.4", "CT": "1.2.840.10008.5.1.4.1.1.2"}
IDENTIFYING = frozenset({
    "PatientName", "PatientID", "IssuerOfPatientID", "OtherPatientIDs", "OtherPatientIDsSequence",
    "OtherPatientNames", "PatientBirthDate", "PatientBirthTime", "PatientBirthName", "PatientMotherBirthName",
    "PatientAddress", "PatientTelephoneNumbers", "PatientInsurancePlanCodeSequence", "MilitaryRank",
    "MedicalRecordLocator", "CountryOfResidence", "RegionOfResidence", "InstitutionName",
    "InstitutionAddress", "InstitutionalDepartmentName", "AccessionNumber", "ReferringPhysicianName",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "RequestingPhysician", "OperatorsName",
    "ScheduledPerformingPhysicianName", "StationName", "DeviceSerialNumber", "StudyID",
    "RequestAttributesSequence", "PatientComments", "AdditionalPatientHistory",
})
HIDDEN = "<hidden>"
# Type 2 (present, may be empty) Patient and General Study attributes a SEG copies; anonymisers often drop them.
SEG_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
             "AccessionNumber", "ReferringPhysicianName")


# -- one file ---------------------------------------------------------------------------------------
def sample_file(name: str) -> Path:
    """One of pydicom's bundled test files, e.g. ``CT_small.dcm`` (a path lookup; nothing is parsed)."""
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file(name))


def image_shape(source: str | Path) -> tuple[int, int]:
    """(rows, columns) of a DICOM image from its header (pixels are not read)."""
    ds = open_dataset(source, stop_before_pixels=True)
    return int(ds.Rows), int(ds.Columns)


def open_dataset(source: str | Path, stop_before_pixels: bool = False) -> Dataset:
    """Read a DICOM Part 10 file (path, or "archive.zip::member"); DataError naming the file if it is not one."""
    name = str(source)
    try:
        if ZIP_SEP in name:
            archive, member = name.split(ZIP_SEP, 1)
            with zipfile.ZipFile(archive) as zf:
                fileobj = io.BytesIO(zf.read(member))
            return pydicom.dcmread(fileobj, stop_before_pixels=stop_before_pixels)
        return pydicom.dcmread(name, stop_before_pixels=stop_before_pixels)
    except FileNotFoundError:
        raise DataError(f"DICOM file not found: {name}") from None
    except InvalidDicomError:
        file = Path(name.split(ZIP_SEP)[0])
        what = "is empty" if file.exists() and file.stat().st_size == 0 else \
            "has no DICOM header (128-byte preamble + 'DICM' + file meta)"
        raise DataError(f"{name}: not a DICOM Part 10 file, it {what}; re-export it from the scanner/PACS "
                        "as DICOM") from None
    except Exception as e:  # pydicom raises many types for damaged files
        raise DataError(f"{name}: corrupt DICOM file ({type(e).__name__}: {e})".replace("\n", " ")) from None


def physical_pixels(ds: Dataset, name: str) -> np.ndarray:
    """Decoded pixels with the modality LUT applied (RescaleSlope/Intercept -> HU for CT), float32.

    Shape (rows, cols), (frames, rows, cols), or (..., 3) RGB for colour images (no LUT)."""
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        kind = ds.get("SOPClassUID", None)
        raise DataError(f"{name}: DICOM file has no pixel data ({getattr(kind, 'name', kind) or 'unknown type'});"
                        " pass an image file")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = ds.pixel_array
    except (NotImplementedError, RuntimeError) as e:
        raise DataError(f"{name}: cannot decode pixel data in {getattr(syntax, 'name', syntax)} "
                        f"({str(e).splitlines()[0]}); install pylibjpeg-libjpeg / pylibjpeg-openjpeg / "
                        "pyjpegls or convert the file to an uncompressed transfer syntax") from None
    except Exception as e:
        raise DataError(f"{name}: pixel data is truncated or corrupt ({type(e).__name__}: "
                        f"{str(e).splitlines()[0]})") from None
    if ds.get("SamplesPerPixel", 1) > 1:
        return raw.astype(np.float32)
    return np.asarray(apply_modality_lut(raw, ds), dtype=np.float32)


def read_dicom(path: str | Path) -> DicomImage:
    """Read one DICOM file (single- or multi-frame, any supported transfer syntax); DataError if unusable."""
    name = str(path)
    ds = open_dataset(name)
    pixels = physical_pixels(ds, name)
    colour = ds.get("SamplesPerPixel", 1) > 1  # pydicom converts YBR to RGB
    photometric = "RGB" if colour else str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    return DicomImage(pixels=pixels, modality=str(ds.get("Modality", "OT")), photometric=photometric,
                      path=name, file_display=None if colour else _file_voi(ds, pixels),
                      bits_stored=int(ds.get("BitsStored", 8)))


def _file_voi(ds: Dataset, pixels: np.ndarray) -> np.ndarray | None:
    """The file's VOI LUT or first window applied by pydicom, rescaled to [0, 1]; None if it has none."""
    if "VOILUTSequence" in ds:
        lo, hi = 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        bits = int(ds.BitsStored)  # pydicom's windowing maps onto the stored range after rescale
        lo, hi = (0.0, 2.0 ** bits - 1) if ds.get("PixelRepresentation", 0) == 0 else \
            (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
        if "RescaleSlope" in ds and "ModalityLUTSequence" not in ds:
            slope, intercept = float(ds.RescaleSlope), float(ds.get("RescaleIntercept", 0))
            lo, hi = lo * slope + intercept, hi * slope + intercept
    else:
        return None
    out = np.asarray(apply_voi_lut(pixels.astype(np.float64), ds), dtype=np.float64)
    return ((out - lo) / (hi - lo)).clip(0, 1).astype(np.float32)


def dicom_metadata(path: str | Path, show_identifying: bool = False) -> dict[str, str]:
    """Top-level header as {keyword: text}. Patient-identifying tags, every person name and private tags read
    ``<hidden>`` unless ``show_identifying``; sequences and binary values are summarised."""
    view: dict[str, str] = {}
    for elem in open_dataset(path, stop_before_pixels=True):
        key = elem.keyword or str(elem.tag)
        identifying = elem.keyword in IDENTIFYING or elem.VR == "PN" or elem.tag.is_private
        if identifying and not show_identifying:
            view[key] = HIDDEN
        elif elem.VR == "SQ":
            view[key] = f"<sequence of {len(elem.value)} items>"
        elif elem.VR in ("OB", "OW", "OF", "OD", "OL", "UN"):
            view[key] = f"<{len(elem.value or b'')} bytes>"
        else:
            view[key] = str(elem.value)
    return view


# -- series -----------------------------------------------------------------------------------------
def dicom_sources(path: str | Path) -> list[str]:
    """Every file under a folder (recursive), every member of a zip, or the one file given."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"DICOM input not found: {path}")
    if path.is_dir():
        return [str(p) for p in sorted(path.rglob("*")) if p.is_file()]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return [f"{path}{ZIP_SEP}{n}" for n in zf.namelist() if not n.endswith("/")]
    return [str(path)]


# Tags a file needs to be placed in a volume; files missing any (e.g. truncated headers) are skipped.
SLICE_TAGS = ("SeriesInstanceUID", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows",
              "Columns")


def list_series(path: str | Path) -> dict[str, list[tuple[str, Dataset]]]:
    """{SeriesInstanceUID: [(source, header)]} of the image slices found; unreadable files and files without
    the geometry of ``SLICE_TAGS`` are skipped."""
    series: dict[str, list[tuple[str, Dataset]]] = defaultdict(list)
    incomplete: list[str] = []
    for source in dicom_sources(path):
        try:
            ds = open_dataset(source, stop_before_pixels=True)
        except DataError:
            continue
        missing = [tag for tag in SLICE_TAGS if tag not in ds]
        if not missing:
            series[str(ds.SeriesInstanceUID)].append((source, ds))
        elif "ImagePositionPatient" in ds:
            incomplete.append(f"{source}: not readable, a file is truncated or corrupt (no {', '.join(missing)})")
    if not series and incomplete:
        raise DataError(incomplete[0])
    if not series:
        raise DataError(f"{path}: no DICOM image slices with position, orientation and pixel spacing found; pass a folder or zip "
                        "of one DICOM series")
    return dict(series)


def read_series(path: str | Path, series_uid: str | None = None) -> Volume:
    """Read one series as a Volume: array (X=cols, Y=rows, Z=slices) in physical units, RAS affine in mm.

    Several series present: the one named by ``series_uid``, else the largest with a warning naming all."""
    found = list_series(path)
    if series_uid is None:
        series_uid = max(found, key=lambda uid: len(found[uid]))
        if len(found) > 1:
            warnings.warn(f"{path}: {len(found)} series found: {_series_summary(found)}; reading {series_uid}; "
                          "pass series_uid=UID to choose another", stacklevel=2)
    if series_uid not in found:
        raise DataError(f"{path}: series_uid={series_uid!r} is not in it; {len(found)} series found: "
                        f"{_series_summary(found)}; pass one of these UIDs")
    slices = _sort_slices(found[series_uid], str(path))
    affine = _affine(slices, str(path))
    planes = []
    for source, _ in slices:
        pixels = physical_pixels(open_dataset(source), source)
        if pixels.ndim != 2:
            raise DataError(f"{source}: multi-frame or colour file inside a slice series; read it with read_dicom")
        planes.append(pixels.T)  # (rows, cols) -> (i=col, j=row)
    head = slices[0][1]
    meta = {"modality": str(head.get("Modality", "OT")), "series_uid": series_uid,
            "series_description": str(head.get("SeriesDescription", ""))}
    return Volume(np.stack(planes, axis=-1), affine, tuple(s for s, _ in slices), meta)


def _series_summary(found: dict[str, list[tuple[str, Dataset]]]) -> str:
    """``UID ('description', N slices), ...`` of the series ``list_series`` found."""
    return ", ".join(f"{uid} ({str(v[0][1].get('SeriesDescription', ''))!r}, {len(v)} slices)"
                     for uid, v in found.items())


def _normal(ds: Dataset) -> np.ndarray:
    iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
    return np.cross(iop[:3], iop[3:])


def _sort_slices(slices: list[tuple[str, Dataset]], name: str) -> list[tuple[str, Dataset]]:
    """Order slices along the normal of their shared orientation; DataError on mixed geometry/duplicates."""
    orientations = {tuple(np.round(np.asarray(ds.ImageOrientationPatient, float), 4)) for _, ds in slices}
    sizes = {(int(ds.Rows), int(ds.Columns)) for _, ds in slices}
    if len(orientations) > 1 or len(sizes) > 1:
        raise DataError(f"{name}: one series has slices of {len(orientations)} orientations and {len(sizes)} "
                        "sizes (e.g. a localizer mixed in); pass a folder holding one stack")
    normal = _normal(slices[0][1])
    position = {s: float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)) for s, ds in slices}
    keyed = sorted(slices, key=lambda s: position[s[0]])
    if len(keyed) > 1 and np.min(np.diff([position[s] for s, _ in keyed])) < 1e-3:
        raise DataError(f"{name}: several slices share one position along the normal (several echoes, time "
                        "points or a duplicated file); split the series by volume first")
    return keyed


def _affine(slices: list[tuple[str, Dataset]], name: str) -> np.ndarray:
    """RAS affine of the sorted stack; checks the slice gaps (DataError for missing slices, warning if uneven)."""
    first = slices[0][1]
    iop = np.asarray(first.ImageOrientationPatient, dtype=float)
    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    normal = _normal(first)
    if len(slices) > 1:
        positions = np.array([np.asarray(ds.ImagePositionPatient, float) for _, ds in slices])
        step = slice_spacing(positions @ normal, name) * normal
    else:
        step = normal * float(first.get("SpacingBetweenSlices", first.get("SliceThickness", 1.0)) or 1.0)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = iop[:3] * col_spacing, iop[3:] * row_spacing, step
    lps[:3, 3] = np.asarray(first.ImagePositionPatient, dtype=float)
    return LPS_TO_RAS @ lps


def write_dicom_series(volume: np.ndarray, affine: np.ndarray, out_dir: str | Path, modality: str = "MR",
                       series_description: str = "toolkit volume", seed: int = 0) -> list[Path]:
    """Write a (X, Y, Z) volume with a RAS affine as one slice per file (uint16 + RescaleSlope/Intercept).

    Values are quantised to ``slope`` = range / 65535 (exact for integer volumes). UIDs derive from ``seed``."""
    volume = np.asarray(volume, dtype=np.float64)
    lps = np.linalg.inv(LPS_TO_RAS) @ np.asarray(affine, dtype=float)
    col_step, row_step, slice_step, origin = lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3]
    normal = np.cross(col_step, row_step)
    if abs(abs(np.dot(normal, slice_step)) - np.linalg.norm(normal) * np.linalg.norm(slice_step)) > 1e-4:
        raise DataError("write_dicom_series: the affine is sheared (slice axis not normal to the image plane)")
    slope, intercept, stored = quantise_uint16(volume)
    header = _series_header(modality, series_description, seed)
    header.ImageOrientationPatient = [*(col_step / np.linalg.norm(col_step)), *(row_step / np.linalg.norm(row_step))]
    header.PixelSpacing = [float(np.linalg.norm(row_step)), float(np.linalg.norm(col_step))]
    header.SliceThickness = header.SpacingBetweenSlices = float(np.linalg.norm(slice_step))
    header.Rows, header.Columns = volume.shape[1], volume.shape[0]
    header.RescaleSlope, header.RescaleIntercept = slope, intercept
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(volume.shape[2]):
        ds = _slice_dataset(header, k, seed)
        ds.ImagePositionPatient = [float(v) for v in origin + k * slice_step]
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        paths.append(out_dir / f"slice_{k:04d}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


def _series_header(modality: str, description: str, seed: int) -> Dataset:
    ds = Dataset()
    ds.Modality, ds.SeriesDescription = modality, description
    ds.SOPClassUID = SOP_CLASSES.get(modality, SOP_CLASSES["MR"])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[f"study-{seed}"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[f"series-{seed}-{description}"])
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[f"frame-{seed}"])
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Anonymous^", "ANON", "", ""
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "", "", "", "", ""
    ds.SeriesNumber, ds.Manufacturer = 1, "toolkit"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    return ds


def _slice_dataset(header: Dataset, k: int, seed: int) -> Dataset:
    ds = Dataset()
    ds.update(header)
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"slice-{seed}-{header.SeriesInstanceUID}-{k}"])
    ds.InstanceNumber = k + 1
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


# -- scans in, masks out ----------------------------------------------------------------------------
def load_scan(path: str | Path, series_uid: str | None = None) -> Volume:
    """A .nii/.nii.gz file, or a DICOM folder / zip / slice file -> Volume (X, Y, Z[, C]) with RAS affine.

    ``series_uid`` picks one series of a DICOM input holding several (default: the largest)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"scan not found: {path}; pass a .nii/.nii.gz file, a DICOM folder or a .zip of one")
    if is_nifti(path):
        if series_uid is not None:
            raise DataError(f"series_uid={series_uid!r} chooses a series of DICOM input, but {path} is a NIfTI "
                            "file; drop series_uid")
        return read_nifti(path)
    return read_series(path.parent if path.suffix.lower() == ".dcm" else path, series_uid)


def save_mask(mask: np.ndarray, reference: Volume, out_dir: str | Path, stem: str = "mask",
              labels: dict[int, str] | None = None) -> dict[str, Path]:
    """Write ``mask`` (X, Y, Z) ints as ``<stem>.nii.gz`` on the reference grid and, when the reference came
    from DICOM, as ``<stem>.seg.dcm`` referencing its series. Returns {"nifti": ..., "seg": ...}.

    DataError if a file cannot be written (read-only folder, disk full) or the source headers cannot make a SEG."""
    out_dir = Path(out_dir)
    try:
        written = {"nifti": write_mask_nifti(mask, reference, out_dir / f"{stem}.nii.gz")}
        if reference.sources:
            datasets = [open_dataset(s, stop_before_pixels=True) for s in reference.sources]
            written["seg"] = write_dicom_seg(np.asarray(mask), datasets, out_dir / f"{stem}.seg.dcm",
                                             labels or BRATS_LABELS)
    except OSError as e:
        raise DataError(f"cannot write the mask {stem} to {out_dir}: {e.strerror or e}; choose a writable output "
                        "folder with free space") from None
    return written


def write_dicom_seg(mask: np.ndarray, source_datasets: list[Dataset], out_path: str | Path,
                    labels: dict[int, str] | None = None, algorithm: str = "toolkit") -> Path:
    """Write ``mask`` (X, Y, Z) ints on the grid of ``source_datasets`` (one header per slice k, sorted like
    the volume) as a binary DICOM SEG with one segment per non-zero value of ``labels`` (highdicom).

    Missing Type 2 patient/study attributes (``SEG_TYPE2``) are added empty to copies of the headers; the
    caller's datasets are not changed. DataError if the headers still cannot make a valid SEG."""
    labels = labels or BRATS_LABELS
    if mask.ndim != 3 or mask.shape[2] != len(source_datasets):
        raise DataError(f"mask shape {mask.shape} does not match the {len(source_datasets)} source slices")
    values = [v for v in sorted(labels) if v != 0]
    frames = np.transpose(np.asarray(mask), (2, 1, 0))  # (slices, rows, cols)
    segments = np.stack([frames == v for v in values], axis=-1)
    algo = hd.AlgorithmIdentificationSequence(name=algorithm, version="1", family=codes.cid7162.ArtificialIntelligence)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=n + 1, segment_label=labels[v], algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algo, segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm) for n, v in enumerate(values)]
    try:
        seg = hd.seg.Segmentation(
            source_images=_with_type2(source_datasets), pixel_array=segments,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
            series_instance_uid=hd.UID(), series_number=100, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer="toolkit", manufacturer_model_name=algorithm, software_versions="1",
            device_serial_number="0", omit_empty_frames=False)
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # highdicom's checks of the source headers
        raise DataError(f"cannot write a DICOM SEG for {Path(out_path).name}: the source series headers do not "
                        f"allow it ({type(e).__name__}: {e}); use the NIfTI mask, or re-export the series with "
                        "complete headers".replace("\n", " ")) from None
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out_path)
    return out_path


def _with_type2(datasets: list[Dataset]) -> list[Dataset]:
    """Each of ``datasets``, or where it lacks attributes of ``SEG_TYPE2`` a copy holding them empty."""
    out = [copy.deepcopy(ds) if any(k not in ds for k in SEG_TYPE2) else ds for ds in datasets]
    for ds in out:
        for keyword in SEG_TYPE2:
            ds.setdefault(keyword, "")
    return out
