"""Does ImageNet pre-training help? mobilenet_v2 fine-tuned with the real ImageNet weights vs trained
from scratch on the same small Fashion-MNIST subset, same budget (epochs, steps, lr), one run.

    python benchmarks/pretrained_vs_scratch.py [--images 1000] [--epochs 8] [--size 64]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Timer, write  # noqa: E402

from toolkit import train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    rows = []
    for pretrained in (True, False):
        overrides = [f"data.limit={args.images}", f"data.img_size={args.size}", "data.val_split=0.05",
                     "model.backbone=mobilenet_v2", f"model.pretrained={str(pretrained).lower()}",
                     "model.dropout=0.2", f"train.epochs={args.epochs}", "train.batch_size=32", "train.lr=0.001",
                     "train.progress=false", "train.project=runs/bench/pretrained", "train.exist_ok=true",
                     f"train.name={'imagenet' if pretrained else 'scratch'}"]
        with Timer() as t:
            metrics = train("classify", overrides)
        rows.append({"start": "ImageNet (IMAGENET1K_V1)" if pretrained else "scratch",
                     "test accuracy": metrics["accuracy"], "macro-F1": metrics["f1_macro"],
                     "minutes": t.seconds / 60})
    write("pretrained_vs_scratch", rows,
          f"mobilenet_v2 (1-channel stem = summed RGB kernel), {args.images} training images at {args.size} px, "
          f"{args.epochs} epochs, AdamW lr 1e-3; accuracy on the 10,000 Fashion-MNIST test images.")


if __name__ == "__main__":
    main()
