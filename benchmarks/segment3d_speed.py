"""3D segmentation speed on CPU.

1. Sliding-window inference on a BraTS-sized volume (4 x 240 x 240 x 155): the toolkit's
   ``toolkit.inference.sliding_window.SlidingWindow`` (Gaussian blending) with a plain MONAI SegResNet
   (init_filters 16, roi 128^3, overlap 0.5) and with the default recipe's network; wall time, CPU time and peak
   memory, each in a fresh process so that peaks do not mix.
2. Training-step throughput on the same network (SegResNet, init_filters 16): the toolkit's segment3d data
   pipeline (cached preprocessing, label-centred crops) + ``train_step`` vs MONAI's tutorial-style plain loop
   (uncached Dataset, RandSpatialCrop, DiceLoss), same crop size and crops per step, one run; ratio reported.

    python benchmarks/segment3d_speed.py [--threads 1] [--steps 8]
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
from common import load_average, peak_rss_mb, run_child, write  # noqa: E402

from toolkit.config import Config, TrainConfig  # noqa: E402
from toolkit.data import builtin  # noqa: E402
from toolkit.inference.sliding_window import SlidingWindow  # noqa: E402
from toolkit.medical.networks import build_network  # noqa: E402

BRATS_SHAPE = (1, 4, 240, 240, 155)
INFERENCE = {"segresnet16-roi128": ("segresnet", 16, 128), "recipe-unet16-roi64": ("unet", 16, 64)}


def infer_child(name: str) -> dict:
    """One inference run in this (fresh) process: seconds, CPU seconds, peak RSS."""
    arch, filters, roi = INFERENCE[name]
    model = build_network(arch, 4, 3, filters).eval()
    image = torch.randn(BRATS_SHAPE)
    base = peak_rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        out = SlidingWindow((roi,) * 3, overlap=0.5, sw_batch_size=1, progress=False)(image, model)
    assert out.shape == (1, 3, *BRATS_SHAPE[2:])
    return {"what": f"inference {name}", "wall_s": round(time.perf_counter() - wall, 1),
            "cpu_s": round(time.process_time() - cpu, 1), "peak_rss_mb": round(peak_rss_mb()),
            "rss_before_mb": round(base)}


def toolkit_steps(root: Path, steps: int, roi: int) -> dict:
    """Steps of the toolkit's path: CacheDataset + label-centred crops + collate + ``train_step``."""
    from toolkit.data.loaders import build_loader
    from toolkit.tasks.segment3d import Segment3DData, Segment3DModel, Segment3DTask

    cfg = Config("segment3d", Segment3DData(source=str(root), roi=[roi] * 3, num_samples=2),
                 Segment3DModel(arch="segresnet", init_filters=16, loss="dice"), TrainConfig(batch_size=2))
    task = Segment3DTask(cfg)
    data = task.build_data(("train",))
    model = task.build_model(task.classes)
    loader = build_loader(data.train, 2, train=True, workers=0, seed=0, collate=data.collate)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    return _timed(loader, steps, lambda b: task.train_step(model, b)["loss"], optimizer)


def plain_steps(root: Path, steps: int, roi: int) -> dict:
    """The same number of crops per step through the MONAI tutorial's pipeline and loss."""
    from monai.data import DataLoader, Dataset, load_decathlon_datalist
    from monai.losses import DiceLoss

    from plain_monai import tutorial_transforms

    files = load_decathlon_datalist(str(root / "dataset.json"), True, "training", base_dir=str(root))
    train_t, _ = tutorial_transforms((roi,) * 3)
    loader = DataLoader(Dataset(files, train_t), batch_size=4, shuffle=True, num_workers=0)
    model = build_network("segresnet", 4, 3, 16)
    loss_fn = DiceLoss(smooth_nr=0, smooth_dr=1e-5, squared_pred=True, to_onehot_y=False, sigmoid=True)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    return _timed(loader, steps, lambda b: loss_fn(model(b["image"]), b["label"].float()), optimizer)


def _timed(loader, steps: int, loss_of, optimizer) -> dict:
    """Crops per second over ``steps`` steps after one warm-up step (loading and augmentation included)."""
    done, crops, batches = -1, 0, iter(loader)
    wall = cpu = 0.0
    while done < steps:
        if done == 0:
            wall, cpu, crops = time.perf_counter(), time.process_time(), 0
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        optimizer.zero_grad()
        loss_of(batch).backward()
        optimizer.step()
        crops += len(batch["image"])
        done += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"crops": crops, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "crops_per_cpu_s": round(crops / cpu, 4), "crops_per_s": round(crops / wall, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--roi", type=int, default=64, help="training crop size")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    if args.child:
        print(json.dumps(infer_child(args.child)))
        return
    load = load_average()
    rows = [run_child(__file__, name, ["--threads", str(args.threads)]) for name in INFERENCE]

    root = builtin.prepare("brain-lesions")
    ours, plain = toolkit_steps(root, args.steps, args.roi), plain_steps(root, args.steps, args.roi)
    rows.append({"what": f"train toolkit segresnet16 roi{args.roi}", **ours})
    rows.append({"what": f"train plain MONAI segresnet16 roi{args.roi}", **plain})
    ratio = ours["crops_per_cpu_s"] / plain["crops_per_cpu_s"]
    end = load_average()
    notes = (f"threads {args.threads}; training-step throughput ratio toolkit / plain (crops per CPU second): "
             f"{ratio:.2f} (per wall second: {ours['crops_per_s'] / plain['crops_per_s']:.2f}). Load average "
             f"(1/5/15 min) at start {load}, at end {end} on {os.cpu_count()} cores: wall times are "
             "inflated by other processes; CPU seconds are not.")
    write("segment3d_speed", rows, notes)


if __name__ == "__main__":
    main()
