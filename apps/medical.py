"""Medical scan viewer: DICOM file(s), a zip of a series or a NIfTI volume (uploaded or bundled); axial, coronal
and sagittal slices with window presets, values in HU for CT, the header with identifying tags hidden, and
tumour segmentation (TC/WT/ET overlay, volumes in mL, NIfTI and DICOM SEG downloads; a cross-validation run's
folds segment as an ensemble, with their disagreement as an uncertainty overlay) with "Explain": a region's heatmap
over the slices. Uploads stay in memory.

Run: ``toolkit app medical`` or ``streamlit run apps/medical.py``."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import common
import pandas as pd
import streamlit as st
import support

from toolkit.medical import WINDOW_PRESETS, auto_window, uploads
from toolkit.viz import heatmap
from toolkit.viz import slices as vs

HOW_TO = ("Make the demo tumour model with `make apps` (about 10 min on CPU), or train one with "
          "`toolkit train segment3d` (built-in brain-lesions data) and reload this page.")
AUTO, FULL = "auto (1st-99th percentile)", "full range"
REGIONS, UNCERTAINTY = "tumour regions", "uncertainty (disagreement of the folds)"


def pick_files() -> tuple[tuple, list[tuple[str, bytes]]]:
    """(key, [(name, bytes)]) of the upload or the chosen sample."""
    if st.radio("Scan", ["Upload", "Sample"], horizontal=True, key="scan-source") == "Sample":
        name = st.selectbox("Sample", list(support.MEDICAL_SAMPLES), key="sample")
        with common.shown_errors(), st.spinner("Preparing the sample ..."):
            return ("sample", name), common.memo(("sample", name),
                                                 lambda: support.read_files(support.MEDICAL_SAMPLES[name]()))
        return ("sample", name), []
    files = st.file_uploader("DICOM file(s), a .zip of one study, or a .nii / .nii.gz volume",
                             accept_multiple_files=True, key="scan")
    return ("upload", *(f.file_id for f in files or [])), [(f.name, f.getvalue()) for f in files or []]


def pick_series(key: tuple, files: list, channels: int) -> list[uploads.SeriesInfo]:
    """All series of a DICOM upload ([] for NIfTI); with several, the user picks one, or one per model channel."""
    series = common.memo(("series", key), lambda: uploads.upload_series(files))
    if len(series) <= 1:
        return series
    first = series[0]
    same = [s for s in series if (s.slices, s.rows, s.cols) == (first.slices, first.rows, first.cols)]
    default = same if 1 < channels == len(same) else [first]
    st.info(f"{len(series)} series found. Pick the one to view, or several of one grid to stack as channels "
            f"(in the model's channel order; the tumour model takes {channels}).")
    return st.multiselect("Series", series, default=default, format_func=lambda s: s.label, key=f"series-{key}")


def facts(scan: uploads.Scan) -> None:
    volume = scan.volume
    channels = f" x {len(scan.channels)} channels" if len(scan.channels) > 1 else ""
    st.table([{"property": k, "value": v} for k, v in {
        "modality": volume.meta.get("modality", "?"),
        "size (voxels)": " x ".join(map(str, volume.shape)) + channels,
        "spacing (mm)": " x ".join(f"{s:.3g}" for s in volume.spacing),
        "orientation": f"{vs.orientation(volume.affine)} (voxel axes); shown radiologically: patient right on the left",
        "values": "HU (Hounsfield units)" if scan.unit == "HU" else "scanner intensities (no physical unit)",
    }.items()])


def window_controls(key: str, array: Any, unit: str) -> tuple[float, float]:
    """Preset select + centre/width sliders (the preset sets the sliders); returns (centre, width)."""
    lo, hi = float(array.min()), float(array.max())
    span = max(hi - lo, 1e-3)
    presets = {AUTO: auto_window(array), FULL: ((lo + hi) / 2, span)} | (WINDOW_PRESETS if unit == "HU" else {})
    sliders = (f"centre-{key}", f"width-{key}")

    def set_sliders(centre: float, width: float) -> None:
        values = (min(max(float(centre), lo), hi), min(max(float(width), span / 1000), span))
        st.session_state.update(zip(sliders, values))

    if sliders[0] not in st.session_state:
        set_sliders(*presets[AUTO])
    st.selectbox("Window preset", list(presets), key=f"preset-{key}",
                 on_change=lambda: set_sliders(*presets[st.session_state[f"preset-{key}"]]))
    step = 1.0 if span > 100 else span / 1000
    label = f" ({unit})" if unit else ""
    centre = st.slider(f"Window centre{label}", lo, hi, step=step, key=sliders[0])
    width = st.slider(f"Window width{label}", span / 1000, span, step=step, key=sliders[1])
    return centre, width


def probe(ras: Any, array: Any, plane: str, index: int, shape: tuple[int, int], unit: str, key: str) -> tuple:
    """Row/column sliders on the shown slice; the value there (HU for CT) and its position in mm."""
    left, right = st.columns(2)
    row = left.slider("Probe row", 0, shape[0] - 1, shape[0] // 2, key=f"row-{plane}-{key}")
    col = right.slider("Probe column", 0, shape[1] - 1, shape[1] // 2, key=f"col-{plane}-{key}")
    voxel = vs.voxel_at(array.shape, plane, index, row, col)
    x, y, z = (ras.affine @ [*voxel, 1.0])[:3]
    value = float(array[voxel])
    text = f"{value:.0f} HU" if unit == "HU" else f"{value:.4g}"
    st.metric("Value at the crosshair", text)
    st.caption(f"position R {x:.1f}, A {y:.1f}, S {z:.1f} mm (scanner RAS)")
    return row, col


def viewer(key: tuple, scan: uploads.Scan, overlay: Any) -> None:
    ras = common.memo(("ras", key), lambda: vs.to_ras(scan.volume))
    left, right = st.columns([3, 2])
    with right:
        plane = st.radio("Plane", vs.planes_for(ras.shape), horizontal=True, key=f"plane-{key}")
        n = ras.shape[vs.AXIS[plane]]
        st.session_state.setdefault(f"slice-{plane}-{key}", n // 2)
        index = st.slider("Slice", 0, n - 1, key=f"slice-{plane}-{key}") if n > 1 else 0
        channel = st.selectbox("Channel", range(len(scan.channels)), format_func=scan.channels.__getitem__,
                               key=f"channel-{key}") if len(scan.channels) > 1 else 0
        array = ras.array[..., channel] if ras.array.ndim == 4 else ras.array
        window = window_controls(f"{key}-{channel}", array, scan.unit)
        opacity = st.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key="opacity") if overlay is not None else 0.0
        image = vs.cut(array, plane, index)
        marker = probe(ras, array, plane, index, image.shape, scan.unit, str(key))
    cut = vs.cut(overlay, plane, index) if overlay is not None else None
    heat = cut is not None and cut.dtype.kind == "f"  # an uncertainty map, else BraTS labels
    rgb = vs.render(image, window, None if heat else cut, opacity, vs.pixel_mm(ras.affine, plane), marker=marker,
                    heat=cut / 0.5 if heat else None)
    legend = ("; overlay: uncertainty, the folds' probability spread (bright = 0.5, they disagree most)" if heat
              else "; overlay: TC gold, WT blue, ET red" if overlay is not None else "")
    left.image(rgb, caption=f"{plane} slice {index + 1} of {n}, window {window[0]:.4g} / {window[1]:.4g}{legend}",
               width="stretch")


def jump_to_tumour(key: tuple, mask_ras: Any) -> None:
    """Move each plane's slice slider to the slice with the most whole tumour."""
    if not (mask_ras > 0).any():
        return
    for plane, axis in vs.AXIS.items():
        area = (mask_ras > 0).sum(axis=tuple(a for a in range(3) if a != axis))
        st.session_state[f"slice-{plane}-{key}"] = int(area.argmax())


