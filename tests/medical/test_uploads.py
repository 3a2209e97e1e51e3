"""Uploaded scans (bytes) -> the medical app's mask downloads, for a series stripped as anonymisers do."""
from __future__ import annotations

import io

import highdicom as hd
import numpy as np

from tests.helpers.dicom import DROPPED_TYPE2, strip_type2
from toolkit.medical import uploads, write_dicom_series


def test_mask_download_of_an_anonymised_upload_is_a_valid_seg(tmp_path, dciodvfy_errors) -> None:
    volume = np.random.default_rng(0).integers(0, 400, size=(14, 12, 5)).astype(np.float32)
    write_dicom_series(volume, np.diag([1.5, 1.5, 4.0, 1.0]), tmp_path / "series")
    files = [(p.name, p.read_bytes()) for p in strip_type2(tmp_path / "series")]
    scan = uploads.load_upload(files)
    mask = np.zeros(scan.volume.shape, np.uint8)
    mask[3:8, 2:6, 1:4] = 2
    mask[4:6, 3:5, 2] = 4
    out = uploads.mask_downloads(mask, scan, "case_mask")
    assert set(out) == {"case_mask.nii.gz", "case_mask.seg.dcm"}
    seg = hd.seg.segread(io.BytesIO(out["case_mask.seg.dcm"]))
    assert seg.number_of_segments == 3 and all(seg.get(k) == "" for k in DROPPED_TYPE2)
    oedema = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[str(h.SOPInstanceUID) for h in scan.headers], segment_numbers=[2],
        combine_segments=False).squeeze(-1)
    np.testing.assert_array_equal(oedema.astype(bool), np.transpose(mask == 2, (2, 1, 0)))
    (tmp_path / "mask.seg.dcm").write_bytes(out["case_mask.seg.dcm"])
    assert dciodvfy_errors(tmp_path / "mask.seg.dcm") == []
    assert not any(k in h for h in scan.headers for k in DROPPED_TYPE2)  # the scan's own headers are untouched
