"""The non-UI parts of the apps: uploads read in memory, slice display, image decoding, detection filtering,
mask downloads."""
from __future__ import annotations

import io
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from tests.apps.conftest import support, zip_bytes
from toolkit import load_predictor
from toolkit.errors import DataError
from toolkit.medical import read_series, sample_file, uploads, write_dicom_series
from toolkit.viz import slices as vs


def _scratch_left() -> list[Path]:
    return list(uploads.MEMORY_DIR.glob("toolkit-*")) if uploads.MEMORY_DIR.is_dir() else []


def test_a_zipped_study_reads_in_memory_like_the_folder_and_leaves_no_file(app_env) -> None:
    paths = support.brain_dicom_study()
    files = support.read_files(paths)
    before = _scratch_left()
    series = uploads.upload_series([("study.zip", zip_bytes(files))])
    assert [s.description for s in series] == ["T1", "T1c", "T2", "FLAIR"]
    scan = uploads.load_upload([("study.zip", zip_bytes(files))], series)
    folder = read_series(paths[0].parent)  # the T1 series straight from disk
    assert scan.volume.array.shape == (*folder.shape, 4) and scan.channels == ["T1", "T1c", "T2", "FLAIR"]
    np.testing.assert_array_equal(scan.volume.array[..., 0], folder.array)
    np.testing.assert_allclose(scan.volume.affine, folder.affine)
    assert len(scan.headers) == folder.shape[2] and scan.header["PatientName"] == "<hidden>"
    assert scan.full_header["PatientName"] == "Anonymous^" and scan.unit == ""
    assert _scratch_left() == before


