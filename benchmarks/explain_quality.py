"""Explanation quality and cost on the built-in demo models: are the heatmaps faithful, not decorative?

1. Sanity check (Adebayo et al. 2018, model-parameter randomisation), per task: the maps of the trained model and
   of the same network re-initialised (``toolkit.explain.quality.randomised``) over 20 inputs; pass: mean Spearman
   rank correlation < 0.3. classify: Grad-CAM of the predicted class on Fashion-MNIST test images; detect: the
   pixel-wise maximum of the HiResCAM maps of each network's own 10 best boxes (a random detector finds other
   boxes), and EigenCAM of the feature pyramid, on nuclei tiles; segment: Grad-CAM of the nucleus region on nuclei
   tiles; segment3d: Grad-CAM of WT on brain-lesions cases (the 16 val cases, then train cases).
2. Pointing game: nuclei detector, box-score Grad-CAM of each true-positive detection (score >= 0.25, IoU >= 0.5
   with a labelled nucleus) on the val tiles, pass: the map's peak inside the detection's box for >= 90%;
   brain-lesions, WT Grad-CAM of each val case, pass: peak inside the true WT mask dilated by 5 mm for >= 90%.
3. Deletion (ROAD's noisy linear imputation, ``pytorch_grad_cam.metrics.road``) on Fashion-MNIST test images: pass:
   removing the 20% of pixels the Grad-CAM of the predicted class ranks highest lowers its probability more than
   removing a random 20%, for >= 80% of images.
4. Cost, beside the plain prediction: a Fashion-MNIST image (< 0.5 s), all detections of a nuclei tile (< 3 s),
   a brain-lesions volume, all three regions (<= 2x its sliding-window prediction).

    python benchmarks/explain_quality.py --classify runs/classify/exp/weights/best.pt \\
        --detect runs/detect/exp/weights/best.pt --segment runs/segment/exp/weights/best.pt \\
        --segment3d runs/segment3d/exp/weights/best.pt [--deletion 500] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np
import torch
from torchvision.ops import box_iou

sys.path.insert(0, str(Path(__file__).parent))
from common import load_average, write  # noqa: E402

from toolkit.data import builtin  # noqa: E402
from toolkit.data.arrays import load_arrays  # noqa: E402
from toolkit.explain import explainer  # noqa: E402
from toolkit.explain.quality import (  # noqa: E402
    deletion_drops,
    dilated,
    peak_inside,
    randomised,
    rank_correlation,
)
from toolkit.medical import read_nifti  # noqa: E402
from toolkit.medical.volume import spacing_of  # noqa: E402
from toolkit.predict import Predictor  # noqa: E402

N = 20


def timed(make: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = make()
    return out, time.perf_counter() - start


def sanity(predictor: Predictor, samples: list[dict[str, Any]], method: str, pick: Callable[[Any], np.ndarray],
           targets: list[Any], **options: Any) -> tuple[float, list[Any]]:
    """(mean Spearman correlation of trained vs re-initialised maps of each sample's target, the trained model's
    explanations)."""
    trained = explainer(predictor.task, predictor.model, predictor.classes, method)
    random = explainer(predictor.task, randomised(predictor.model), predictor.classes, method)
    found, scores = [], []
    for sample, target in zip(samples, targets):
        ours = trained(sample, target, **options)
        theirs = random(sample, target, **options)
        scores.append(rank_correlation(pick(ours), pick(theirs)))
        found.append(ours)
    return float(np.mean(scores)), found


def classify_rows(path: str, n_deletion: int) -> list[dict[str, Any]]:
    predictor = Predictor.from_checkpoint(path, "cpu", backend="torch")
    arrays = load_arrays(builtin.prepare("fashion-mnist"))
    images = arrays["x_test"]
    samples = [{"image": images[i][:, :, None].astype(np.float32) / 255, "source": f"test {i}"} for i in range(N)]
    predicted = [r.top[0][0] for r in predictor.predict([s["image"] for s in samples])]  # the same class for both
    rho, _ = sanity(predictor, samples, "gradcam", lambda r: next(iter(r.heatmaps.values())), predicted)
    rows = [{"task": "classify", "measure": "sanity: Spearman trained vs random (Grad-CAM)", "value": rho,
             "pass": rho < 0.3, "inputs": N}]
    explain = explainer(predictor.task, predictor.model, predictor.classes, "gradcam")
    better, n = 0, 0
    for start in range(0, n_deletion, 50):
        batch = [{"image": images[i][:, :, None].astype(np.float32) / 255} for i in range(start, start + 50)]
        results = [explain(s) for s in batch]
        x = torch.cat([explain.input_tensor(s["image"]) for s in batch])
        labels = [predictor.classes.index(next(iter(r.heatmaps))) for r in results]
        maps = np.stack([next(iter(r.heatmaps.values())) for r in results])
        guided, rand = deletion_drops(predictor.model, x, maps, labels, 0.2, seed=start)
        better += int((guided > rand).sum())
        n += len(batch)
    rows.append({"task": "classify", "measure": "deletion: top-20% removal hurts more than random-20%",
                 "value": better / n, "pass": better / n >= 0.8, "inputs": n})
    image = images[0]
    predictor.explain(image)  # warm-up
    explain_s = np.median([timed(lambda: predictor.explain(images[i]))[1] for i in range(1, 11)])
    predict_s = np.median([timed(lambda: predictor.predict(images[i]))[1] for i in range(1, 11)])
    rows.append({"task": "classify", "measure": "cost: s per image (explain | predict)", "value": float(explain_s),
                 "predict_s": float(predict_s), "pass": explain_s < 0.5, "inputs": 10})
    return rows


def all_boxes(result: Any) -> np.ndarray:
    """One map per image from a detector's per-box maps: their pixel-wise maximum (zeros without boxes)."""
    maps = list(result.heatmaps.values())
    return np.max(maps, axis=0) if maps else np.zeros(result.image.shape[:2], np.float32)


