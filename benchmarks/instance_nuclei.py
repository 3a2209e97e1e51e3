"""Instance segmentation of the nuclei val tiles: the classical baseline (Otsu threshold + distance-transform
watershed, scikit-image) beside a trained instance model (``--checkpoint``, through the task's predict), scored the
same way by ``InstanceMetrics``: matching accuracy / F1 / precision / recall at IoU 0.5 .. 0.9 (StarDist's
measures), panoptic quality, COCO mask mAP and the nucleus count.

The baseline's two settings (Gaussian smoothing, the watershed seeds' minimum distance) are chosen by accuracy at
IoU 0.5 on the train tiles, never on val. Its objects all score 1 (it has no ranking), so its mAP is that of one
operating point. Writes runs/bench/instance_nuclei.{json,md}.

    python benchmarks/instance_nuclei.py [--checkpoint runs/instance/exp/weights/best.pt] [--conf 0.5]
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import ndimage
from skimage import feature, filters, morphology, segmentation

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402

from toolkit.data.formats.instance_record import InstanceData  # noqa: E402
from toolkit.data.image_io import read_image  # noqa: E402
from toolkit.data.nuclei import nuclei_instances  # noqa: E402
from toolkit.tasks.instance_metrics import InstanceMetrics  # noqa: E402

SIGMAS = (0.0, 1.0, 2.0)  # Gaussian smoothing before the threshold, pixels
MIN_DISTANCES = (3, 4, 5, 6, 8)  # watershed seeds: local maxima of the distance map at least this far apart, pixels
MIN_AREA = 10  # foreground specks below this many pixels are dropped


def otsu_watershed(gray: np.ndarray, sigma: float, min_distance: int) -> np.ndarray:
    """(H, W) float image -> (H, W) int label image: Otsu foreground, holes filled, split by a watershed of the
    distance transform seeded at its local maxima."""
    smooth = filters.gaussian(gray, sigma) if sigma else gray
    foreground = ndimage.binary_fill_holes(smooth > filters.threshold_otsu(smooth))
    foreground = morphology.remove_small_objects(foreground, MIN_AREA)
    distance = ndimage.distance_transform_edt(foreground)
    peaks = feature.peak_local_max(distance, min_distance=min_distance, labels=ndimage.label(foreground)[0],
                                   exclude_border=False)
    markers = np.zeros(gray.shape, np.int64)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return segmentation.watershed(-distance, markers, mask=foreground)


def score(data: InstanceData, predict: Callable[[np.ndarray], dict[str, np.ndarray]], conf: float
          ) -> dict[str, float]:
    """``InstanceMetrics`` of ``predict(image (H, W, 3) float) -> {"masks", "scores", "labels"}`` on every tile."""
    metrics = InstanceMetrics(len(data.classes), conf=conf)
    for rec in data.records:
        pred = predict(read_image(rec.path, 3))
        metrics.update([pred], [{"masks": rec.masks(), "labels": rec.labels, "iscrowd": rec.crowd}], [rec.path.name])
    return metrics.compute()


def from_label_image(labels: np.ndarray, scores: np.ndarray | None = None,
                     classes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """A label image (1..N) -> the metrics' prediction dict (scores 1 and class 0 unless given)."""
    ids = np.arange(1, int(labels.max(initial=0)) + 1)
    masks = labels[None] == ids[:, None, None]
    return {"masks": masks, "scores": np.ones(len(ids), np.float32) if scores is None else scores,
            "labels": np.zeros(len(ids), np.int64) if classes is None else classes}


def baseline(splits: dict[str, InstanceData], conf: float) -> dict[str, Any]:
    def run(sigma: float, distance: int, split: str) -> dict[str, float]:
        return score(splits[split], lambda im: from_label_image(otsu_watershed(im.mean(axis=2), sigma, distance)), conf)

    sigma, distance = max(itertools.product(SIGMAS, MIN_DISTANCES), key=lambda p: run(*p, "train")["acc50"])
    start = time.perf_counter()
    metrics = run(sigma, distance, "val")
    return {"method": f"Otsu + watershed (sigma {sigma:g}, min_distance {distance})",
            "seconds": time.perf_counter() - start, **metrics}


def model(checkpoint: Path, splits: dict[str, InstanceData], conf: float) -> dict[str, Any]:
    """The checkpoint through the task's predict (all objects down to score 0.05, for mAP; matching at ``conf``)."""
    from toolkit.predict import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, "cpu")

    def predict(image: np.ndarray) -> dict[str, np.ndarray]:
        (result,) = predictor.predict(image, conf=0.05)
        return from_label_image(result.label_image.astype(np.int64), result.scores, result.labels)

    start = time.perf_counter()
    metrics = score(splits["val"], predict, conf)
    return {"method": f"{predictor.task_name} model {checkpoint}", "seconds": time.perf_counter() - start, **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="an instance model to score beside the baseline")
    parser.add_argument("--conf", type=float, default=0.5, help="score threshold of the matching scores and counts")
    args = parser.parse_args()
    splits = nuclei_instances()
    rows = [baseline(splits, args.conf)]
    if args.checkpoint:
        rows.append(model(args.checkpoint, splits, args.conf))
    rows = [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in rows]
    val = splits["val"]
    write("instance_nuclei", rows, notes=f"nuclei val: {val.describe()} (128-px tiles; nuclei cut to < 30% of their "
                                         f"area are ignore regions); matching scores at score >= {args.conf}")


if __name__ == "__main__":
    main()
