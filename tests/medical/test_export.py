"""Masks out: NIfTI on the source grid, DICOM SEG referencing the source series."""
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.helpers.dicom import DROPPED_TYPE2, strip_type2
from toolkit.errors import DataError
from toolkit.medical import (lesion_volumes_ml, load_scan, read_nifti, save_mask, write_dicom_seg, write_dicom_series,
                             write_nifti)


def _scan(tmp_path: Path, source: str):
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 500, size=(12, 10, 6)).astype(np.float32)
    affine = np.array([[0, -1.5, 0, 30.0], [2.0, 0, 0, -20.0], [0, 0, 3.0, 5.0], [0, 0, 0, 1]])
    if source == "dicom":
        write_dicom_series(volume, affine, tmp_path / "series")
        return load_scan(tmp_path / "series")
    return load_scan(write_nifti(volume, affine, tmp_path / "scan.nii.gz"))


def _mask(shape) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[2:6, 3:7, 1:4] = 2
    mask[3:5, 4:6, 2:3] = 4
    mask[3, 5, 2] = 1
    return mask


@pytest.mark.parametrize("source", ["nifti", "dicom"])
def test_nifti_mask_keeps_the_source_affine(tmp_path, source):
    scan = _scan(tmp_path, source)
    mask = _mask(scan.shape)
    written = save_mask(mask, scan, tmp_path / "out")
    back = read_nifti(written["nifti"])
    np.testing.assert_array_equal(back.array, mask)
    np.testing.assert_allclose(back.affine, scan.affine)
    header = nib.load(str(written["nifti"])).header
    assert header.get_data_dtype() == np.uint8 and int(header["sform_code"]) == 1
    assert ("seg" in written) == (source == "dicom")


def test_dicom_seg_reads_back_with_highdicom(tmp_path):
    scan = _scan(tmp_path, "dicom")
    mask = _mask(scan.shape)
    seg = hd.seg.segread(save_mask(mask, scan, tmp_path / "out")["seg"])
    assert [seg.get_segment_description(n).segment_label for n in (1, 2, 3)] == \
        ["necrotic core", "oedema", "enhancing rim"]
    assert seg.SeriesInstanceUID != scan.meta["series_uid"]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == scan.meta["series_uid"]
    sop_uids = [str(pydicom.dcmread(s, stop_before_pixels=True).SOPInstanceUID) for s in scan.sources]
    for number, value in ((1, 1), (2, 2), (3, 4)):
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=sop_uids, segment_numbers=[number], combine_segments=False,
        ).squeeze(-1)
        np.testing.assert_array_equal(pixels.astype(bool), np.transpose(mask == value, (2, 1, 0)))


def test_mask_shape_mismatch_and_volumes(tmp_path):
    scan = _scan(tmp_path, "nifti")
    with pytest.raises(DataError, match="does not match the scan"):
        save_mask(np.zeros((3, 3, 3), np.uint8), scan, tmp_path / "out")
    volumes = lesion_volumes_ml(_mask(scan.shape), scan.affine, {2: "oedema", 1: "necrotic core"})
    assert volumes["necrotic core"] == pytest.approx(1.5 * 2.0 * 3.0 / 1000)


def test_dicom_seg_from_an_anonymised_series_lacking_type2_attributes(tmp_path, dciodvfy_errors):
    """Anonymisers drop Type 2 patient/study attributes; the SEG gets them empty, the caller's headers stay as
    they were, and the file passes highdicom and dciodvfy."""
    scan = _scan(tmp_path, "dicom")
    strip_type2(tmp_path / "series")
    mask = _mask(scan.shape)
    path = save_mask(mask, scan, tmp_path / "out")["seg"]
    seg = hd.seg.segread(path)
    assert seg.number_of_segments == 3 and all(seg.get(k) == "" for k in DROPPED_TYPE2)
    assert dciodvfy_errors(path) == []
    headers = [pydicom.dcmread(s, stop_before_pixels=True) for s in scan.sources]
    write_dicom_seg(mask, headers, tmp_path / "direct.seg.dcm")
    assert not any(k in ds for ds in headers for k in DROPPED_TYPE2)


def test_seg_and_write_failures_are_one_line_errors(tmp_path):
    scan = _scan(tmp_path, "dicom")
    for path in scan.sources:  # a Type 1 attribute highdicom cannot do without
        ds = pydicom.dcmread(path)
        del ds.StudyInstanceUID
        ds.save_as(path)
    with pytest.raises(DataError, match=r"cannot write a DICOM SEG for mask.seg.dcm: .*StudyInstanceUID"):
        save_mask(_mask(scan.shape), scan, tmp_path / "out")
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match=r"cannot write the mask mask to .*file"):
        save_mask(_mask(scan.shape), scan, tmp_path / "file" / "out")
