"""The CLI end to end on a small real ImageFolder: train, val, predict, errors, DDP."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import write_imagefolder

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def toolkit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_arrays) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("cli")
    data = write_imagefolder(work / "data", digits_arrays, per_class=24, size=32, mode="RGB")
    out = toolkit("train", "classify", f"data={data}", "model.backbone=mobilenet_v2", "model.pretrained=true",
                  "train.epochs=4", "train.lr=0.001", "train.batch_size=16", "data.img_size=64", "train.progress=false",
                  cwd=work)
    assert out.returncode == 0, out.stderr[-2000:]
    return work, data


def test_train_writes_the_run_directory(trained) -> None:
    work, _ = trained
    run = work / "runs" / "classify" / "exp"
    for name in ("config.yaml", "results.csv", "results.png", "confusion_matrix.png", "weights/last.pt",
                 "weights/best.pt"):
        assert (run / name).is_file(), name
    assert len((run / "results.csv").read_text().strip().splitlines()) == 5


def test_val_and_predict(trained) -> None:
    work, data = trained
    ckpt = work / "runs" / "classify" / "exp" / "weights" / "best.pt"
    val = toolkit("val", str(ckpt), "--json", "m.json", cwd=work)
    assert val.returncode == 0, val.stderr
    assert "macro-F1" in val.stdout and "digit2" in val.stdout
    metrics = json.loads((work / "m.json").read_text())
    assert {"accuracy", "f1_macro", "auroc", "precision/digit0", "recall/digit1"} <= set(metrics)
    assert (work / "runs" / "classify" / "exp" / "val-val" / "confusion_matrix.png").is_file()
    pred = toolkit("predict", str(ckpt), str(data / "val"), "top_k=2", "--out", "pred", cwd=work)
    assert pred.returncode == 0, pred.stderr
    records = json.loads((work / "pred" / "predictions.json").read_text())
    assert len(records) == 36 and len(records[0]["top"]) == 2
    correct = sum(r["class"] == Path(r["source"]).parent.name for r in records)
    assert correct / len(records) == pytest.approx(metrics["accuracy"])  # predict agrees with val
    assert metrics["accuracy"] > 0.5  # 3 classes: chance is 1/3
    assert (work / "pred" / "predictions.csv").read_text().startswith("source,class,score")


def assert_one_line_error(out: subprocess.CompletedProcess, *words: str) -> None:
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and out.stderr.strip().endswith(errors[0]), out.stderr  # progress bars may precede
    assert "Traceback" not in out.stderr, out.stderr
    for word in words:
        assert word in errors[0], errors[0]


def test_bad_inputs_give_one_line_errors(trained, tmp_path: Path, digits_arrays) -> None:
    work, _ = trained
    bad = write_imagefolder(tmp_path / "bad", digits_arrays)
    (bad / "train" / "digit1" / "005.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert_one_line_error(toolkit("train", "classify", f"data={bad}", "train.epochs=1", cwd=tmp_path), "005.png")
    (bad / "train" / "digit1" / "005.png").unlink()
    (bad / "train" / "empty").mkdir()
    assert_one_line_error(toolkit("train", "classify", f"data={bad}", cwd=tmp_path), "empty", "no images")
    (tmp_path / "x.csv").write_text("path,label\nnope.png,a\n")
    assert_one_line_error(toolkit("train", "classify", f"data={tmp_path / 'x.csv'}", cwd=tmp_path), "nope.png")
    torch.save({"format_version": 1, "model": {}, "config": {}, "classes": [], "x": Path("pickled")},
               tmp_path / "evil.pt")
    assert_one_line_error(toolkit("val", str(tmp_path / "evil.pt"), cwd=tmp_path), "refused")
    assert_one_line_error(toolkit("train", "classify", "train.lr=fast", cwd=tmp_path), "train.lr")


def test_ddp_with_two_gloo_processes(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "toolkit", "train", "classify", "data=digits", "train.epochs=2",
                          "train.progress=false", f"train.project={tmp_path}"], env=ENV, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "device cpu x2" in out.stdout
    from toolkit.engine import checkpoint

    ckpt = checkpoint.load(tmp_path / "classify" / "exp" / "weights" / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["scheduler"]["last_epoch"] == 2 * (1295 // 32 // 2)
    assert not list((tmp_path / "classify").glob("exp2"))  # one run directory, written by rank 0 only
