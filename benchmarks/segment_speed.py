"""2D segmentation training speed on CPU: the toolkit vs segmentation_models_pytorch.

Same encoder (ResNet-18, random init, 1 input channel), same U-Net decoder widths
(256, 128, 64, 32, 16), same batch of real nuclei train crops (built-in ``nuclei``), Dice + CE loss:
the toolkit's ``SegmentTask.train_step`` vs ``smp.Unet`` with smp's DiceLoss + torch cross-entropy in a
hand-written step. Each side runs in a fresh process so peak memory (RSS) does not mix; one run.

    python benchmarks/segment_speed.py [--threads 2] [--steps 10] [--batch 8] [--size 128]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import peak_rss_mb, run_child, write  # noqa: E402

from toolkit import config  # noqa: E402
from toolkit.tasks.segment import SegmentData, SegmentModel, SegmentTask  # noqa: E402


def nuclei_task(batch: int, size: int) -> tuple[SegmentTask, dict]:
    overrides = ["data=nuclei", f"data.crop={size}", "model.head=unet", "model.backbone=resnet18", "model.loss=dicece"]
    cfg = config.build("segment", SegmentData, SegmentModel, [config.parse_overrides(overrides)])
    task = SegmentTask(cfg)
    data = task.build_data(("train",))
    return task, data.collate([data.train[i] for i in range(batch)])


def toolkit_step(task: SegmentTask, batch: dict):
    model = task.build_model(task.classes, pretrained=False)
    return model, lambda: task.train_step(model, batch)["loss"]


def smp_step(task: SegmentTask, batch: dict):
    import segmentation_models_pytorch as smp

    model = smp.Unet("resnet18", encoder_weights=None, in_channels=batch["image"].shape[1],
                     classes=len(task.classes), decoder_channels=(256, 128, 64, 32, 16))
    dice = smp.losses.DiceLoss("multiclass", ignore_index=255)
    ce = torch.nn.CrossEntropyLoss(ignore_index=255)
    return model, lambda: (lambda logits: dice(logits, batch["mask"]) + ce(logits, batch["mask"]))(model(batch["image"]))


def child(impl: str, steps: int, batch_size: int, size: int) -> dict:
    torch.manual_seed(0)
    task, batch = nuclei_task(batch_size, size)
    model, loss_of = (toolkit_step if impl == "toolkit" else smp_step)(task, batch)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            wall, cpu = time.perf_counter(), time.process_time()
        optimizer.zero_grad()
        loss_of().backward()
        optimizer.step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    images = steps * batch_size
    return {"what": impl, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
            "images": images, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "images_per_s": round(images / wall, 2), "images_per_cpu_s": round(images / cpu, 2),
            "peak_rss_mb": round(peak_rss_mb())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--child", choices=("toolkit", "smp"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.batch, args.size)))
        return
    load = tuple(round(v, 2) for v in os.getloadavg())
    options = [f"--{k}={getattr(args, k)}" for k in ("threads", "steps", "batch", "size")]
    rows = [run_child(__file__, impl, options) for impl in ("toolkit", "smp")]
    ours, theirs = rows
    notes = (f"U-Net ResNet-18, batch {args.batch} x 1 x {args.size} x {args.size}, {args.steps} timed steps, "
             f"threads {args.threads}. Ratio toolkit / segmentation_models_pytorch: "
             f"{ours['images_per_s'] / theirs['images_per_s']:.2f} (images per wall second), "
             f"{ours['images_per_cpu_s'] / theirs['images_per_cpu_s']:.2f} (per CPU second). Load average "
             f"at start {load} on {os.cpu_count()} cores.")
    write("segment_speed", rows, notes)


if __name__ == "__main__":
    main()
