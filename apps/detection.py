"""Object detection demo: a trained run (or torchvision's COCO detector) on uploaded images or the bundled nuclei
image, with confidence / IoU sliders, a class filter, the annotated image, a table, counts and downloads, and
"Explain": the heatmap of what drove a chosen detection. An instance segmentation run shows each object's mask
instead, with the object count, the per-object table (areas in µm² when the image gives its pixel size) and the
histogram of the objects' areas.

Run: ``toolkit app detection`` or ``streamlit run apps/detection.py``."""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import common
import pandas as pd
import streamlit as st
import support

from toolkit.viz import heatmap

HOW_TO = ("Make the demo model with `make apps` (about 10 min on CPU), or train one with `toolkit train detect` "
          "or, for one mask per object, `toolkit train instance` (built-in nuclei data) and reload this page; or give "
          "a checkpoint path.")
TASKS = ("detect", "instance")
SAMPLE = "Sample: nuclei (512 x 512 fluorescence microscopy)"
TTA_VIEWS = {"none": "1 (fastest)", "hflip": "2: + mirror", "d4": "8: every flip and 90° turn (8x slower)"}
KEEP = 64  # decoded images and their detections kept per session (more uploads are recomputed on each change)
# Tiling of a model trained on tiles (the nuclei recipe): a tile k times the trained one, resized k times as large, so
# objects keep their trained size in pixels with k^2 fewer tiles; benchmarks/detect_latency.py measured the default.
TILES = {2: "2x the trained tile (fastest)", 1: "as trained"}
INSTANCE_FLOOR = 0.05  # an instance model predicts objects down to this score once; the slider then filters them


def pick_images() -> list[tuple[str, str, Any, float | None]]:
    """(key, name, float image (H, W, 3), pixel size in µm or None) of the uploads or the sample; unreadable files are
    reported, skipped."""
    if st.radio("Images", ["Upload", SAMPLE], horizontal=True, key="image-source") == SAMPLE:
        with common.shown_errors():
            name, data = common.memo(("sample",), support.nuclei_sample)
            image = common.memo(("image", "sample"), lambda: support.decode_image(name, data), KEEP)
            return [("sample", name, image, None)]
        return []
    files = st.file_uploader(f"Images: PNG, JPEG, TIFF, BMP or WebP up to {support.MAX_PIXELS // 10 ** 6} megapixels; "
                             "gray and RGBA are converted", accept_multiple_files=True, key="images")
    images = []
    for f in files or []:
        with common.shown_errors():
            image = common.memo(("image", f.file_id), lambda f=f: support.decode_image(f.name, f.getvalue()), KEEP)
            size = common.memo(("pixel-size", f.file_id), lambda f=f: support.pixel_size_um(f.name, f.getvalue()), KEEP)
            images.append((f.file_id, f.name, image, size))
    return images


def detect(predictor: Any, name: str, image: Any, iou: float, tta: str, pixel_size: float | None = None
           ) -> tuple[Any, float]:
    """All detections (score >= the model's floor) after NMS at ``iou``, with test-time views ``tta``, and the
    seconds it took. The confidence slider filters these afterwards: greedy NMS keeps the same boxes whichever
    threshold is applied first. An instance model: its objects scored >= ``INSTANCE_FLOOR``, areas in µm² with
    ``pixel_size``; where masks overlap the better object holds the pixel, so the weaker objects the slider hides
    took no pixel from those it shows."""
    start = time.perf_counter()
    if predictor.task_name == "instance":
        (result,) = predictor.predict(image, conf=INSTANCE_FLOOR, iou=iou)
        result.pixel_size_um = pixel_size
    else:
        (result,) = predictor.predict(image, conf=0.0, iou=iou, tta=tta)
    result.source = name
    return result, time.perf_counter() - start


def tiled(predictor: Any) -> Any:
    """The predictor with the tile size chosen in the sidebar (only for a model that predicts on tiles)."""
    data = predictor.task.cfg.data
    if not getattr(data, "predict_tile", 0):
        return predictor
    factor = st.sidebar.selectbox("Tiles", list(TILES), format_func=TILES.get, key="tiles")
    return common.with_overrides(predictor, [f"data.predict_tile={data.predict_tile * factor}",
                                             f"data.img_size={data.img_size * factor}"] if factor != 1 else [])


def show(key: tuple, name: str, result: Any, seconds: float, engine: str) -> None:
    counts = support.class_counts(result)
    left, right = st.columns([3, 2])
    png = common.memo(("png", *key), lambda: support.annotated_png(result))
    left.image(png, caption=f"{name}: {len(result.boxes)} detection(s); inference {seconds:.2f} s ({engine})",
               width="stretch")
    right.subheader("Counts per class")
    right.table([{"class": c, "count": n} for c, n in counts.items()] or [{"class": "(none)", "count": 0}])
    right.subheader("Detections")
    rows = pd.DataFrame(support.detection_rows(result), columns=["class", "score", "x1", "y1", "x2", "y2"])
    right.dataframe(rows, hide_index=True, key="detections",
                    column_config={"score": st.column_config.NumberColumn(format="%.3f")})
    stem = Path(name).stem
    right.download_button("Annotated image (PNG)", png, f"{stem}_detections.png", "image/png", on_click="ignore")
    right.download_button("Detections (JSON)", support.result_json(result), f"{stem}_detections.json",
                          "application/json", on_click="ignore")


