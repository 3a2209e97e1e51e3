"""Every figure of toolkit.viz is drawn on a bare matplotlib Figure and written at its intended pixel size."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from toolkit.viz import (
    colorize,
    overlay,
    plot_confusion_matrix,
    plot_overlay,
    plot_pr_curve,
    plot_results,
    save_annotated,
    write_case_csv,
)
from toolkit.viz import detect as viz_detect
from toolkit.viz import segment as viz_segment


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def test_curves_and_confusion_matrix(tmp_path: Path) -> None:
    with open(tmp_path / "results.csv", "w", newline="") as f:
        csv.writer(f).writerows([["epoch", "time", "loss", "acc", "lr"], [1, 3.0, 0.9, 0.5, 0.01],
                                 [2, 3.1, 0.5, "", 0.001]])
    assert _size(plot_results(tmp_path / "results.csv", tmp_path / "curves" / "results.png")) == (1056, 286)
    out = plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["cat", "dog"], tmp_path / "cm.png")
    assert _size(out) == (440, 396)  # 4 x 3.6 inches at 110 dpi


def test_detection_figures(tmp_path: Path) -> None:
    image = np.random.default_rng(0).random((100, 150, 3)).astype(np.float32)
    pred = {"boxes": np.array([[10, 10, 50, 40.0]]), "labels": np.array([1]), "scores": np.array([0.8])}
    assert _size(save_annotated(image, pred, ["a", "b"], tmp_path / "one.png")) == (150, 100)  # native size
    gt = {"boxes": np.array([[12, 12, 48, 40.0]]), "labels": np.array([1])}
    samples = [{"image": image, "gt": gt, "pred": pred}] * 3
    assert _size(viz_detect.plot_samples(samples, ["a", "b"], tmp_path / "grid.png")) == (1056, 352)
    precision = np.full((10, 101, 2, 4, 3), -1.0)
    precision[:, :, 0] = np.linspace(1, 0.2, 101)[None, :, None, None]
    assert _size(plot_pr_curve(precision, ["a", "b"], tmp_path / "pr.png")) == (550, 440)


def test_segmentation_figures(tmp_path: Path) -> None:
    mask = np.array([[0, 1], [2, 255]])
    colours = colorize(mask, 3, ignore_index=255)
    assert colours[0, 0].tolist() == [0, 0, 0] and colours[1, 1].tolist() == [255, 255, 255]
    blended = overlay(np.full((2, 2), 0.5, np.float32), mask, 3, alpha=0.5)
    assert blended[0, 0].tolist() == [128, 128, 128] and blended[0, 1].tolist() != [128, 128, 128]
    rows = [(np.zeros((8, 8), np.float32), np.eye(8, dtype=int), np.eye(8, dtype=int))] * 2
    out = viz_segment.plot_samples(rows, ["bg", "cell"], tmp_path / "seg" / "samples.png", titles=["a/x.png"])
    assert _size(out) == (900, 600)


def test_volume_overlay_and_case_table(tmp_path: Path) -> None:
    image = np.random.default_rng(0).random((16, 16, 8))
    truth = np.zeros((3, 16, 16, 8), bool)
    truth[:, 4:9, 4:9, 5] = True
    assert _size(plot_overlay(image, truth, truth, ("TC", "WT", "ET"), tmp_path / "overlay.png", "case 1"))[0] > 300
    values = {"dice": np.array([[0.5, 0.25, 1.0]]), "hd95": np.array([[1.0, 2.0, np.nan]])}
    path = write_case_csv(["c1"], values, ("TC", "WT", "ET"), tmp_path / "cases.csv")
    assert path.read_text().splitlines() == ["case,dice_tc,dice_wt,dice_et,hd95_tc,hd95_wt,hd95_et",
                                             "c1,0.5000,0.2500,1.0000,1.0000,2.0000,nan"]
