"""Object detection demo: a trained run (or torchvision's COCO detector) on uploaded images or the bundled nuclei
image, with confidence / IoU sliders, a class filter, the annotated image, a table, counts and downloads.

Run: ``toolkit app detection`` or ``streamlit run apps/detection.py``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import common
import pandas as pd
import streamlit as st
import support

HOW_TO = ("Make the demo model with `make apps` (about 10 min on CPU), or train one with `toolkit train detect` "
          "(built-in nuclei data) and reload this page; or give a checkpoint path.")
SAMPLE = "Sample: nuclei (512 x 512 fluorescence microscopy)"
TTA_VIEWS = {"none": "1 (fastest)", "hflip": "2: + mirror", "d4": "8: every flip and 90° turn (8x slower)"}
KEEP = 64  # decoded images and their detections kept per session (more uploads are recomputed on each change)


def pick_images() -> list[tuple[str, str, Any]]:
    """(key, name, float image (H, W, 3)) of the uploads or the sample; unreadable files are reported, skipped."""
    if st.radio("Images", ["Upload", SAMPLE], horizontal=True, key="image-source") == SAMPLE:
        with common.shown_errors():
            name, data = common.memo(("sample",), support.nuclei_sample)
            return [("sample", name, common.memo(("image", "sample"), lambda: support.decode_image(name, data), KEEP))]
        return []
    files = st.file_uploader(f"Images: PNG, JPEG, TIFF, BMP or WebP up to {support.MAX_PIXELS // 10 ** 6} megapixels; "
                             "gray and RGBA are converted", accept_multiple_files=True, key="images")
    images = []
    for f in files or []:
        with common.shown_errors():
            image = common.memo(("image", f.file_id), lambda f=f: support.decode_image(f.name, f.getvalue()), KEEP)
            images.append((f.file_id, f.name, image))
    return images


def detect(predictor: Any, name: str, image: Any, iou: float, tta: str) -> tuple[Any, float]:
    """All detections (score >= the model's floor) after NMS at ``iou``, with test-time views ``tta``, and the
    seconds it took. The confidence slider filters these afterwards: greedy NMS keeps the same boxes whichever
    threshold is applied first."""
    start = time.perf_counter()
    (result,) = predictor.predict(image, conf=0.0, iou=iou, tta=tta)
    result.source = name
    return result, time.perf_counter() - start


def show(key: tuple, name: str, result: Any, seconds: float) -> None:
    counts = support.class_counts(result)
    left, right = st.columns([3, 2])
    png = common.memo(("png", *key), lambda: support.annotated_png(result))
    left.image(png, caption=f"{name}: {len(result.boxes)} detection(s); inference {seconds:.2f} s", width="stretch")
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


def main() -> None:
    common.setup("Object detection", "Boxes from a trained detection run on your images. Uploads stay in memory.")
    predictor = common.pick_model("detect", HOW_TO, coco=True)
    if predictor is None:
        st.info("Choose a model in the sidebar. " + HOW_TO)
        return
    st.sidebar.header("Detections")
    conf = st.sidebar.slider("Confidence threshold", 0.0, 1.0, 0.25, 0.01, key="conf")
    iou = st.sidebar.slider("NMS IoU threshold", 0.1, 0.95, 0.5, 0.05, key="iou")
    tta = st.sidebar.selectbox("Test-time views", list(TTA_VIEWS), format_func=TTA_VIEWS.get, key="tta")
    classes = st.sidebar.multiselect("Show classes (none = all)", predictor.classes, key=f"classes-{predictor.source}")
    images = pick_images()
    if not images:
        st.info("Upload one or more images, or pick the sample.")
        return
    names = {key: name for key, name, _ in images}
    with st.spinner("Detecting ..."):
        found = {key: common.memo(("detect", predictor.source, key, iou, tta),
                                  lambda name=name, image=image: detect(predictor, name, image, iou, tta), KEEP)
                 for key, name, image in images}
    shown = {key: support.filter_result(result, conf, classes) for key, (result, _) in found.items()}
    if len(shown) > 1:
        st.dataframe([{"image": names[k], "detections": len(r.boxes), **support.class_counts(r)}
                      for k, r in shown.items()], hide_index=True)
    pick = st.selectbox("Image", range(len(images)), format_func=lambda i: images[i][1], key="image") \
        if len(images) > 1 else 0
    key = images[pick][0]
    show((predictor.source, key, iou, tta, conf, tuple(classes)), names[key], shown[key], found[key][1])


main()
