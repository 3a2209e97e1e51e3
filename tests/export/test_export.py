"""``toolkit export`` for every task: parity on the run's val inputs, the metadata that makes the file
self-contained, and ``toolkit predict`` / ``toolkit val`` on the .onnx giving what PyTorch gives."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toolkit.cli import main
from toolkit.engine import onnx_runtime

TASKS = ("classify", "segment", "detect", "instance", "segment3d")


def inputs_of(task: str, ckpt: Path) -> list[str]:
    """Real files to predict on: the run's own val inputs (classify: digits written beside the run)."""
    from toolkit.engine.checkpoint import load

    source = Path(load(ckpt)["config"]["data"]["source"])
    if task == "classify":
        return [str(ckpt.parent.parent / "val-inputs")]
    if task == "segment3d":
        return [str(sorted((source / "imagesTr").glob("*.nii.gz"))[-1])]
    return [str(source / "val" / "images")]


def _digit_pngs(folder: Path, digits_arrays: dict) -> None:
    from PIL import Image

    folder.mkdir(exist_ok=True)
    for i in range(4):
        Image.fromarray(digits_arrays["x_test"][i]).save(folder / f"{i}.png")


def _predictions(folder: Path) -> list[dict]:
    return json.loads((folder / "predictions.json").read_text())


def _same_predictions(task: str, ours: list[dict], theirs: list[dict]) -> None:
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        if task == "classify":
            assert a["class"] == b["class"] and abs(a["score"] - b["score"]) < 1e-4
        elif task == "segment":
            for name, n in a["pixels"].items():
                assert abs(n - b["pixels"][name]) <= 0.001 * a["height"] * a["width"]
        elif task == "detect":
            assert a["count"] == b["count"]
            for d, e in zip(a["detections"], b["detections"]):
                assert d["label"] == e["label"] and np.allclose(d["box"], e["box"], atol=0.5)
        elif task == "instance":
            assert a["count"] == b["count"] and a["files"][0].endswith("_instances.png")
            for d, e in zip(a["objects"], b["objects"]):
                assert d["class"] == e["class"] and abs(d["score"] - e["score"]) < 1e-3
                assert abs(d["area_px"] - e["area_px"]) <= max(2, 0.02 * d["area_px"])
        else:
            assert np.allclose([a[k] for k in ("tc_ml", "wt_ml", "et_ml")],
                               [b[k] for k in ("tc_ml", "wt_ml", "et_ml")], rtol=0.01, atol=0.05)


@pytest.mark.parametrize("task", TASKS)
def test_export_then_predict_and_val_on_the_onnx_file(task: str, export_runs, digits_arrays, tmp_path: Path,
                                                      capsys) -> None:
    ckpt = export_runs(task)
    if task == "classify":
        _digit_pngs(ckpt.parent.parent / "val-inputs", digits_arrays)
    onnx_file = tmp_path / f"{task}.onnx"
    assert main(["export", str(ckpt), "--out", str(onnx_file)]) == 0
    out = capsys.readouterr().out
    assert f"parity ({task}): " in out and str(onnx_file) in out
    meta, _ = onnx_runtime.read(onnx_file)
    assert meta["task"] == task and meta["config"]["task"] == task
    assert meta["checkpoint_sha256"] == onnx_runtime.sha256_file(ckpt) and meta["toolkit_version"]
    assert meta["parity"] and meta["io"] == {"detect": "detections", "instance": "instances"}.get(task, "tensor")

    inputs = inputs_of(task, ckpt)
    assert main(["predict", str(onnx_file), *inputs, "--out", str(tmp_path / "onnx")]) == 0
    assert main(["predict", str(ckpt), *inputs, "--out", str(tmp_path / "torch"), "--backend", "torch"]) == 0
    _same_predictions(task, _predictions(tmp_path / "onnx"), _predictions(tmp_path / "torch"))
    if task == "instance":  # an untrained model with noisy class scores: objects either side of the default conf
        assert sum(r["count"] for r in _predictions(tmp_path / "onnx")) > 0
    assert "predict: 100%" in capsys.readouterr().err  # the progress bar

    metrics = {}
    for name, path, backend in (("onnx", onnx_file, "auto"), ("torch", ckpt, "torch")):
        json_file = tmp_path / f"{name}.json"
        assert main(["val", str(path), "--backend", backend, "--json", str(json_file),
                     "--out", str(tmp_path / f"val-{name}")]) == 0
        metrics[name] = json.loads(json_file.read_text())
    key = {"classify": "accuracy", "segment": "dice", "detect": "map50_95", "instance": "segm_map50_95",
           "segment3d": "dice_mean"}[task]
    assert np.isclose(metrics["onnx"][key], metrics["torch"][key], atol=0.002, equal_nan=True)