def segmentation(key: tuple, scan: uploads.Scan, predictor: Any, name: str) -> Any | None:
    """The "Segment tumour" button, progress, volumes and downloads; returns the mask in RAS order or None."""
    st.subheader("Tumour segmentation")
    if predictor is None:
        st.info(HOW_TO)
        return None
    done = ("segmentation", key, predictor.source)
    if st.button("Segment tumour", type="primary", key="segment"):
        bar = st.progress(0.0, text="Segmenting ...")
        with common.shown_errors():
            start = time.perf_counter()
            result = predictor.predict_volume(scan.volume, name,
                                              lambda f: bar.progress(f, text=f"Sliding window {f:.0%}"))
            st.session_state["segmentation"] = (done, result, time.perf_counter() - start)
            jump_to_tumour(key, vs.mask_to_ras(result.mask, scan.volume.affine))
        if st.session_state.get("segmentation", (None,))[0] != done:
            bar.empty()
    saved = st.session_state.get("segmentation")
    if not saved or saved[0] != done:
        return None
    _, result, seconds = saved
    engine = "onnxruntime" if predictor.backend == "onnx" else "PyTorch"
    st.caption(f"Segmented in {seconds:.1f} s by {predictor.source} ({engine})")
    st.table(pd.DataFrame(support.region_volumes(result)).style.format({"volume (mL)": "{:.2f}"}))
    stem = re.sub(r"(\.nii\.gz|\.nii|\.zip|\.dcm)$", "", Path(name).name) + "_mask"
    files = common.memo(("masks", *done), lambda: uploads.mask_downloads(result.mask, scan, stem))
    for file_name, data in files.items():
        kind = "DICOM SEG" if file_name.endswith(".dcm") else "NIfTI"
        st.download_button(f"Mask ({kind})", data, file_name, "application/octet-stream", on_click="ignore")
    if result.uncertainty is not None and st.radio("Overlay", [REGIONS, UNCERTAINTY], horizontal=True,
                                                   key="overlay") == UNCERTAINTY:
        return common.memo(("uncertainty-ras", *done),
                           lambda: vs.mask_to_ras(result.uncertainty, scan.volume.affine).astype("float32"))
    return common.memo(("mask-ras", *done), lambda: vs.mask_to_ras(result.mask, scan.volume.affine))


