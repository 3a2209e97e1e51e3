"""Explanations of one input, as the Predictor's Results: ``to_dict()`` for JSON and ``save(out_dir)`` for the
files (overlay PNGs with a colour bar, raw maps as .npy or NIfTI, a JSON naming method, layer, target, score)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from toolkit.medical import Volume
from toolkit.medical.nifti import write_nifti
from toolkit.viz import slices as vs
from toolkit.viz.features import plot_feature_grid, plot_filters, plot_walk
from toolkit.viz.heatmap import plot_heatmap, plot_planes


def slug(text: str) -> str:
    """A file-name-safe form of a class or target name ("T-shirt/top" -> "T-shirt-top")."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", str(text)).strip("-") or "target"


def stem_of(source: str) -> str:
    name = Path(str(source).rstrip("/")).name
    return (name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else Path(name).stem) or "input"


@dataclass
class Explanation:
    """Heatmaps of one 2D input: ``heatmaps[target]`` (H, W) float32 in [0, 1] on the input's own pixels, the model's
    ``scores[target]`` (class probability, mean probability over a predicted region, or a detection's score) and,
    for detections, ``boxes[target]`` (x1, y1, x2, y2 pixels). ``image``: (H, W, C) float in [0, 1]."""

    source: str
    task: str
    method: str
    layer: str
    image: np.ndarray
    heatmaps: dict[str, np.ndarray]
    scores: dict[str, float | None]
    boxes: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return _record(self, lambda t, h: {**({"box": [round(v, 2) for v in self.boxes[t]]} if t in self.boxes
                                               else {}), "peak": _peak(h)})

    def save(self, out_dir: Path) -> list[Path]:
        """Per target ``<stem>_<method>_<target>.png`` (input | overlay + colour bar) and ``.npy`` (the map);
        ``<stem>_<method>.json``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        base, paths, record = f"{stem_of(self.source)}_{slug(self.method)}", [], self.to_dict()
        for entry, (target, heatmap) in zip(record["targets"], self.heatmaps.items()):
            name = out_dir / f"{base}_{slug(target)}"
            np.save(name.with_suffix(".npy"), heatmap.astype(np.float32))
            score = self.scores.get(target)
            title = f"{self.method} @ {self.layer}: {target}" + ("" if score is None else f" (score {score:.3f})")
            plot_heatmap(self.image, heatmap, name.with_suffix(".png"), title, self.boxes.get(target))
            entry.update(heatmap=name.with_suffix(".npy").name, overlay=name.with_suffix(".png").name)
            paths += [name.with_suffix(".png"), name.with_suffix(".npy")]
        paths.append(_write_json(record, out_dir / f"{base}.json"))
        return paths


@dataclass
class VolumeExplanation:
    """Heatmaps of one scan: ``heatmaps[region]`` (X, Y, Z) float32 in [0, 1] on the scan's own grid (``reference``:
    its affine), ``scores[region]`` the mean predicted probability inside the predicted region (None where the model
    predicts none of it), ``mask`` the predicted BraTS labels (X, Y, Z)."""

    source: str
    method: str
    layer: str
    reference: Volume
    mask: np.ndarray
    heatmaps: dict[str, np.ndarray]
    scores: dict[str, float | None]
    seconds: float = 0.0
    task: str = "segment3d"

    def to_dict(self) -> dict[str, Any]:
        return _record(self, lambda r, h: {"peak_voxel": _peak(h)})

    def save(self, out_dir: Path) -> list[Path]:
        """Per region ``<stem>_<method>_<region>.nii.gz`` (float32, the scan's affine) and ``.png`` (axial, coronal
        and sagittal planes through the map's peak over the scan's last channel); ``<stem>_<method>.json``."""
        out_dir = Path(out_dir)
        base, paths, record = f"{stem_of(self.source)}_{slug(self.method)}", [], self.to_dict()
        for entry, (region, heatmap) in zip(record["targets"], self.heatmaps.items()):
            name = out_dir / f"{base}_{region}"
            nifti = write_nifti(heatmap.astype(np.float32), self.reference.affine, f"{name}.nii.gz")
            score = self.scores.get(region)
            title = f"{self.method} @ {self.layer}: {region}" + ("" if score is None else f" (score {score:.3f})")
            png = plot_planes(self.planes(region), Path(f"{name}.png"), title)
            entry.update(heatmap=nifti.name, overlay=png.name)
            paths += [png, nifti]
        paths.append(_write_json(record, out_dir / f"{base}.json"))
        return paths

    def planes(self, region: str, channel: int = -1) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(plane, grey RGB uint8 slice, heatmap slice at its size) of the axial, coronal and sagittal planes
        through the peak of ``region``'s map, radiological view, the scan's ``channel`` windowed to its 1st-99th
        percentile."""
        scan = vs.to_ras(self.reference)
        array = scan.array[..., channel] if scan.array.ndim == 4 else scan.array
        heat = vs.mask_to_ras(self.heatmaps[region], self.reference.affine)
        peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
        lo, hi = np.percentile(array, (1, 99))
        window = ((lo + hi) / 2, max(hi - lo, 1e-6))
        out = []
        for plane in vs.planes_for(array.shape):
            index = peak[vs.AXIS[plane]]
            image, heat_slice = vs.cut(array, plane, index), vs.cut(heat, plane, index)
            grey = vs.render(image, window, pixel=vs.pixel_mm(scan.affine, plane), size=320)
            out.append((f"{plane} {index}", grey, _resized(heat_slice, grey.shape[:2])))
        return out


