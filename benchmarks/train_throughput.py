"""Training throughput: the toolkit's epoch vs a plain hand-written PyTorch loop, same machine, one run.

Same model (the quickstart recipe's backbone + head), same Fashion-MNIST images, batch size,
augmentation (flip + translate), threads. Also: the toolkit's data loader alone vs the model step
alone, to show the pipeline is not the bottleneck. Medians of ``--repeats`` alternating rounds.

    python benchmarks/train_throughput.py [--images 12800] [--backbone simple_cnn] [--size 0] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).parent))
from common import Timer, peak_rss_mb, timed_steps, write  # noqa: E402

from toolkit.backbones import create_backbone  # noqa: E402
from toolkit.data import builtin  # noqa: E402
from toolkit.data.arrays import load_arrays  # noqa: E402
from toolkit.engine.run import resolve_config  # noqa: E402
from toolkit.engine.trainer import Trainer  # noqa: E402
from toolkit.heads.classification import Classifier  # noqa: E402
from toolkit.tasks.classify import ClassifyTask  # noqa: E402


LABELS = {"toolkit": "toolkit training epoch", "plain": "plain PyTorch loop (torchvision v2 transforms)",
          "loader": "toolkit data loader alone", "step": "model step alone (fwd+bwd+AdamW)"}


class PlainDataset(Dataset):
    """What a hand-written loop would do: uint8 arrays -> float tensor -> torchvision v2 transforms."""

    def __init__(self, x: np.ndarray, y: np.ndarray, size: int) -> None:
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        ops = [v2.Resize(size)] if size else []
        self.t = v2.Compose(ops + [v2.RandomHorizontalFlip(), v2.RandomAffine(0, translate=(0.1, 0.1)),
                                   v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.449], [0.226])])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.t(self.x[i][None]), self.y[i]


def plain_epoch(model: torch.nn.Module, loader: DataLoader, channels_last: bool, dtype: torch.dtype | None) -> float:
    """One epoch of a hand-written loop; ``dtype``: bf16 autocast as the toolkit's ``train.amp`` resolved, or None."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    model.train()
    with Timer() as t:
        for x, y in loader:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    return t.seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=12800)
    ap.add_argument("--backbone", default="")
    ap.add_argument("--size", type=int, default=-1)
    ap.add_argument("--repeats", type=int, default=3, help="rounds of the four measurements; medians reported")
    args = ap.parse_args()
    overrides = ["train.epochs=1", "train.progress=false", f"data.limit={args.images}", "train.project=runs/bench/tmp",
                 "train.exist_ok=true", "data.val_split=0.01"]
    if args.backbone:
        overrides.append(f"model.backbone={args.backbone}")
    if args.size >= 0:
        overrides.append(f"data.img_size={args.size}")
    cfg = resolve_config("classify", overrides)
    n, bs, cl = args.images, cfg.train.batch_size, cfg.train.channels_last

    trainer = Trainer(cfg, ClassifyTask(cfg))
    trainer._setup()
    trainer.t0 = time.time()
    n_toolkit = len(trainer.train_loader) * bs
    x = next(iter(trainer.train_loader))["image"]
    x = x.contiguous(memory_format=torch.channels_last) if cl else x
    model, dtype = trainer.model, trainer.precision.dtype
    step_opt = torch.optim.AdamW(model.parameters())

    def step_loss() -> torch.Tensor:
        with trainer.precision.autocast():
            return F.cross_entropy(model(x), torch.zeros(len(x), dtype=torch.long))

    arrays = load_arrays(builtin.prepare("fashion-mnist"))
    torch.manual_seed(0)
    plain_model = Classifier(create_backbone(cfg.model.backbone, in_chans=1), 10, cfg.model.dropout)
    if cl:
        plain_model = plain_model.to(memory_format=torch.channels_last)
    plain_loader = DataLoader(PlainDataset(arrays["x_train"][:n], arrays["y_train"][:n], cfg.data.img_size),
                              batch_size=bs, shuffle=True, drop_last=True, num_workers=trainer.train_loader.num_workers)
    n_plain = len(plain_loader) * bs

    # Rounds alternate the four measurements so that a slow spell of the machine hits all of them alike.
    runs: dict[str, list[float]] = {key: [] for key in LABELS}
    for r in range(args.repeats):
        with Timer() as t:
            trainer._train_epoch(r)
        runs["toolkit"].append(n_toolkit / t.seconds)
        runs["plain"].append(n_plain / plain_epoch(plain_model, plain_loader, cl, dtype))
        with Timer() as t:
            for _ in trainer.train_loader:
                pass
        runs["loader"].append(n_toolkit / t.seconds)
        runs["step"].append(10 * bs / timed_steps(step_loss, step_opt, 10, warmup=3)[0])
    ips = {key: statistics.median(values) for key, values in runs.items()}
    rows = [{"what": LABELS[key], "images/s": ips[key], "rounds": " ".join(f"{v:.0f}" for v in runs[key])}
            for key in runs]
    notes = (f"toolkit / plain = {ips['toolkit'] / ips['plain']:.3f}x (goal >= 0.95x); data loader / model step = "
             f"{ips['loader'] / ips['step']:.1f}x (goal >= 3x). Backbone {cfg.model.backbone}, {n} images, batch {bs}, "
             f"img_size {cfg.data.img_size or 28}, channels_last {cl}, autocast {dtype}, "
             f"workers {trainer.train_loader.num_workers}, medians of {args.repeats} rounds, "
             f"peak RSS {peak_rss_mb():.0f} MiB.")
    write("train_throughput", rows, notes)


if __name__ == "__main__":
    main()
