"""2D segmentation training speed on CPU: the toolkit vs segmentation_models_pytorch.

Same encoder (ResNet-18, random init, 1 input channel), same U-Net decoder widths
(256, 128, 64, 32, 16), same batch of real nuclei train crops (built-in ``nuclei``), Dice + CE loss:
the toolkit's ``SegmentTask.train_step`` vs ``smp.Unet`` with smp's DiceLoss + torch cross-entropy in a
hand-written step. Each side runs in a fresh process so peak memory (RSS) does not mix; one run.

    python benchmarks/segment_speed.py [--threads 2] [--steps 10] [--batch 8] [--size 128]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import compare_in_children, peak_rss_mb, timed_steps, write  # noqa: E402

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
    wall, cpu = timed_steps(loss_of, torch.optim.AdamW(model.parameters(), 1e-3), steps)
    images = steps * batch_size
    return {"what": impl, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
            "images": images, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "images_per_s": round(images / wall, 2), "images_per_cpu_s": round(images / cpu, 2),
            "peak_rss_mb": round(peak_rss_mb())}


def main() -> None:
    compared = compare_in_children(__file__, ("toolkit", "smp"), child, steps=10, batch=8, size=128)
    if compared is None:
        return
    args, rows = compared
    ours, theirs = rows
    notes = (f"U-Net ResNet-18, batch {args.batch} x 1 x {args.size} x {args.size}, {args.steps} timed steps, "
             f"threads {args.threads}. Ratio toolkit / segmentation_models_pytorch: "
             f"{ours['images_per_s'] / theirs['images_per_s']:.2f} (images per wall second), "
             f"{ours['images_per_cpu_s'] / theirs['images_per_cpu_s']:.2f} (per CPU second). Load average "
             f"at start {args.load} on {os.cpu_count()} cores.")
    write("segment_speed", rows, notes)


if __name__ == "__main__":
    main()
