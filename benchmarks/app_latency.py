"""What a user waits for in the apps, measured in a real headless Chromium: from uploading a 1024 x 1024 image to
the annotated image with its table (detection), and from pressing "Segment tumour" on the bundled brain volume to
the overlay (medical). Each is timed ``--repeats`` times on fresh page loads (the model is loaded once, first).

    python benchmarks/app_latency.py --detect runs/detect/exp/weights/best.pt --segment3d runs/segment3d/exp/weights/best.pt
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402

from toolkit import sample_input  # noqa: E402
from toolkit.app_server import serve  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
BRAIN_SAMPLE = "Brain MR volume: 4-channel NIfTI (the same case)"


def runs_with(checkpoints: dict[str, Path], root: Path) -> Path:
    """A runs/ folder holding just the given checkpoints as ``<task>/bench/weights/best.pt`` (symlinks), with the
    ``toolkit export`` beside each when there is one (the apps then run it on onnxruntime)."""
    for task, path in checkpoints.items():
        target = root / task / "bench" / "weights" / "best.pt"
        target.parent.mkdir(parents=True)
        target.symlink_to(Path(path).resolve())
        if Path(path).with_suffix(".onnx").is_file():
            target.with_suffix(".onnx").symlink_to(Path(path).with_suffix(".onnx").resolve())
    return root


def big_image(path: Path) -> Path:
    """The bundled nuclei image tiled 2 x 2 into a 1024 x 1024 PNG (real microscopy, 4x the objects)."""
    small = np.asarray(Image.open(sample_input("nuclei")).convert("RGB"))
    tiled = np.tile(small, (2, 2, 1))
    Image.fromarray(tiled).save(path)
    return path


def time_detection(page: Page, url: str, image: Path) -> float:
    page.goto(url)
    page.locator('input[type="file"]').wait_for(state="attached")
    start = time.perf_counter()
    page.locator('input[type="file"]').set_input_files(image)
    expect(page.get_by_text("Counts per class")).to_be_visible()
    expect(page.locator('[data-testid="stImage"] img').first).to_be_visible()
    return time.perf_counter() - start


def time_segmentation(page: Page, url: str) -> float:
    page.goto(url)
    page.locator('input[type="file"]').wait_for(state="attached")
    page.get_by_text("Sample", exact=True).click()
    page.get_by_role("combobox", name="Sample").click()
    page.get_by_role("option", name=BRAIN_SAMPLE).click()
    expect(page.get_by_role("combobox", name="Sample")).to_have_value(BRAIN_SAMPLE)
    expect(page.get_by_text("4 series found")).to_have_count(0)  # the DICOM study sample has gone
    start = time.perf_counter()
    page.get_by_role("button", name="Segment tumour").click()
    expect(page.get_by_text("overlay: TC gold, WT blue, ET red")).to_be_visible()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detect", type=Path, required=True, help="a detection checkpoint")
    parser.add_argument("--segment3d", type=Path, required=True, help="a segment3d checkpoint")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="app-latency-"))
    env = {"TOOLKIT_RUNS": str(runs_with({"detect": args.detect, "segment3d": args.segment3d}, tmp / "runs"))}
    image = big_image(tmp / "nuclei_1024.png")
    rows = []
    with sync_playwright() as p, serve("detection", env, tmp / "detection.log") as det, \
            serve("medical", env, tmp / "medical.log") as med:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.set_default_timeout(300_000)
        expect.set_options(timeout=300_000)
        for what, measure in (("detection: upload 1024x1024 PNG -> annotated image + table",
                               lambda: time_detection(page, det, image)),
                              ("medical: Segment tumour -> overlay (brain volume, 77x95x80x4)",
                               lambda: time_segmentation(page, med))):
            first = measure()  # includes loading the model
            times = [measure() for _ in range(args.repeats)]
            rows.append({"what": what, "first_s": round(first, 2), "median_s": round(statistics.median(times), 2),
                         "min_s": round(min(times), 2), "max_s": round(max(times), 2)})
        browser.close()
    notes = (f"Headless Chromium + streamlit on this machine ({os.cpu_count()} CPU cores, no GPU); first = first "
             f"run after the server started (model loading included), then {args.repeats} runs on fresh page loads. "
             f"Models: {args.detect}, {args.segment3d}. Load average at the end {os.getloadavg()}.")
    write("app_latency", rows, notes)


if __name__ == "__main__":
    main()
