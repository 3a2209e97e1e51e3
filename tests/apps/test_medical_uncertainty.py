"""The medical page with a cross-validation run (streamlit AppTest): the run is listed as an ensemble of its folds,
and after segmenting, the overlay can show the folds' disagreement instead of the tumour regions."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from tests.apps.conftest import support
from toolkit.engine import checkpoint

PAGE = str(Path(__file__).resolve().parents[2] / "apps" / "medical.py")


def folds_run(source: Path, run: Path) -> Path:
    """``run/fold0``, ``run/fold1``: the tiny tumour model and a copy with noise on its weights."""
    for i in range(2):
        (run / f"fold{i}" / "weights").mkdir(parents=True)
    shutil.copy(source, run / "fold0" / "weights" / "best.pt")
    ckpt = checkpoint.load(source)
    gen = torch.Generator().manual_seed(0)
    ckpt["model"] = {k: v + 0.1 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
                     for k, v in ckpt["model"].items()}
    checkpoint.save(ckpt, run / "fold1" / "weights" / "best.pt")
    return run


def test_a_folds_run_segments_as_an_ensemble_with_an_uncertainty_overlay(app_env, app_root: Path, tmp_path: Path,
                                                                         monkeypatch) -> None:
    run = folds_run(app_root / "runs" / "segment3d" / "exp" / "weights" / "best.pt", tmp_path / "segment3d" / "cv")
    monkeypatch.setenv("TOOLKIT_RUNS", str(tmp_path))
    assert support.find_checkpoints("segment3d") == [run]
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert at.sidebar.selectbox[0].format_func(at.sidebar.selectbox[0].value).endswith("(ensemble of 2 folds)")
    at.radio(key="scan-source").set_value("Sample").run()
    at.selectbox(key="sample").set_value(list(support.MEDICAL_SAMPLES)[0]).run()
    at.button(key="segment").click().run()
    assert not at.exception and not at.error
    regions = at.get("image")[0].proto.imgs[0].url  # the rendered slice (its media file), before the switch
    assert at.get("image")[0].captions[0].endswith("overlay: TC gold, WT blue, ET red")
    at.radio(key="overlay").set_value("uncertainty (disagreement of the folds)").run()
    assert not at.exception and "overlay: uncertainty, the folds' probability spread" in at.get("image")[0].captions[0]
    assert at.get("image")[0].proto.imgs[0].url != regions