def detect_rows(path: str) -> list[dict[str, Any]]:
    predictor = Predictor.from_checkpoint(path, "cpu", backend="torch")
    root = builtin.prepare("nuclei") / "coco"
    tiles = sorted((root / "val" / "images").glob("*.png")) + sorted((root / "train" / "images").glob("*.png"))
    samples = [predictor.task.read_input(p) for p in tiles[:N]]
    rho, _ = sanity(predictor, samples, "hirescam", all_boxes, [None] * N, conf=0.0, top_k=10)
    rows = [{"task": "detect", "measure": "sanity: Spearman trained vs random (HiResCAM, 10 best boxes' maxima)",
             "value": rho, "pass": rho < 0.3, "inputs": N}]
    rho, _ = sanity(predictor, samples, "eigencam", lambda r: r.heatmaps["all detections"], [None] * N, conf=0.25)
    rows.append({"task": "detect", "measure": "sanity: Spearman trained vs random (EigenCAM)", "value": rho,
                 "pass": rho < 0.3, "inputs": N})
    truth = json.loads((root / "val" / "annotations.json").read_text())
    names = {im["id"]: im["file_name"] for im in truth["images"]}
    boxes: dict[str, list[list[float]]] = {}
    for a in truth["annotations"]:
        if not a.get("iscrowd"):
            x, y, w, h = a["bbox"]
            boxes.setdefault(Path(names[a["image_id"]]).name, []).append([x, y, x + w, y + h])
    hits, total, explain_s, predict_s = 0, 0, [], []
    predictor.explain(tiles[0], top_k=100)  # warm-up
    for path_ in tiles[:4]:
        (result,), seconds = timed(lambda: predictor.explain(path_, top_k=100))
        explain_s.append(seconds)
        predict_s.append(timed(lambda: predictor.predict(path_, tta="none"))[1])
        gt = torch.tensor(boxes.get(path_.name, []), dtype=torch.float32).reshape(-1, 4)
        for name, heatmap in result.heatmaps.items():
            box = torch.tensor([result.boxes[name]])
            if len(gt) and float(box_iou(box, gt).max()) >= 0.5:
                total += 1
                hits += peak_inside(heatmap, result.boxes[name])
    rows.append({"task": "detect", "measure": "pointing game: peak in box, TP detections on val tiles",
                 "value": hits / max(total, 1), "pass": hits / max(total, 1) >= 0.9, "inputs": total})
    rows.append({"task": "detect", "measure": "cost: s per val tile, all detections (explain | predict, 1 view)",
                 "value": float(np.mean(explain_s)), "predict_s": float(np.mean(predict_s)),
                 "pass": float(np.mean(explain_s)) < 3.0, "inputs": len(explain_s)})
    return rows


