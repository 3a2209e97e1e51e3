"""The detection page with an instance segmentation run (streamlit AppTest): each object's mask over the image, the
count, the per-object table (µm² when the upload gives its pixel size), the area histogram and the downloads; a bad
upload is a message, never a traceback."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from streamlit.testing.v1 import AppTest

from tests.apps.conftest import support

PAGE = str(Path(__file__).resolve().parents[2] / "apps" / "detection.py")
COLUMNS = ["id", "class", "score", "area_px", "centroid_x", "centroid_y", "x1", "y1", "x2", "y2", "mean_intensity"]


@pytest.fixture
def instance_env(app_env: dict[str, str], instance_runs: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("TOOLKIT_RUNS", str(instance_runs))
    return {**app_env, "TOOLKIT_RUNS": str(instance_runs)}


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=180).run()


def _errors(at: AppTest) -> list[str]:
    assert not at.exception, at.exception
    return [e.value for e in at.error]


def test_sample_masks_count_table_histogram_and_downloads(instance_env) -> None:
    at = _page()
    assert at.sidebar.selectbox[0].value == support.find_checkpoints("instance")[0]
    assert not [s for s in at.sidebar.selectbox if s.key == "tta"]  # no test-time views for masks
    at.radio(key="image-source").set_value(at.radio(key="image-source").options[1]).run()
    at.slider(key="instance-conf").set_value(0.05).run()
    assert not _errors(at)
    table = at.dataframe[0].value
    assert list(table.columns) == COLUMNS and len(table) > 0
    assert at.metric[0].label == "Objects" and int(at.metric[0].value) == len(table)
    assert table["id"].tolist() == list(range(1, len(table) + 1)) and (table["score"].diff().dropna() <= 0).all()
    assert (table[["x2", "y2"]].to_numpy() <= 512).all() and (table["area_px"] > 0).all()
    counts = dict(zip(at.table[0].value["class"], at.table[0].value["count"]))
    assert counts == {"nucleus": len(table)}
    assert at.get("image")[0].captions[0].startswith(f"nuclei.png: {len(table)} object(s)")
    assert len(at.get("image")) == 2  # the overlay and the area histogram
    assert any("does not give its pixel size" in c.value for c in at.caption)
    assert [b.label for b in at.get("download_button")] == ["Overlay (PNG)", "Label image (16-bit PNG)",
                                                            "Objects (CSV)", "Objects (JSON)"]
    assert not [t for t in at.toggle if t.key == "explain"]
    at.slider(key="instance-conf").set_value(float(table["score"].median()) + 1e-3).run()
    fewer = at.dataframe[0].value
    assert 0 < len(fewer) < len(table) and fewer["id"].tolist() == list(range(1, len(fewer) + 1))
    assert fewer["area_px"].tolist() == table["area_px"].tolist()[:len(fewer)]  # the better objects unchanged


def test_an_upload_with_a_pixel_size_gets_square_microns_and_bad_uploads_get_messages(instance_env) -> None:
    name, nuclei = support.nuclei_sample()
    image = support.decode_image(name, nuclei)[:, :, 0]
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, (image * 65535).astype(np.uint16), imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"unit": "um"})
    at = _page()
    at.slider(key="instance-conf").set_value(0.05).run()
    at.file_uploader(key="images").set_value([("cells.tif", tiff.getvalue(), "image/tiff"),
                                              ("notes.txt", b"not an image", "text/plain")]).run()
    assert _errors(at) == ["notes.txt: not an image file (.txt); upload PNG, JPEG, TIFF, BMP or WebP"]
    table = at.dataframe[0].value
    assert len(table) > 0 and list(table.columns) == COLUMNS + ["area_um2"]
    assert np.allclose(table["area_um2"], table["area_px"] * 0.25, atol=1e-3)
    assert any(c.value.startswith("pixel size 0.5 µm") for c in at.caption)


def test_an_exported_instance_model_runs_on_onnxruntime(instance_env, instance_runs: Path, tmp_path: Path) -> None:
    from toolkit.export import export_onnx

    onnx_file = export_onnx(instance_runs / "instance" / "exp" / "weights" / "best.pt", tmp_path / "cells.onnx").path
    at = _page()
    at.sidebar.radio[0].set_value("Checkpoint path").run()
    at.sidebar.text_input[0].set_value(str(onnx_file)).run()
    at.radio(key="image-source").set_value(at.radio(key="image-source").options[1]).run()
    at.slider(key="instance-conf").set_value(0.05).run()
    assert not _errors(at)
    caption = at.get("image")[0].captions[0]
    assert caption.endswith("(onnxruntime)") and int(at.metric[0].value) == len(at.dataframe[0].value) > 0
