"""``toolkit predict`` on a folder, as a user runs it: seconds from typing the command to its first printed result
(Python start-up, imports and model loading included), the whole folder's seconds and inputs per second, for each
checkpoint on each backend, in one run.

The folders are made from the built-in data unless ``--folder TASK=DIR`` gives one: classify, ``--count``
Fashion-MNIST test images (PNG); detect, instance and segment, ``--count`` copies of the bundled nuclei image tiled
to 1024 x 1024; segment3d, the first ``--count`` brain-lesions scans (4-channel NIfTI).

    python benchmarks/predict_stream.py --checkpoint detect=runs/detect/exp/weights/best.pt [--backends auto torch]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from app_latency import big_image  # noqa: E402
from common import load_average, write  # noqa: E402

from toolkit.data.arrays import load_arrays  # noqa: E402
from toolkit.data.builtin import prepare  # noqa: E402


def built_in_folder(task: str, count: int, root: Path) -> Path:
    """A folder of ``count`` inputs for ``task`` from the built-in data (see the module's docstring)."""
    folder = root / task
    folder.mkdir()
    if task == "segment3d":
        scans = sorted((prepare("brain-lesions") / "imagesTr").glob("*.nii.gz"))[:count]
        for scan in scans:
            (folder / scan.name).symlink_to(scan)
    elif task == "classify":
        test = load_arrays(prepare("fashion-mnist"))["x_test"]
        for i in range(count):
            Image.fromarray(test[i]).save(folder / f"test_{i:05d}.png")
    else:
        first = big_image(folder / "nuclei_000.png")
        for i in range(1, count):
            (folder / f"nuclei_{i:03d}.png").symlink_to(first)
    return folder


def timed_predict(checkpoint: str, folder: Path, backend: str, out: Path) -> dict[str, float]:
    """Seconds to the first result line and to the end of ``toolkit predict CHECKPOINT FOLDER``, and results."""
    command = [sys.executable, "-m", "toolkit", "predict", checkpoint, str(folder), "--out", str(out),
               "--backend", backend]
    start = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        results, first = 0, None
        for line in process.stdout:
            if line.startswith(str(folder)):
                results += 1
                first = first or time.perf_counter() - start
    total = time.perf_counter() - start
    if process.returncode != 0 or not results:
        raise SystemExit(f"toolkit predict {checkpoint} {folder} failed (exit {process.returncode})")
    return {"first_result_s": round(first, 2), "total_s": round(total, 1), "results": results,
            "inputs_per_s": round(results / total, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="TASK=PATH (.pt or .onnx)")
    parser.add_argument("--folder", action="append", default=[], help="TASK=DIR: predict on this folder instead")
    parser.add_argument("--count", type=int, default=8, help="inputs per built-in folder")
    parser.add_argument("--backends", nargs="+", default=["auto", "torch"], choices=["auto", "torch", "onnx"])
    args = parser.parse_args()
    folders = dict(item.split("=", 1) for item in args.folder)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task, checkpoint in (item.split("=", 1) for item in args.checkpoint):
            folder = Path(folders[task]) if task in folders else built_in_folder(task, args.count, Path(tmp))
            for backend in args.backends:
                row = {"task": task, "backend": backend,
                       **timed_predict(checkpoint, folder, backend, Path(tmp) / f"out-{task}-{backend}"),
                       "folder": folder.name if task not in folders else str(folder), "model": checkpoint}
                rows.append(row)
                print(row, flush=True)
    write("predict_stream", rows, f"{os.cpu_count()} CPU cores; seconds from the command's start (Python start-up "
                                  f"and model loading included); load average at the end "
                                  f"{load_average()}")


if __name__ == "__main__":
    main()
