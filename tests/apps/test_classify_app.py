"""The classification page (streamlit AppTest): a digits run on its own samples and on uploads, the top-k table, a
heatmap per chosen class for each method, feature maps, filters, the layer walk, and bad uploads as messages."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "apps" / "classify.py")


def _errors(at: AppTest) -> list[str]:
    assert not at.exception, at.exception
    return [e.value for e in at.error]


def test_sample_top_classes_heatmaps_feature_maps_and_filters(app_env) -> None:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not _errors(at)
    assert at.selectbox(key="dataset").value == "digits"  # the run's own data
    at.selectbox(key="sample").set_value(at.selectbox(key="sample").options[3]).run()
    top = at.dataframe[0].value
    assert list(top.columns) == ["class", "score"] and len(top) == 5 and top["score"].is_monotonic_decreasing
    captions = [c for image in at.get("image") for c in image.captions]
    assert any(c.startswith(f"gradcam @ stage2: {top['class'][0]} (") for c in captions)  # the top class's map
    assert any(c.startswith("stage3: the most active of 128 channels") for c in captions)
    assert "first-layer filters" in captions
    shown = len(at.get("image"))
    at.toggle(key="walk").set_value(True).run()
    assert not _errors(at) and len(at.get("image")) == shown + 1  # the walk through every layer
    at.multiselect[0].set_value(list(top["class"][:2])).run()
    at.selectbox(key="method").set_value("gradcam++").run()
    at.selectbox(key="layer").set_value("stage1").run()
    at.selectbox(key="feature-stage").set_value("stage1").run()
    assert not _errors(at)
    captions = [c for image in at.get("image") for c in image.captions]
    assert sum(c.startswith("gradcam++ @ stage1: ") for c in captions) == 2
    assert any(c.startswith("stage1: the most active of 32 channels") for c in captions)
    assert at.selectbox(key="method").options == ["gradcam", "gradcam++", "hirescam", "layercam", "scorecam",
                                                  "eigencam"]


def test_uploads_in_colour_and_a_bad_file(app_env) -> None:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.radio(key="image-source").set_value("Upload").run()
    buffer = io.BytesIO()
    Image.fromarray(np.kron(np.eye(4, dtype=np.uint8) * 255, np.ones((6, 6), np.uint8))).convert("RGB").save(
        buffer, format="PNG")
    at.file_uploader(key="upload").set_value([("diagonal.png", buffer.getvalue(), "image/png")]).run()
    assert not _errors(at) and len(at.dataframe[0].value) == 5
    assert at.get("image")[0].captions[0] == "diagonal.png (24 x 24 px)"
    at.file_uploader(key="upload").set_value([("notes.txt", b"text", "text/plain")]).run()
    assert _errors(at) == ["notes.txt: not an image file (.txt); upload PNG, JPEG, TIFF, BMP or WebP"]
