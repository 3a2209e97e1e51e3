"""One DICOM file: physical units, windowing, decoders, bad files, de-identified metadata."""
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_windowing

from toolkit.errors import DataError
from toolkit.medical import WINDOW_PRESETS, apply_window, dicom_metadata, read_dicom, stack_windows


def test_ct_small_hu_and_windows_match_hand_computation():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    image = read_dicom(path)
    raw = ds.pixel_array.astype(np.float64)
    hu = raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.array_equal(image.pixels, hu.astype(np.float32))
    assert image.pixels[0, 0] == float(raw[0, 0]) + float(ds.RescaleIntercept)  # intercept -1024 here
    centre, width = WINDOW_PRESETS["brain"]  # 40 / 80 HU: display = (HU - 39.5) / 79 + 0.5, clipped
    for value in (-100.0, 0.0, 40.0, 60.0, 79.5, 200.0):
        expected = min(max((value - 39.5) / 79 + 0.5, 0.0), 1.0)
        assert apply_window(np.array([value]), "brain")[0] == pytest.approx(expected, abs=1e-6)
    display = image.display("brain")
    assert display[hu < 0].max() == 0.0 and display[hu > 80].min() == 1.0
    ds.WindowCenter, ds.WindowWidth = centre, width  # pydicom's own windowing agrees once rescaled to [0, 1]
    y_min, y_max = -(2 ** 15) - 1024, 2 ** 15 - 1 - 1024
    reference = (apply_windowing(hu, ds) - y_min) / (y_max - y_min)
    np.testing.assert_allclose(display, reference, atol=1e-5)


def test_presets_stack_and_custom_window():
    hu = np.array([[-1000.0, -600.0, 0.0, 40.0, 400.0, 2000.0]])
    lung = apply_window(hu, "lung")
    assert lung[0, 0] == pytest.approx((-1000 + 600.5) / 1499 + 0.5) and lung[0, 1] == pytest.approx(0.5, abs=1e-3) and lung[0, -1] == 1.0
    assert apply_window(hu, (0.0, 2.0))[0].tolist() == [0, 0, 1, 1, 1, 1]
    stacked = stack_windows(hu, ("brain", "subdural", "bone"))
    assert stacked.shape == (1, 6, 3) and stacked.dtype == np.float32
    with pytest.raises(DataError, match="unknown window preset 'liver'"):
        apply_window(hu, "liver")


def test_mr_auto_window_and_file_window():
    image = read_dicom(get_testdata_file("MR_small.dcm"))
    auto = image.display("auto")
    assert 0.0 <= auto.min() and auto.max() <= 1.0 and (auto == 1.0).mean() < 0.05
    assert image.display().shape == image.pixels.shape


def test_monochrome1_is_inverted(tmp_path: Path):
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "mono1.dcm")
    normal, inverted = read_dicom(path), read_dicom(tmp_path / "mono1.dcm")
    np.testing.assert_allclose(inverted.display("brain"), 1.0 - normal.display("brain"))


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
                                  "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_expb.dcm"])
def test_transfer_syntaxes_decode_to_the_same_pixels(name: str):
    reference = read_dicom(get_testdata_file("MR_small.dcm")).pixels
    np.testing.assert_array_equal(read_dicom(get_testdata_file(name)).pixels, reference)


def test_multiframe_and_colour():
    colour = read_dicom(get_testdata_file("examples_ybr_color.dcm"))
    assert colour.pixels.shape == (30, 240, 320, 3) and colour.photometric == "RGB"
    assert 0.0 <= colour.display().min() and colour.display().max() <= 1.0
    assert read_dicom(get_testdata_file("SC_rgb_rle_2frame.dcm")).pixels.shape[0] == 2


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "notes.dcm").write_text("this is not DICOM\n")
    corrupt = bytearray(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    corrupt[400:460] = b"\xff" * 60
    (tmp_path / "corrupt.dcm").write_bytes(bytes(corrupt[:1000]))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder exists
    ds.PixelData = encapsulate([ds.PixelData])
    ds.save_as(tmp_path / "mpeg2.dcm")
    return {
        "truncated": (Path(get_testdata_file("MR_truncated.dcm")), "truncated or corrupt"),
        "no_meta": (Path(get_testdata_file("no_meta.dcm")), "not a DICOM Part 10 file"),
        "empty": (tmp_path / "empty.dcm", "it is empty"),
        "not_dicom": (tmp_path / "notes.dcm", "not a DICOM Part 10 file"),
        "corrupt": (tmp_path / "corrupt.dcm", "corrupt"),
        "no_pixels": (Path(get_testdata_file("rtplan.dcm")), "no pixel data"),
        "no_decoder": (tmp_path / "mpeg2.dcm", "cannot decode pixel data in MPEG2"),
        "broken_jpeg": (Path(get_testdata_file("JPEG-lossy.dcm")), "cannot decode pixel data in JPEG Extended"),
        "missing": (tmp_path / "nope.dcm", "not found"),
    }


def test_bad_files_give_one_line_data_errors(tmp_path: Path):
    for kind, (path, message) in _bad_files(tmp_path).items():
        with pytest.raises(DataError) as info:
            read_dicom(path)
        text = str(info.value)
        assert message in text and str(path) in text and "\n" not in text, (kind, text)


def test_metadata_hides_identifying_tags():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    view = dicom_metadata(path)
    for key in ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "AccessionNumber",
                "ReferringPhysicianName"):
        if key in ds:
            assert view[key] == "<hidden>"
    assert str(ds.PatientName) not in " ".join(view.values())
    assert view["Modality"] == "CT" and view["Rows"] == "128"
    assert dicom_metadata(path, show_identifying=True)["PatientName"] == str(ds.PatientName)
