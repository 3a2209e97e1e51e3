"""Same CPU time, same data: the toolkit's default segment3d recipe vs a plain MONAI-tutorial-style loop.

Both run at once in two processes with one thread each (so machine load hits both alike): the toolkit's
default recipe through ``toolkit train segment3d`` (its epochs), and the plain loop (benchmarks/plain_monai.py),
which stops when its own process CPU time reaches the toolkit run's (written to a file when that run ends; cap
``--max-minutes``). Validation: brain-lesions val cases, mean Dice over TC/WT/ET (MONAI DiceMetric); the
toolkit's figure is its best epoch. Also reports the best single intensity threshold Dice for WT.

    python benchmarks/segment3d_vs_plain.py [--max-minutes 30] [overrides for the toolkit run ...]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import load_average, write  # noqa: E402

from toolkit.data.builtin import prepare  # noqa: E402


def threshold_dice(root: Path) -> dict[str, float]:
    from toolkit.medical import read_nifti
    from toolkit.medical.synthetic import best_threshold_dice

    meta = json.loads((root / "dataset.json").read_text())
    values = [best_threshold_dice(read_nifti(root / e["image"]).array, read_nifti(root / e["label"]).array)
              for e in meta["validation"]]
    return {"wt_threshold_dice_mean": sum(values) / len(values), "wt_threshold_dice_max": max(values)}


def run_plain(root: Path, cpu_seconds: float, out: Path, budget_file: Path) -> None:
    import torch

    from plain_monai import train_plain

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as the toolkit's trainer does
    out.write_text(json.dumps(train_plain(root, cpu_seconds, budget_file=budget_file)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-minutes", type=float, default=30.0, help="CPU cap of the plain loop")
    parser.add_argument("--plain-only", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    root = prepare("brain-lesions")
    bench = Path("runs/bench")
    bench.mkdir(parents=True, exist_ok=True)
    budget_file = bench / "segment3d_plain.budget"
    if args.plain_only:
        return run_plain(root, args.plain_only, bench / "segment3d_plain.json", budget_file)
    budget_file.unlink(missing_ok=True)
    shutil.rmtree("runs/segment3d/bench-vs-plain", ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    load_before = load_average()
    plain = subprocess.Popen([sys.executable, __file__, "--plain-only", str(args.max_minutes * 60)], env=env)
    start = time.time()
    cmd = [sys.executable, "-m", "toolkit", "train", "segment3d", "train.threads=1", "train.progress=false",
           "train.name=bench-vs-plain", "train.exist_ok=true", *args.overrides]
    subprocess.run(cmd, env=env, check=True)
    toolkit_wall = time.time() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the finished toolkit run only
    toolkit_cpu_s = usage.ru_utime + usage.ru_stime
    budget_file.write_text(str(toolkit_cpu_s))
    load_during = load_average()
    plain.wait()
    with open("runs/segment3d/bench-vs-plain/results.csv") as f:
        best = max(csv.DictReader(f), key=lambda r: float(r["dice_mean"]))
    toolkit = {k: float(best[k]) for k in ("dice_tc", "dice_wt", "dice_et", "dice_mean")}
    toolkit["best_epoch"] = int(best["epoch"])
    plain_result = json.loads((bench / "segment3d_plain.json").read_text())
    rows_out = [
        {"loop": "toolkit recipe", "cpu_s": round(toolkit_cpu_s, 1), "wall_s": round(toolkit_wall, 1), **toolkit},
        {"loop": "plain MONAI tutorial", "cpu_s": plain_result["train_cpu_s"], "wall_s": "", **{
            k: plain_result[k] for k in ("dice_tc", "dice_wt", "dice_et", "dice_mean")}},
    ]
    thresholds = threshold_dice(root)
    notes = (f"toolkit: `{' '.join(cmd[1:])}` (best epoch of results.csv); plain: SegResNet(16), DiceLoss, "
             f"RandSpatialCrop {plain_result['roi']}, Adam 1e-4, {plain_result['steps']} steps / "
             f"{plain_result['epochs']} epochs, validated once at the end. One thread each, run side by side. "
             f"Load average (1/5/15 min) at start {load_before}, when the toolkit run ended {load_during} (2 cores). "
             f"Best single-threshold WT Dice on the val cases: mean {thresholds['wt_threshold_dice_mean']:.3f}, "
             f"max {thresholds['wt_threshold_dice_max']:.3f}.")
    write("segment3d_vs_plain", rows_out, notes)


if __name__ == "__main__":
    main()
