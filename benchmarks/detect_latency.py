"""Detection latency against accuracy, for the settings the detection app can run a nuclei model with: seconds to
detect on one 1024 x 1024 image (the bundled 512-px nuclei image tiled 2 x 2, what benchmarks/app_latency.py
uploads) and mAP on the held-out right quarter of the nuclei image (512 x 128 px, predicted through the same tiled
path), per model, backend (PyTorch eager or onnxruntime), tile size and test-time views.

Tile sizes are multiples of the run's ``data.predict_tile`` at the training scale: ``--tiles 2`` cuts 256-px tiles
and resizes them to twice ``data.img_size`` (the objects keep their trained size in pixels, 4x fewer tiles).
The onnx backend needs ``toolkit export CKPT`` first. Writes runs/bench/detect_latency.{json,md,png}.

    python benchmarks/detect_latency.py runs/detect/exp/weights/best.pt --tiles 1 2 --tta none d4
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, load_average, write  # noqa: E402

from toolkit import sample_input  # noqa: E402
from toolkit.cache import fetch_wheel  # noqa: E402
from toolkit.data import nuclei  # noqa: E402
from toolkit.engine.checkpoint import load  # noqa: E402
from toolkit.predict import Predictor  # noqa: E402

BUDGET_S = 10.0  # the app's target for one 1024 x 1024 image on 2 cores


def held_out_strip() -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """The nuclei image's val columns (512 x 128, float RGB) and their boxes, nuclei cut to < 30% as ignore regions."""
    image, mask = nuclei.read_source(fetch_wheel(nuclei.REQUIREMENT))
    labels, counts = np.unique(mask, return_counts=True)
    objects, ignore = nuclei.instance_boxes(mask[:, nuclei.VAL_FROM_COLUMN:], dict(zip(labels.tolist(),
                                                                                     counts.tolist())))
    strip = np.repeat(image[:, nuclei.VAL_FROM_COLUMN:, None].astype(np.float32) / 255, 3, axis=2)
    target = {"boxes": torch.from_numpy(np.concatenate([objects, ignore])),
              "labels": torch.zeros(len(objects) + len(ignore), dtype=torch.int64),
              "iscrowd": torch.tensor([0] * len(objects) + [1] * len(ignore))}
    return strip, target


def big_image() -> np.ndarray:
    small = np.asarray(Image.open(sample_input("nuclei")).convert("RGB"), np.float32) / 255
    return np.tile(small, (2, 2, 1))


def measure(ckpt: Path, tiles: int, tta: str, backend: str, repeats: int, image: np.ndarray,
            strip: tuple[np.ndarray, dict[str, torch.Tensor]]) -> dict[str, object]:
    data = load(ckpt)["config"]["data"]
    tile, size = data["predict_tile"] or nuclei.TILE, data["img_size"]
    predictor = Predictor.from_checkpoint(ckpt, "cpu", [f"data.predict_tile={tile * tiles}",
                                                         f"data.img_size={size * tiles}"], backend=backend)
    predictor.predict(image[:64, :64], conf=0.0, tta=tta)  # warm-up: first calls allocate
    seconds, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        (result,) = predictor.predict(image, conf=0.0, iou=0.5, tta=tta)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    (found,) = predictor.predict(strip[0], conf=0.0, iou=0.5, tta=tta)
    task = predictor.task
    task.reset()
    task.metric.update([{"boxes": torch.from_numpy(found.boxes), "scores": torch.from_numpy(found.scores),
                         "labels": torch.from_numpy(found.labels)}], [strip[1]])
    metrics = task.compute()
    return {"model": ckpt.parent.parent.name, "backend": backend, "tile_px": tile * tiles,
            "input_px": size * tiles, "tta": tta, "tiles": len(task_windows(predictor, image)),
            "seconds": round(statistics.median(seconds), 2), "cpu_s": round(statistics.median(cpu), 2),
            "boxes": len(result.boxes),
            "map50": round(metrics["map50"], 4), "map50_95": round(metrics["map50_95"], 4)}


def task_windows(predictor: Predictor, image: np.ndarray) -> list:
    from toolkit.inference.tiles import tile_windows

    tile = predictor.task.cfg.data.predict_tile
    return tile_windows(*image.shape[:2], tile) if tile and max(image.shape[:2]) > tile else [image.shape[:2]]


def plot(rows: list[dict[str, object]], path: Path, x: str, label: str) -> Path:
    """mAP@.5 against ``x`` (a row key: ``seconds`` or ``cpu_s``) per setting; the 10-s budget as a line."""
    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot()
    for backend, marker in (("torch", "o"), ("onnx", "s")):
        picked = [r for r in rows if r["backend"] == backend]
        ax.scatter([r[x] for r in picked], [r["map50"] for r in picked], marker=marker, label=backend)
        for r in picked:
            ax.annotate(f"{r['model']} {r['tile_px']}px {r['tta']}", (r[x], r["map50"]), fontsize=7,
                        xytext=(4, 2), textcoords="offset points")
    ax.axvline(BUDGET_S, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("mAP@.5, held-out quarter of the nuclei image")
    ax.set_title("Nuclei detection: latency against accuracy")
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--tiles", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--tta", nargs="+", default=["none"])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="1: CPU seconds are the x axis (a busy machine "
                                                                 "stretches wall time, not CPU time)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image, strip = big_image(), held_out_strip()
    rows = []
    for ckpt in args.checkpoints:
        for tiles in args.tiles:
            for tta in args.tta:
                for backend in args.backends:
                    rows.append(measure(ckpt, tiles, tta, backend, args.repeats, image, strip))
                    print(rows[-1], flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    x, label = (("cpu_s", "CPU seconds per 1024 x 1024 image, 1 thread (= wall seconds on an idle core; log)")
                if args.threads == 1 else
                ("seconds", f"seconds per 1024 x 1024 image, {args.threads} threads (log scale)"))
    figure = plot(rows, OUT / "detect_latency.png", x, label)
    write("detect_latency", rows, f"{os.cpu_count()} CPU cores, {args.threads} threads; load average at the end "
                                  f"{load_average()}; median of {args.repeats} runs; "
                                  f"plot {figure}")


if __name__ == "__main__":
    main()
