"""The detection page (streamlit AppTest): model choice, sample and uploads, sliders, class filter, table,
counts, downloads, and every bad upload shown as a message while the page keeps working."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tifffile
import torch
import torchvision
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.apps.conftest import support
from toolkit.predict import Predictor


PAGE = str(Path(__file__).resolve().parents[2] / "apps" / "detection.py")


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120).run()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _errors(at: AppTest) -> list[str]:
    assert not at.exception, at.exception
    return [e.value for e in at.error]


def test_without_runs_the_page_says_how_to_make_a_model(app_env, app_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOOLKIT_RUNS", str(tmp_path / "none"))
    at = _page()
    assert not _errors(at)
    assert at.sidebar.radio[0].options == ["Checkpoint path", "COCO-pretrained (torchvision)"]
    assert any("`make apps`" in i.value and "toolkit train detect" in i.value for i in at.info)
    at.sidebar.radio[0].set_value("COCO-pretrained (torchvision)").run()
    assert any("toolkit weights fetch fasterrcnn_resnet50_fpn" in i.value for i in at.sidebar.info)
    at.sidebar.radio[0].set_value("Checkpoint path").run()
    at.sidebar.text_input[0].set_value(str(tmp_path / "missing.pt")).run()
    assert _errors(at) == [f"checkpoint not found: {tmp_path / 'missing.pt'}"]
    at.sidebar.text_input[0].set_value(str(app_root / "runs" / "segment3d" / "exp" / "weights" / "best.pt")).run()
    assert "is a 'segment3d' checkpoint; this app needs a 'detect' or 'instance' one" in _errors(at)[0]


def test_sample_sliders_class_filter_table_counts_and_downloads(app_env) -> None:
    at = _page()
    assert at.sidebar.selectbox[0].value == support.find_checkpoints("detect")[0]
    at.radio(key="image-source").set_value(at.radio(key="image-source").options[1]).run()
    at.slider(key="conf").set_value(0.0).run()
    assert not _errors(at)
    table = at.dataframe[0].value
    assert list(table.columns) == ["class", "score", "x1", "y1", "x2", "y2"] and len(table) > 0
    assert (table[["x2", "y2"]].to_numpy() <= 512).all()  # boxes in the image's own pixels
    counts = dict(zip(at.table[0].value["class"], at.table[0].value["count"]))
    assert sum(counts.values()) == len(table) and set(counts) <= {"cell", "dot"}
    assert "nuclei.png: " in at.get("image")[0].captions[0]
    assert [b.label for b in at.get("download_button")] == ["Annotated image (PNG)", "Detections (JSON)"]
    at.slider(key="conf").set_value(float(table["score"].median())).run()
    assert 0 < len(at.dataframe[0].value) < len(table)
    at.slider(key="conf").set_value(0.0).run()
    at.sidebar.multiselect[0].set_value(["dot"]).run()
    assert set(at.dataframe[0].value["class"]) <= {"dot"}
    assert len(at.dataframe[0].value) == counts.get("dot", 0)
    at.sidebar.multiselect[0].set_value([]).run()
    at.selectbox(key="tta").set_value("hflip").run()
    assert not _errors(at) and "2: + mirror" in at.selectbox(key="tta").options
    assert (at.dataframe[0].value[["x2", "y2"]].to_numpy() <= 512).all()


def test_several_uploads_and_every_bad_one_gets_a_message(app_env) -> None:
    name, nuclei = support.nuclei_sample()
    gray16 = io.BytesIO()
    tifffile.imwrite(gray16, (np.arange(96 * 80, dtype=np.uint16).reshape(96, 80) * 8))
    bomb = _png(Image.new("1", (9000, 8000)))
    at = _page()
    at.file_uploader(key="images").set_value([
        (name, nuclei, "image/png"),
        ("rgba.png", _png(Image.new("RGBA", (70, 50), (200, 30, 30, 128))), "image/png"),
        ("gray16.tif", gray16.getvalue(), "image/tiff"),
        ("notes.txt", b"not an image", "text/plain"),
        ("cut.png", nuclei[:400], "image/png"),
        ("bomb.png", bomb, "image/png"),
        ("empty.jpg", b"", "image/jpeg"),
    ]).run()
    errors = _errors(at)
    assert errors[0].startswith("notes.txt: not an image file (.txt)")
    assert errors[1].startswith("cut.png: not a readable image, corrupt or truncated")
    assert errors[2].startswith("bomb.png: image is too large (9000 x 8000 pixels")
    assert errors[3] == "empty.jpg: the file is empty" and len(errors) == 4
    summary = at.dataframe[0].value
    assert list(summary["image"]) == ["nuclei.png", "rgba.png", "gray16.tif"]
    at.selectbox(key="image").set_value(2).run()
    assert at.get("image")[0].captions[0].startswith("gray16.tif: ")


def test_coco_detector_from_the_torch_cache(app_env, monkeypatch) -> None:
    """torchvision's Faster R-CNN file in the cache (random weights, written here) -> the 90 COCO class names."""
    torch.manual_seed(0)
    stock = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    path = Path(app_env["TORCH_HOME"]) / "hub" / "checkpoints" / "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(stock.state_dict(), path)
    predictor = Predictor.coco_detector(device="cpu")
    ours = predictor.model.model.state_dict()
    for key in ("roi_heads.box_predictor.cls_score.weight", "rpn.head.conv.0.0.weight"):
        assert torch.equal(ours[key], stock.state_dict()[key]), key
    at = _page()
    at.sidebar.radio[0].set_value("COCO-pretrained (torchvision)").run()
    assert not _errors(at)
    assert at.sidebar.multiselect[0].options[:3] == ["person", "bicycle", "car"]
    assert len(at.sidebar.multiselect[0].options) == 90


def test_an_exported_onnx_file_runs_on_onnxruntime(app_env, app_root: Path, tmp_path: Path) -> None:
    from toolkit.export import export_onnx

    onnx_file = export_onnx(app_root / "runs" / "detect" / "exp" / "weights" / "best.pt", tmp_path / "det.onnx").path
    at = _page()
    at.sidebar.radio[0].set_value("Checkpoint path").run()
    at.sidebar.text_input[0].set_value(str(onnx_file)).run()
    at.radio(key="image-source").set_value(at.radio(key="image-source").options[1]).run()
    assert not _errors(at)
    assert at.get("image")[0].captions[0].endswith("(onnxruntime)")


def test_explain_shows_the_heatmap_of_a_chosen_detection(app_env) -> None:
    at = _page()
    at.radio(key="image-source").set_value(at.radio(key="image-source").options[1]).run()
    at.slider(key="conf").set_value(0.0).run()
    at.toggle(key="explain").set_value(True).run()
    assert not _errors(at)
    boxes = at.selectbox(key="explain-box")
    assert boxes.options[0].startswith("#0 ") and len(boxes.options) > 1
    boxes.set_value(1).run()
    assert not _errors(at)
    caption = at.get("image")[1].captions[0]
    assert caption.startswith("nuclei.png: hirescam @ stage4: ") and " #1 (" in caption