def test_bad_uploads_name_the_upload_never_the_scratch_folder(app_env) -> None:
    with pytest.raises(DataError, match=r"^empty\.zip: the zip is empty"):
        uploads.upload_series([("empty.zip", zip_bytes([]))])
    with pytest.raises(DataError, match=r"^notes\.txt: not a DICOM Part 10 file"):
        uploads.upload_series([("notes.txt", b"hello")])
    ct = sample_file("CT_small.dcm").read_bytes()
    with pytest.raises(DataError, match=r"^ct\.dcm: pixel data is truncated or corrupt"):
        uploads.load_upload([("ct.dcm", ct[: len(ct) // 2])])
    with pytest.raises(DataError, match=r"^brain\.nii\.gz: not a readable NIfTI file"):
        uploads.load_upload([("brain.nii.gz", b"\x1f\x8b broken")])
    paths = support.brain_dicom_study()
    mixed = support.read_files(paths[:3]) + [("ct.dcm", ct)]  # a T1 slab and a CT slice of another grid
    series = uploads.upload_series(mixed)
    with pytest.raises(DataError, match="does not share the grid"):
        uploads.load_upload(mixed, series)


def test_masks_download_as_nifti_and_dicom_seg_on_the_scan_grid(app_env) -> None:
    files = support.read_files(support.brain_dicom_study())
    scan = uploads.load_upload(files, uploads.upload_series(files)[:1])
    mask = np.zeros(scan.volume.shape, np.uint8)
    mask[5:9, 6:10, 7:9] = 2
    mask[6:8, 7:9, 7:9] = 4
    out = uploads.mask_downloads(mask, scan, "case_mask")
    assert set(out) == {"case_mask.nii.gz", "case_mask.seg.dcm"}
    nifti = nib.Nifti1Image.from_bytes(__import__("gzip").decompress(out["case_mask.nii.gz"]))
    np.testing.assert_array_equal(np.asarray(nifti.dataobj), mask)
    np.testing.assert_allclose(nifti.affine, scan.volume.affine, atol=1e-5)
    seg = hd.seg.segread(io.BytesIO(out["case_mask.seg.dcm"]))
    assert seg.number_of_segments == 3 and seg.Modality == "SEG"


def test_slices_are_shown_radiologically_whatever_the_voxel_order(tmp_path: Path) -> None:
    """A marker in the patient's right-anterior-superior corner lands top-left (axial, coronal); sagittal
    shows anterior on the left. The volume is written LPS-ordered (as DICOM stores it) and read back."""
    array = np.zeros((6, 5, 4), np.float32)
    array[0, 0, 3] = 100  # LPS voxel order: i -> left, so i=0 is the rightmost; j=0 most anterior; k=3 top
    lps_affine = np.diag([-2.0, -3.0, 4.0, 1.0])  # RAS affine of an LPS-ordered grid
    write_dicom_series(array, lps_affine, tmp_path / "s", modality="CT")
    volume = read_series(tmp_path / "s")
    assert vs.orientation(volume.affine) == "LPS"
    ras = vs.to_ras(volume)
    assert vs.orientation(ras.affine) == "RAS" and ras.shape == (6, 5, 4)
    axial, coronal, sagittal = (vs.cut(ras.array, p, ras.shape[vs.AXIS[p]] - 1) for p in vs.PLANES)
    assert axial[0, 0] == 100 and coronal[0, 0] == 100 and sagittal[0, 0] == 100
    assert vs.voxel_at(ras.shape, "axial", 3, 0, 0) == (5, 4, 3) and ras.array[5, 4, 3] == 100
    assert vs.pixel_mm(ras.affine, "coronal") == pytest.approx((4.0, 2.0))
    rgb = vs.render(axial, (50, 100), np.isin(axial, [100]).astype(np.uint8) * 4, 1.0, (3.0, 2.0), size=60)
    assert rgb.shape == (60, 48, 3) and tuple(rgb[0, 0]) == tuple(round(v) for v in vs.REGION_RGB["ET"])
    assert vs.planes_for((128, 128, 1)) == ["axial"]


def test_decode_image_converts_modes_and_refuses_bombs_before_decoding() -> None:
    def png(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    rgba = support.decode_image("a.png", png(Image.new("RGBA", (7, 5), (10, 20, 30, 0))))
    gray16 = support.decode_image("b.png", png(Image.fromarray(np.full((4, 6), 65535, np.uint16))))
    assert rgba.shape == (5, 7, 3) and rgba[0, 0, 2] == pytest.approx(30 / 255)
    assert gray16.shape == (4, 6, 3) and gray16.max() == pytest.approx(1.0)
    bomb = png(Image.new("1", (9000, 8000)))  # 72 Mpx of zeros: a few kB compressed
    assert len(bomb) < 100_000
    with pytest.raises(DataError, match=r"^bomb\.png: image is too large \(9000 x 8000 pixels"):
        support.decode_image("bomb.png", bomb)
    with pytest.raises(DataError, match=r"^cut\.png: not a readable image, corrupt or truncated"):
        support.decode_image("cut.png", png(Image.new("RGB", (64, 64), (1, 2, 3)))[:60])
    with pytest.raises(DataError, match=r"^notes\.txt: not an image file"):
        support.decode_image("notes.txt", b"hello")


def test_filtering_after_nms_equals_predicting_at_that_confidence(app_env, app_root: Path) -> None:
    predictor = load_predictor(support.find_checkpoints("detect")[0])
    image = support.decode_image(*support.nuclei_sample())[:200, :260]
    (everything,) = predictor.predict(image, conf=0.0, iou=0.5)
    assert len(everything.boxes) > 0
    for conf in (0.05, float(np.median(everything.scores))):
        (direct,) = predictor.predict(image, conf=conf, iou=0.5)
        shown = support.filter_result(everything, conf)
        np.testing.assert_array_equal(shown.boxes, direct.boxes)
    only = support.filter_result(everything, 0.0, ["dot"])
    assert set(support.class_counts(only)) <= {"dot"} and len(support.detection_rows(only)) == len(only.boxes)
    assert Image.open(io.BytesIO(support.annotated_png(only))).size == (260, 200)


def test_toolkit_app_runs_streamlit_from_the_repository_root(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    from toolkit.cli import main

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, cwd, env: calls.append((cmd, cwd, env)) or 0)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TOOLKIT_RUNS", raising=False)
    assert main(["app", "medical", "--port", "8765"]) == 0
    (cmd, cwd, env), root = calls[0], Path(__file__).resolve().parents[2]
    assert cmd[1:] == ["-m", "streamlit", "run", str(root / "apps" / "medical.py"), "--server.port", "8765"]
    assert cwd == root and env["TOOLKIT_RUNS"] == str(tmp_path / "runs")  # the runs of the folder it was called in
