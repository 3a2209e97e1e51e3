"""Does ImageNet pre-training help? mobilenet_v2 with the real ImageNet weights vs from scratch, same data
and budget, one run per start.

- ``--task classify``: a small Fashion-MNIST subset, same epochs and lr; test accuracy.
- ``--task detect``: Faster R-CNN on a mobilenet_v2 FPN on the built-in nuclei, same training time
  (``--minutes``); validation mAP@[.5:.95] and mAP@.5.

    python benchmarks/pretrained_vs_scratch.py [--task classify|detect] [--minutes 5]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Timer, write  # noqa: E402

from toolkit import train  # noqa: E402

SETUPS = {
    "classify": (["data.limit=1000", "data.img_size=64", "data.val_split=0.05", "model.dropout=0.2",
                  "train.epochs=8", "train.batch_size=32", "train.lr=0.001"],
                 {"test accuracy": "accuracy", "macro-F1": "f1_macro"},
                 "1,000 Fashion-MNIST training images at 64 px, 8 epochs, AdamW lr 1e-3, 1-channel stem = summed "
                 "RGB kernel; accuracy on the 10,000 test images."),
    "detect": (["data=nuclei", "model.arch=fasterrcnn", "train.epochs=100"],
               {"mAP@[.5:.95]": "map50_95", "mAP@.5": "map50"},
               "Faster R-CNN, FPN on mobilenet_v2 strides 4-32 + pool, the detect recipe otherwise; built-in nuclei "
               "(validation: right quarter of the image, 28 boxes + 6 ignore regions); best epoch within the time "
               "budget."),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=sorted(SETUPS), default="classify")
    ap.add_argument("--minutes", type=float, default=5.0, help="detect: training time per start")
    args = ap.parse_args()
    base, reported, notes = SETUPS[args.task]
    rows = []
    for pretrained in (True, False):
        overrides = base + ["model.backbone=mobilenet_v2", f"model.pretrained={str(pretrained).lower()}",
                            "train.progress=false", f"train.project=runs/bench/pretrained-{args.task}",
                            "train.exist_ok=true", f"train.name={'imagenet' if pretrained else 'scratch'}"]
        if args.task == "detect":
            overrides.append(f"train.time_limit={args.minutes}")
        with Timer() as t:
            metrics = train(args.task, overrides)
        rows.append({"start": "ImageNet (IMAGENET1K_V1)" if pretrained else "scratch",
                     **{name: metrics[key] for name, key in reported.items()}, "minutes": t.seconds / 60})
    write(f"pretrained_vs_scratch_{args.task}", rows, notes)


if __name__ == "__main__":
    main()
