"""Image classification demo: a trained run on an uploaded image or a Fashion-MNIST / digits sample; the top-k
classes with their scores, a heatmap per chosen class (what drove it), the feature maps of a chosen layer, the
first layer's filters and, for the small CNN, what every layer did to the image.

Run: ``toolkit app classify`` or ``streamlit run apps/classify.py``."""
from __future__ import annotations

from typing import Any

import common
import streamlit as st
import support

from toolkit import sample_input
from toolkit.viz import features, heatmap

HOW_TO = ("Train a classifier with `toolkit train classify` (Fashion-MNIST, about 10 min on CPU) or "
          "`toolkit train classify data=digits` (a minute) and reload this page; or give a checkpoint path.")
SAMPLES = ("fashion-mnist", "digits")
AUTO = "auto: the deepest stage with a map of 2 x 2 or more"


def pick_image(predictor: Any) -> tuple[str, str, Any] | None:
    """(key, name, float image (H, W, C) with the model's channels) of the upload or the chosen sample."""
    if st.radio("Image", ["Sample", "Upload"], horizontal=True, key="image-source") == "Sample":
        own = predictor.task.cfg.data.source
        dataset = st.selectbox("Samples of", SAMPLES, index=SAMPLES.index(own) if own in SAMPLES else 0,
                               key="dataset")
        with common.shown_errors():
            files = common.memo(("samples", dataset), lambda: sorted(sample_input(dataset).glob("*.png")))
            path = st.selectbox("Sample", files, format_func=lambda p: p.stem.split("_", 1)[1], key="sample")
            name, data = path.name, path.read_bytes()
            return ("sample", name), name, common.memo(("image", name), lambda: _channels(
                support.decode_image(name, data), predictor.input_channels))
        return None
    upload = st.file_uploader("Image: PNG, JPEG, TIFF, BMP or WebP (gray and RGBA are converted)", key="upload")
    if upload is None:
        return None
    with common.shown_errors():
        image = common.memo(("image", upload.file_id), lambda: _channels(
            support.decode_image(upload.name, upload.getvalue()), predictor.input_channels))
        return ("upload", upload.file_id), upload.name, image
    return None


def _channels(image: Any, channels: int) -> Any:
    """An RGB float image (H, W, 3) as the model's channels: gray (the mean) for a one-channel model."""
    return image.mean(axis=2, keepdims=True) if channels == 1 else image


def heatmaps(key: tuple, predictor: Any, image: Any, top: list[tuple[str, float]], method: str, layer: str) -> None:
    st.subheader("What drove the decision")
    chosen = st.multiselect("Heatmap for class", predictor.classes, default=[top[0][0]],
                            key=f"explain-classes-{key}")  # a new image starts at its own top class
    columns = st.columns(max(1, min(3, len(chosen))))
    for i, cls in enumerate(chosen):
        with common.shown_errors():
            (found,) = common.memo(("explain", *key, method, layer, cls), lambda cls=cls: predictor.explain(
                image, method=method, target=cls, layer=None if layer == AUTO else layer))
            title = f"{method} @ {found.layer}: {cls} ({found.scores[cls]:.3f})"
            figure = common.memo(("heat-png", *key, method, layer, cls), lambda: support.figure_png(
                lambda out: heatmap.plot_heatmap(image, found.heatmaps[cls], out, title)))
            columns[i % len(columns)].image(figure, caption=title, width="stretch")


def inside(key: tuple, maps: Any) -> None:
    """Feature maps of a chosen stage, the first filters and (simple_cnn) the layer-by-layer walk."""
    stages = [name for name, _ in maps.stages]
    st.subheader("Inside the network")
    stage = st.selectbox("Feature maps of", stages, index=len(stages) - 1, key="feature-stage")
    grid = dict(maps.stages)[stage]
    left, right = st.columns(2)
    left.image(common.memo(("grid", *key, stage), lambda: support.figure_png(lambda out: features.plot_feature_grid(
        grid, out, stage))), caption=f"{stage}: the most active of {grid.shape[0]} channels", width="stretch")
    right.image(common.memo(("filters", *key), lambda: support.figure_png(lambda out: features.plot_filters(
        maps.filters, out, "first convolution"))), caption="first-layer filters", width="stretch")
    if maps.walk and st.toggle("Layer by layer: what each operation did to the image", key="walk"):
        st.image(common.memo(("walk", *key), lambda: support.figure_png(lambda out: features.plot_walk(
            maps.walk, out, maps.classes))), width="stretch")


def main() -> None:
    common.setup("Image classification", "Top classes of a trained run, what drove them, and what its layers "
                                         "compute. Uploads stay in memory.")
    predictor = common.pick_model("classify", HOW_TO)
    if predictor is None:
        st.info("Choose a model in the sidebar. " + HOW_TO)
        return
    with common.shown_errors():
        predictor = predictor.explainable()
        st.sidebar.header("Explanation")
        method = st.sidebar.selectbox("Method", predictor.explain_methods, key="method")
        top_k = st.sidebar.slider("Top classes", 1, min(10, len(predictor.classes)), min(5, len(predictor.classes)),
                                  key="top-k")
        picked = pick_image(predictor)
        if picked is None:
            st.info("Pick a sample or upload an image.")
            return
        key, name, image = picked
        key = (predictor.source, *key)
        (result,) = common.memo(("predict", *key, top_k), lambda: predictor.predict(image, top_k=top_k))
        (maps,) = common.memo(("layers", *key), lambda: predictor.explain(image, method="layers"))
        stages = [stage for stage, _ in maps.stages]
        layer = st.sidebar.selectbox("Heatmap layer", [AUTO, *stages], key="layer")
        left, right = st.columns([1, 2])
        left.image(image[..., 0] if image.shape[2] == 1 else image, clamp=True, width="stretch",
                   caption=f"{name} ({image.shape[1]} x {image.shape[0]} px)")
        right.subheader("Top classes")
        right.dataframe([{"class": c, "score": s} for c, s in result.top], hide_index=True, key="top",
                        column_config={"score": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                                format="%.3f")})
        heatmaps(key, predictor, image, result.top, method, layer)
        inside(key, maps)


main()
