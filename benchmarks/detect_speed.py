"""Detection speed on CPU: the toolkit's detector vs torchvision's stock model, same architecture and backbone.

Faster R-CNN on a ResNet-50 FPN (random init, every layer trainable, BatchNorm, 128 RoIs per image,
internal size 320 px): the toolkit's ``build_detector`` around its own backbone + FPN vs
``torchvision.models.detection.fasterrcnn_resnet50_fpn`` called directly. Same batch of real nuclei train
tiles (built-in ``nuclei``). Training images/s, inference latency per image, peak memory (RSS); each side in
a fresh process, one run.

    python benchmarks/detect_speed.py [--threads 2] [--steps 6] [--batch 2] [--size 320]
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import compare_in_children, peak_rss_mb, timed_steps, write  # noqa: E402

from toolkit import config  # noqa: E402
from toolkit.tasks.detect import DetectData, DetectModel, DetectTask  # noqa: E402


def nuclei_batch(batch: int, size: int) -> tuple[DetectTask, dict]:
    overrides = ["data=nuclei", f"data.img_size={size}", "model.arch=fasterrcnn", "model.backbone=resnet50"]
    task = DetectTask(config.build("detect", DetectData, DetectModel, [config.parse_overrides(overrides)]))
    data = task.build_data(("train",))
    return task, data.collate([data.train[i] for i in range(batch)])


def build(impl: str, task: DetectTask, size: int) -> torch.nn.Module:
    if impl == "toolkit":
        return task.build_model(task.classes, pretrained=False)
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    return fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=len(task.classes) + 1,
                                   trainable_backbone_layers=5, min_size=size, max_size=size,
                                   box_batch_size_per_image=task.cfg.model.box_batch_size_per_image)


def child(impl: str, steps: int, batch_size: int, size: int) -> dict:
    torch.manual_seed(0)
    task, batch = nuclei_batch(batch_size, size)
    model = build(impl, task, size).train()
    targets = batch["targets"] if impl == "toolkit" else [{**t, "labels": t["labels"] + 1} for t in batch["targets"]]
    optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9)
    wall, cpu = timed_steps(lambda: sum(model(batch["images"], targets).values()), optimizer, steps)
    model.eval()
    with torch.no_grad():
        model(batch["images"][:1])
        start = time.perf_counter()
        for image in batch["images"] * 3:
            model([image])
        latency = (time.perf_counter() - start) / (3 * len(batch["images"]))
    images = steps * batch_size
    return {"what": impl, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "train_images_per_s": round(images / wall, 2), "train_images_per_cpu_s": round(images / cpu, 2),
            "infer_ms_per_image": round(latency * 1000, 1), "peak_rss_mb": round(peak_rss_mb())}


def main() -> None:
    compared = compare_in_children(__file__, ("toolkit", "torchvision"), child, steps=6, batch=2, size=320)
    if compared is None:
        return
    args, rows = compared
    ours, stock = rows
    notes = (f"Faster R-CNN ResNet-50 FPN, batch {args.batch} nuclei tiles at {args.size} px, {args.steps} timed "
             f"train steps, threads {args.threads}. Ratio toolkit / torchvision: training "
             f"{ours['train_images_per_s'] / stock['train_images_per_s']:.2f}x (images per wall second), "
             f"{ours['train_images_per_cpu_s'] / stock['train_images_per_cpu_s']:.2f}x (per CPU second); "
             f"inference {stock['infer_ms_per_image'] / ours['infer_ms_per_image']:.2f}x (latency ratio, >1 = "
             f"toolkit faster). Goal >= 0.95x. Load average at start {args.load} on {os.cpu_count()} cores.")
    write("detect_speed", rows, notes)


if __name__ == "__main__":
    main()