@dataclass
class FeatureMaps:
    """What the network computed for one input: ``stages`` [(name, (C, h, w))] of the backbone, ``filters``
    (O, I, k, k) of its first convolution, and for ``simple_cnn`` a ``walk`` [(operation, output)] through every
    layer (maps (C, h, w); the dense layer's logits (K,), named by ``classes``)."""

    source: str
    task: str
    layer: str
    image: np.ndarray
    stages: list[tuple[str, np.ndarray]]
    filters: np.ndarray
    walk: list[tuple[str, np.ndarray]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    method: str = "layers"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "task": self.task, "method": self.method,
                "stages": [{"stage": n, "shape": list(m.shape)} for n, m in self.stages],
                "first_conv": {"layer": self.layer, "shape": list(self.filters.shape)},
                "walk": [{"operation": n, "shape": list(m.shape)} for n, m in self.walk]}

    def save(self, out_dir: Path) -> list[Path]:
        """``<stem>_features_<stage>.png`` per stage, ``<stem>_filters.png``, ``<stem>_walk.png`` (simple_cnn) and
        ``<stem>_layers.json``."""
        out_dir = Path(out_dir)
        stem = stem_of(self.source)
        paths = [plot_feature_grid(maps, out_dir / f"{stem}_features_{slug(name)}.png", name)
                 for name, maps in self.stages]
        paths.append(plot_filters(self.filters, out_dir / f"{stem}_filters.png", f"first convolution ({self.layer})"))
        if self.walk:
            paths.append(plot_walk(self.walk, out_dir / f"{stem}_walk.png", self.classes,
                                   title="layer by layer: what each operation did to the image"))
        paths.append(_write_json(self.to_dict(), out_dir / f"{stem}_layers.json"))
        return paths


def _record(result: Any, extra: Callable[[str, np.ndarray], dict[str, Any]]) -> dict[str, Any]:
    """The JSON record of an explanation: what was explained and how, and per target its score and ``extra``."""
    targets = [{"target": t, "score": None if result.scores.get(t) is None else round(result.scores[t], 6),
                **extra(t, h)} for t, h in result.heatmaps.items()]
    return {"source": result.source, "task": result.task, "method": result.method, "layer": result.layer,
            "seconds": round(result.seconds, 4), "targets": targets}


def _peak(heatmap: np.ndarray) -> list[int]:
    """Index of the map's maximum: (row, col) or (i, j, k)."""
    return [int(i) for i in np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)]


def _resized(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(heatmap.astype(np.float32)).resize(shape[::-1], Image.BILINEAR))


def _write_json(record: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    return path
