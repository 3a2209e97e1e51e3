"""Tumour-region heatmaps over a whole scan through the sliding window: the mask is the Predictor's own, the maps
lie on the scan's grid and are written as NIfTI with its affine, the planes drawn over it, the model left alone."""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.explain.conftest import assert_untouched, build_predictor, state_of
from toolkit.errors import ConfigError
from toolkit.medical import write_nifti


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> Path:
    """A 1-channel MR-like volume (20, 24, 18) at 2 x 2 x 3 mm, LPS-oriented, with a bright blob."""
    rng = np.random.default_rng(0)
    array = rng.normal(0.3, 0.05, (20, 24, 18)).astype(np.float32)
    array[6:12, 8:15, 5:10] += 0.6
    affine = np.array([[-2.0, 0, 0, 40], [0, -2.0, 0, 30], [0, 0, 3.0, -20], [0, 0, 0, 1]])
    return write_nifti(array, affine, tmp_path_factory.mktemp("scan") / "case.nii.gz")


def test_region_maps_on_the_scan_grid_with_the_predictors_mask(scan: Path, tmp_path: Path) -> None:
    predictor = build_predictor("segment3d", {"data": {"roi": [16, 16, 16], "channels": 1},
                                              "model": {"init_filters": 8}}, ["TC", "WT", "ET"])
    before = state_of(predictor.model)
    (result,) = predictor.explain(scan)
    assert_untouched(before, predictor.model)
    (predicted,) = predictor.predict(scan, progress=False)
    assert np.array_equal(result.mask, predicted.mask)  # the same windows, blending and resampling
    assert list(result.heatmaps) == ["TC", "WT", "ET"] and result.layer == "decoder"
    for region, heatmap in result.heatmaps.items():
        assert heatmap.shape == (20, 24, 18) and heatmap.min() >= 0 and heatmap.max() == pytest.approx(1.0)
    files = {p.name for p in result.save(tmp_path)}
    assert files == {f"case_hirescam_{r}.{ext}" for r in ("TC", "WT", "ET") for ext in ("nii.gz", "png")} | \
        {"case_hirescam.json"}
    written = nib.load(tmp_path / "case_hirescam_WT.nii.gz")
    assert np.allclose(written.affine, nib.load(scan).affine) and written.shape == (20, 24, 18)
    assert np.allclose(written.get_fdata(), result.heatmaps["WT"], atol=1e-6)
    record = json.loads((tmp_path / "case_hirescam.json").read_text())
    assert [t["target"] for t in record["targets"]] == ["TC", "WT", "ET"] and record["layer"] == "decoder"
    (wt,) = predictor.explain(scan, target="WT", overlap=0.25)
    assert list(wt.heatmaps) == ["WT"]
    with pytest.raises(ConfigError, match="target 'XX' is not a region of this model; valid: TC, WT, ET"):
        predictor.explain(scan, target="XX")
    with pytest.raises(ConfigError, match="'layers' shows the feature maps of 2D models"):
        predictor.explain(scan, method="layers")
