"""Masks out: NIfTI on the source grid, DICOM SEG referencing the source series."""
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from toolkit.errors import DataError
from toolkit.medical import lesion_volumes_ml, load_scan, read_nifti, save_mask, write_dicom_series, write_nifti


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