def explanation(key: tuple, scan: uploads.Scan, predictor: Any, name: str) -> None:
    """"Explain" after "Segment tumour": the Grad-CAM heatmap of a chosen region, drawn on the axial, coronal and
    sagittal slices through its peak."""
    done = ("segmentation", key, getattr(predictor, "source", None))
    if st.session_state.get("segmentation", (None,))[0] != done:
        return
    st.subheader("Explain")
    region = st.radio("Heatmap of region", ["WT", "TC", "ET"], horizontal=True, key="explain-region")
    if st.button("Explain region", key="explain"):
        with common.shown_errors(), st.spinner("Explaining: one more pass over the sliding windows ..."):
            (found,) = predictor.explainable().explain({"volume": scan.volume, "source": name}, target=region)
            st.session_state["explanation"] = ((*done, region), found)
    saved = st.session_state.get("explanation")
    if saved and saved[0] == (*done, region):
        found = saved[1]
        title = f"{found.method} @ {found.layer}: {region} (score {found.scores[region] or 0:.2f})"
        st.image(common.memo(("explained", *done, region), lambda: support.figure_png(
            lambda out: heatmap.plot_planes(found.planes(region), out, title))),
            caption=f"{title}; slices through the map's peak; {found.seconds:.1f} s", width="stretch")


def header_panel(scan: uploads.Scan) -> None:
    if not scan.header:
        return
    with st.expander("DICOM header (first slice)"):
        show = st.checkbox("Show identifying tags (names, IDs, birth date, institution)", False, key="identifying")
        rows = (scan.full_header if show else scan.header).items()
        st.dataframe(pd.DataFrame(rows, columns=["tag", "value"]), hide_index=True)


def main() -> None:
    common.setup("Medical scan viewer", "DICOM / NIfTI slices, windows, header, and tumour segmentation. "
                                        "Uploads stay in memory; nothing identifying is written or logged.")
    predictor = common.pick_model("segment3d", HOW_TO)
    key, files = pick_files()
    if not files:
        st.info("Upload a scan or pick a sample.")
        return
    with common.shown_errors():
        channels = predictor.input_channels if predictor else 1
        series = pick_series(key, files, channels)
        key = (*key, *(s.uid for s in series))
        scan = common.memo(("scan", key), lambda: uploads.load_upload(files, series))
        for warning in scan.warnings:
            st.warning(warning)
        facts(scan)
        view, below = st.container(), st.container()
        name = Path(files[0][0]).name if len(files) == 1 else "series"
        with below:
            overlay = segmentation(key, scan, predictor, name)
            explanation(key, scan, predictor, name)
            header_panel(scan)
        with view:
            viewer(key, scan, overlay)


main()