def segment_rows(path: str) -> list[dict[str, Any]]:
    predictor = Predictor.from_checkpoint(path, "cpu", backend="torch")
    root = builtin.prepare("nuclei") / "masks"
    tiles = sorted((root / "val" / "images").glob("*.png")) + sorted((root / "train" / "images").glob("*.png"))
    samples = [predictor.task.read_input(p) for p in tiles[:N]]
    target = predictor.classes[-1]
    rho, _ = sanity(predictor, samples, "gradcam", lambda r: r.heatmaps[target], [target] * N)
    return [{"task": "segment", "measure": f"sanity: Spearman trained vs random (Grad-CAM, {target})", "value": rho,
             "pass": rho < 0.3, "inputs": N}]


def segment3d_rows(path: str) -> list[dict[str, Any]]:
    predictor = Predictor.from_checkpoint(path, "cpu", backend="torch")
    root = builtin.prepare("brain-lesions")
    meta = json.loads((root / "dataset.json").read_text())
    cases = meta["validation"] + meta["training"]
    samples = [predictor.task.read_input(root / c["image"]) for c in cases[:N]]
    rho, found = sanity(predictor, samples, "hirescam", lambda r: r.heatmaps["WT"], ["WT"] * N)
    rows = [{"task": "segment3d", "measure": "sanity: Spearman trained vs random (HiResCAM, WT)", "value": rho,
             "pass": rho < 0.3, "inputs": N}]
    hits = 0
    for case, result in zip(meta["validation"], found):
        label = read_nifti(root / case["label"])
        hits += peak_inside(result.heatmaps["WT"], dilated(label.array > 0, spacing_of(label.affine), 5.0))
    n_val = len(meta["validation"])
    rows.append({"task": "segment3d", "measure": "pointing game: WT peak within WT dilated 5 mm, val cases",
                 "value": hits / n_val, "pass": hits / n_val >= 0.9, "inputs": n_val})
    explain_s, predict_s = [], []
    predictor.explain(samples[0], target="WT")  # finds its layers once per model (a forward pass of one window)
    for sample in samples[1:4]:
        predict_s.append(timed(lambda: predictor.task.predict(predictor.model, [sample], progress=False))[1])
        explain_s.append(timed(lambda: predictor.explain(sample))[1])
    ratio = float(np.mean(explain_s) / np.mean(predict_s))
    rows.append({"task": "segment3d", "measure": "cost: s per volume, TC+WT+ET (explain | predict)",
                 "value": float(np.mean(explain_s)), "predict_s": float(np.mean(predict_s)), "ratio": ratio,
                 "pass": ratio <= 2.0, "inputs": len(explain_s)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classify", default="runs/classify/exp/weights/best.pt")
    parser.add_argument("--detect", default="runs/detect/exp/weights/best.pt")
    parser.add_argument("--segment", default="runs/segment/exp/weights/best.pt")
    parser.add_argument("--segment3d", default="runs/segment3d/exp/weights/best.pt")
    parser.add_argument("--deletion", type=int, default=500, help="Fashion-MNIST test images for the deletion test")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = load_average()
    rows = []
    for task, make in (("classify", lambda: classify_rows(args.classify, args.deletion)),
                       ("detect", lambda: detect_rows(args.detect)), ("segment", lambda: segment_rows(args.segment)),
                       ("segment3d", lambda: segment3d_rows(args.segment3d))):
        task_rows, seconds = timed(make)
        rows += task_rows
        print(f"{task}: {seconds:.0f} s", flush=True)
    notes = (f"Models: {args.classify}, {args.detect}, {args.segment}, {args.segment3d}. Load average at the start "
             f"{load} on {os.cpu_count()} cores, torch threads {args.threads}: times are wall seconds on a shared "
             "machine.")
    write("explain_quality", [{k: v.item() if isinstance(v, np.generic) else v for k, v in r.items()} for r in rows],
          notes)


if __name__ == "__main__":
    main()
