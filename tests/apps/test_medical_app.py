"""The medical page (streamlit AppTest): samples and uploads, series choice, planes, windows, HU, the header with
identifying tags hidden, tumour segmentation with volumes and downloads, and bad uploads shown as messages."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.apps.conftest import support, zip_bytes
from toolkit import sample_input
from toolkit.medical import sample_file, uploads

PAGE = str(Path(__file__).resolve().parents[2] / "apps" / "medical.py")
STUDY, NIFTI, CT, MR = list(support.MEDICAL_SAMPLES)


def _sample(name: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.radio(key="scan-source").set_value("Sample").run()
    at.selectbox(key="sample").set_value(name).run()
    return at


def _errors(at: AppTest) -> list[str]:
    assert not at.exception, at.exception
    return [e.value for e in at.error]


def _facts(at: AppTest) -> dict[str, str]:
    table = at.table[0].value
    return dict(zip(table["property"], table["value"]))


def test_study_sample_series_planes_segmentation_volumes_and_downloads(app_env) -> None:
    at = _sample(STUDY)
    assert not _errors(at)
    chosen = at.multiselect[0].value
    assert [s.description for s in chosen] == ["T1", "T1c", "T2", "FLAIR"]  # one per model channel
    facts = _facts(at)
    assert facts["size (voxels)"] == "28 x 34 x 28 x 4 channels" and facts["spacing (mm)"] == "6 x 6 x 6"
    assert facts["values"].startswith("scanner intensities") and facts["modality"] == "MR"
    assert at.radio(key=f"plane-{_key(at)}").options == ["axial", "coronal", "sagittal"]
    assert "overlay" not in at.get("image")[0].captions[0]
    at.button(key="segment").click().run()
    assert not _errors(at)
    volumes = at.table[1].value
    assert list(volumes["region"][:3]) == ["TC", "WT", "ET"]
    wt = float(volumes["volume (mL)"][1])
    assert wt > 0 and wt >= float(volumes["volume (mL)"][0])
    assert at.get("image")[0].captions[0].endswith("overlay: TC gold, WT blue, ET red")
    assert [b.label for b in at.get("download_button")] == ["Mask (NIfTI)", "Mask (DICOM SEG)"]
    assert at.slider(key="opacity").value == 0.5
    at.radio(key=f"plane-{_key(at)}").set_value("sagittal").run()
    assert at.get("image")[0].captions[0].startswith("sagittal slice")
    at.multiselect[0].set_value(chosen[3:]).run()  # FLAIR alone: one channel, the model wants four
    at.button(key="segment").click().run()
    assert "has 1 channel(s); the model was trained on 4" in _errors(at)[0]


def _key(at: AppTest) -> str:
    """The scan key the page puts in its widget keys (read from the plane radio's key)."""
    radio = next(r for r in at.radio if r.key and r.key.startswith("plane-"))
    return radio.key[len("plane-"):]


def test_ct_slice_shows_hu_windows_header_and_refuses_the_3d_model(app_env) -> None:
    at = _sample(CT)
    facts = _facts(at)
    assert facts["values"] == "HU (Hounsfield units)" and facts["size (voxels)"] == "128 x 128 x 1"
    assert at.metric[0].value.endswith(" HU")
    assert at.radio(key=f"plane-{_key(at)}").options == ["axial"]
    key = f"{_key(at)}-0"
    assert "brain" in at.selectbox(key=f"preset-{key}").options
    at.selectbox(key=f"preset-{key}").set_value("brain").run()
    assert (at.slider(key=f"centre-{key}").value, at.slider(key=f"width-{key}").value) == (40.0, 80.0)
    assert "window 40 / 80" in at.get("image")[0].captions[0]
    with_header = at.dataframe[0].value.set_index("tag")["value"]
    assert with_header["PatientName"] == "<hidden>" and with_header["Modality"] == "CT"
    at.checkbox(key="identifying").check().run()
    assert at.dataframe[0].value.set_index("tag")["value"]["PatientName"] == "CompressedSamples^CT1"
    at.button(key="segment").click().run()
    assert _errors(at) == [("CT_small.dcm is a 2D image (shape (128, 128, 1)); the segment3d model needs a 3D scan "
                            "with several slices")]


def test_without_a_model_the_viewer_works_and_says_how_to_make_one(app_env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOOLKIT_RUNS", str(tmp_path))
    at = _sample(MR)
    assert not _errors(at) and _facts(at)["modality"] == "MR" and len(at.get("image")) == 1
    assert not at.button and any("`make apps`" in i.value and "toolkit train segment3d" in i.value for i in at.info)
    assert not at.metric[0].value.endswith("HU")  # MR intensities have no physical unit


def test_uploads_nifti_zip_with_several_series_and_bad_files(app_env) -> None:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    uploader = at.file_uploader(key="scan")
    case = sample_input("brain")
    uploader.set_value((case.name, case.read_bytes(), "application/gzip")).run()
    assert not _errors(at) and _facts(at)["size (voxels)"] == "28 x 34 x 28 x 4 channels"
    study = support.read_files(support.brain_dicom_study())
    ct = sample_file("CT_small.dcm").read_bytes()
    mixed = study[:28] + [("ct/CT_small.dcm", ct)]  # the T1 series and an unrelated CT slice
    for bad, message in [(("empty.zip", zip_bytes([])), "empty.zip: the zip is empty"),
                         (("notes.txt", b"hello"), "notes.txt: not a DICOM Part 10 file"),
                         (("cut.dcm", ct[:3000]), "cut.dcm: not readable, a file is truncated or corrupt"),
                         (("broken.nii.gz", b"\x1f\x8b\x08junk"), "broken.nii.gz: not a readable NIfTI file")]:
        at.file_uploader(key="scan").set_value((*bad, "application/octet-stream")).run()
        assert _errors(at)[0].startswith(message), bad[0]
    data = zip_bytes(mixed)
    at.file_uploader(key="scan").set_value(("mixed.zip", data, "application/zip")).run()
    assert not _errors(at) and len(at.multiselect[0].options) == 2
    assert [s.description for s in at.multiselect[0].value] == ["T1"]  # the first series is shown
    ct_series = next(s for s in uploads.upload_series([("mixed.zip", data)]) if s.modality == "CT")
    at.multiselect[0].set_value([ct_series]).run()
    assert not _errors(at) and _facts(at)["modality"] == "CT"


def test_an_exported_onnx_file_segments_on_onnxruntime(app_env, app_root: Path, tmp_path: Path) -> None:
    from toolkit.export import export_onnx

    onnx_file = export_onnx(app_root / "runs" / "segment3d" / "exp" / "weights" / "best.pt", tmp_path / "s.onnx").path
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.sidebar.radio[0].set_value("Checkpoint path").run()
    at.sidebar.text_input[0].set_value(str(onnx_file)).run()
    at.radio(key="scan-source").set_value("Sample").run()
    at.selectbox(key="sample").set_value(NIFTI).run()
    at.button(key="segment").click().run()
    assert not _errors(at)
    assert any(c.value.endswith("(onnxruntime)") for c in at.caption)


def test_explain_after_segmenting_draws_a_region_heatmap(app_env) -> None:
    at = _sample(NIFTI)
    at.button(key="segment").click().run()
    assert not _errors(at) and at.radio(key="explain-region").value == "WT"
    at.radio(key="explain-region").set_value("TC").run()
    at.button(key="explain").click().run()
    assert not _errors(at)
    assert any(c.startswith("hirescam @ decoder: TC (score ") for image in at.get("image") for c in image.captions)
