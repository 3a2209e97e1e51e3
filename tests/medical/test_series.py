"""DICOM series: written from the MNI152 brain, read back geometrically sorted with the NIfTI's affine."""
import random
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

from toolkit.errors import DataError
from toolkit.medical import load_scan, read_series, write_dicom_series, write_nifti
from toolkit.medical.synthetic import load_mni152


@pytest.fixture(scope="module")
def mni(tmp_path_factory) -> dict:
    anatomy, affine = load_mni152(spacing_mm=4.0)
    root = tmp_path_factory.mktemp("mni")
    volume = anatomy["t1"] * 1000.0
    nifti = write_nifti(volume.astype(np.float32), affine, root / "t1.nii.gz")
    files = write_dicom_series(volume, affine, root / "series", modality="MR")
    return {"volume": volume, "affine": affine, "nifti": nifti, "dir": root / "series", "files": files}


def _copy(mni: dict, tmp_path: Path) -> Path:
    return Path(shutil.copytree(mni["dir"], tmp_path / "series"))


def test_series_reads_back_like_its_nifti(mni):
    dicom, nifti = load_scan(mni["dir"]), load_scan(mni["nifti"])
    slope = float(pydicom.dcmread(mni["files"][0]).RescaleSlope)
    assert dicom.shape == nifti.shape == mni["volume"].shape
    np.testing.assert_allclose(dicom.affine, nifti.affine, atol=1e-5)
    np.testing.assert_allclose(dicom.spacing, (4.0, 4.0, 4.0), atol=1e-6)
    np.testing.assert_allclose(dicom.array, nifti.array, atol=slope / 2 + 1e-3)
    assert len(dicom.sources) == dicom.shape[2] and dicom.meta["modality"] == "MR"


def test_shuffled_instance_numbers_and_file_names_still_sort_by_position(mni, tmp_path):
    folder = _copy(mni, tmp_path)
    files = sorted(folder.iterdir())
    numbers = list(range(1, len(files) + 1))
    random.Random(0).shuffle(numbers)
    for path, number in zip(files, numbers):
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = number
        ds.save_as(folder / f"IM{number:05d}", enforce_file_format=True)
        path.unlink()
    volume = read_series(folder)
    reference = read_series(mni["dir"])
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_allclose(volume.affine, reference.affine)


def test_zip_of_series(mni, tmp_path):
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in reversed(mni["files"]):
            zf.write(path, f"dicom/{path.name}")
    np.testing.assert_array_equal(load_scan(archive).array, read_series(mni["dir"]).array)


def test_missing_slice_is_an_error(mni, tmp_path):
    folder = _copy(mni, tmp_path)
    (folder / "slice_0005.dcm").unlink()
    with pytest.raises(DataError, match="slices are missing"):
        read_series(folder)


def test_uneven_spacing_warns(mni, tmp_path):
    folder = _copy(mni, tmp_path)
    path = folder / "slice_0005.dcm"
    ds = pydicom.dcmread(path)
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.6
    ds.save_as(path)
    with pytest.warns(UserWarning, match="uneven slice spacing"):
        read_series(folder)


def test_mixed_series_warns_and_names_them(mni, tmp_path):
    folder = _copy(mni, tmp_path)
    other = write_dicom_series(mni["volume"][:, :, :3], mni["affine"], tmp_path / "other",
                               series_description="localizer", seed=1)
    for path in other:
        shutil.copy(path, folder / f"other_{path.name}")
    (folder / "readme.txt").write_text("not dicom")
    with pytest.warns(UserWarning, match="2 series found"):
        volume = read_series(folder)
    assert volume.shape == mni["volume"].shape
    uid = str(pydicom.dcmread(other[0]).SeriesInstanceUID)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_series(folder, series_uid=uid).shape[2] == 3


def test_duplicate_positions_and_empty_folder(mni, tmp_path):
    folder = _copy(mni, tmp_path)
    ds = pydicom.dcmread(folder / "slice_0003.dcm")
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(folder / "duplicate.dcm")
    with pytest.raises(DataError, match="share one position"):
        read_series(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no DICOM image slices"):
        read_series(tmp_path / "empty")