def show_instances(key: tuple, name: str, result: Any, seconds: float, engine: str) -> None:
    """An instance model's result: each object's mask over the image, the count, counts per class, the area
    histogram, the per-object table and downloads."""
    left, right = st.columns([3, 2])
    png = common.memo(("png", *key), result.overlay_png)
    left.image(png, caption=f"{name}: {result.count} object(s); inference {seconds:.2f} s ({engine})",
               width="stretch")
    right.metric("Objects", result.count)
    right.subheader("Counts per class")
    counts = support.class_counts(result)
    right.table([{"class": c, "count": n} for c, n in counts.items()] or [{"class": "(none)", "count": 0}])
    right.subheader("Object areas")
    right.image(common.memo(("areas", *key), lambda: support.area_histogram_png(result)), width="stretch")
    right.caption(f"pixel size {result.pixel_size_um:.4g} µm, from the image's metadata" if result.pixel_size_um
                  else "areas in pixels: the image does not give its pixel size")
    table = common.memo(("objects", *key), result.objects_csv)
    stem = Path(name).stem
    right.download_button("Overlay (PNG)", png, f"{stem}_overlay.png", "image/png", on_click="ignore")
    right.download_button("Label image (16-bit PNG)", result.label_png(), f"{stem}_instances.png", "image/png",
                          on_click="ignore")
    right.download_button("Objects (CSV)", table, f"{stem}_objects.csv", "text/csv", on_click="ignore")
    right.download_button("Objects (JSON)", support.result_json(result), f"{stem}_objects.json", "application/json",
                          on_click="ignore")
    st.subheader("Objects")
    st.dataframe(pd.read_csv(io.StringIO(table)), hide_index=True, key="objects",
                 column_config={"score": st.column_config.NumberColumn(format="%.3f")})


def explain(key: tuple, predictor: Any, name: str, image: Any, conf: float, iou: float) -> None:
    """"Explain": the box-score Grad-CAM heatmap of a chosen detection (detections without test-time views)."""
    if not st.toggle("Explain a detection: what the model looked at", key="explain"):
        return
    with common.shown_errors():
        model = predictor.explainable()
        (plain,) = common.memo(("plain", *key), lambda: model.predict(image, conf=conf, iou=iou, tta="none"))
        if not len(plain.boxes):
            st.info("No detection above the confidence threshold to explain.")
            return
        pick = st.selectbox("Detection (found without test-time views)", range(len(plain.boxes)), key="explain-box",
                            format_func=lambda i: f"#{i} {plain.classes[int(plain.labels[i])]} {plain.scores[i]:.2f} "
                                                  f"at x {plain.boxes[i][0]:.0f}, y {plain.boxes[i][1]:.0f}")
        (found,) = common.memo(("explained", *key, pick), lambda: model.explain(image, target=pick, conf=conf, iou=iou))
        ((target, heat),) = found.heatmaps.items()
        title = f"{found.method} @ {found.layer}: {target} ({found.scores[target]:.2f})"
        st.image(common.memo(("explained-png", *key, pick), lambda: support.figure_png(
            lambda out: heatmap.plot_heatmap(found.image, heat, out, title, found.boxes[target]))),
            caption=f"{name}: {title}; {found.seconds:.2f} s", width="stretch")


def main() -> None:
    common.setup("Object detection", "Boxes from a trained detection run on your images, or one mask per object from "
                 "an instance segmentation run. Uploads stay in memory.")
    predictor = common.pick_model(TASKS, HOW_TO, coco=True)
    if predictor is None:
        st.info("Choose a model in the sidebar. " + HOW_TO)
        return
    st.sidebar.header("Detections")
    predictor = tiled(predictor)
    if predictor.backend == "torch" and predictor.source.endswith(".pt"):
        st.sidebar.caption(f"Faster on a CPU: `toolkit export {predictor.source}` writes an ONNX file beside it, "
                           "which this page then runs on onnxruntime.")
    instances = predictor.task_name == "instance"
    if instances:
        conf = st.sidebar.slider("Confidence threshold", INSTANCE_FLOOR, 1.0, float(predictor.task.cfg.model.conf),
                                 0.01, key="instance-conf")
    else:
        conf = st.sidebar.slider("Confidence threshold", 0.0, 1.0, 0.25, 0.01, key="conf")
    iou = st.sidebar.slider("NMS IoU threshold", 0.1, 0.95, 0.5, 0.05, key="iou")
    tta = "none" if instances else st.sidebar.selectbox("Test-time views", list(TTA_VIEWS), format_func=TTA_VIEWS.get,
                                                         key="tta")
    classes = st.sidebar.multiselect("Show classes (none = all)", predictor.classes, key=f"classes-{predictor.source}")
    images = pick_images()
    if not images:
        st.info("Upload one or more images, or pick the sample.")
        return
    names = {key: name for key, name, *_ in images}
    size = predictor.task.cfg.data.img_size  # changes with the tile choice
    with st.spinner("Detecting ..."):
        found = {key: common.memo(("detect", predictor.source, size, key, iou, tta),
                                  lambda name=name, image=image, um=um: detect(predictor, name, image, iou, tta, um),
                                  KEEP)
                 for key, name, image, um in images}
    shown = {key: support.filter_result(result, conf, classes) for key, (result, _) in found.items()}
    if len(shown) > 1:
        st.dataframe([{"image": names[k], "objects" if instances else "detections": support.count(r),
                       **support.class_counts(r)} for k, r in shown.items()], hide_index=True)
    pick = st.selectbox("Image", range(len(images)), format_func=lambda i: images[i][1], key="image") \
        if len(images) > 1 else 0
    key = images[pick][0]
    engine = "onnxruntime" if predictor.backend == "onnx" else "PyTorch"
    (show_instances if instances else show)((predictor.source, size, key, iou, tta, conf, tuple(classes)), names[key],
                                            shown[key], found[key][1], engine)
    if not instances:
        explain((predictor.source, size, key, iou, conf), predictor, names[key], images[pick][2], conf, iou)


main()
