"""The brain-lesions dataset: MSD layout, seeded, idempotent, not separable by one intensity threshold."""
import json

import numpy as np
from scipy import ndimage

from toolkit.medical import read_nifti
from toolkit.medical.synthetic import best_threshold_dice, prepare_brain_lesions, smooth_field


def test_tiny_dataset_is_deterministic_msd_and_not_threshold_separable(tmp_path):
    a = prepare_brain_lesions(tmp_path / "a", n_train=2, n_val=1, spacing_mm=4.0, seed=3)
    b = prepare_brain_lesions(tmp_path / "b", n_train=2, n_val=1, spacing_mm=4.0, seed=3)
    meta = json.loads((a / "dataset.json").read_text())
    assert meta["labels"] == {"0": "background", "1": "necrotic core", "2": "oedema", "4": "enhancing rim"}
    assert len(meta["training"]) == 2 and len(meta["validation"]) == 1 and len(meta["modality"]) == 4
    for entry in meta["training"] + meta["validation"]:
        image, label = read_nifti(a / entry["image"]), read_nifti(a / entry["label"])
        again = read_nifti(b / entry["image"])
        np.testing.assert_array_equal(image.array, again.array)
        np.testing.assert_allclose(image.affine, label.affine)
        assert image.array.shape == label.shape + (4,) and np.allclose(image.spacing, 4.0)
        assert set(np.unique(label.array)) <= {0, 1, 2, 4} and (label.array > 0).any()
        assert best_threshold_dice(image.array, label.array) < 0.6
    other = prepare_brain_lesions(tmp_path / "c", n_train=1, n_val=0, spacing_mm=4.0, seed=4)
    first = meta["training"][0]["image"]
    assert not np.array_equal(read_nifti(other / first).array, read_nifti(a / first).array)


def test_prepare_skips_a_complete_dataset(tmp_path):
    root = prepare_brain_lesions(tmp_path, n_train=1, n_val=0, spacing_mm=4.0)
    stamp = (root / "imagesTr" / "lesions_000.nii.gz").stat().st_mtime_ns
    prepare_brain_lesions(tmp_path, n_train=1, n_val=0, spacing_mm=4.0)
    assert (root / "imagesTr" / "lesions_000.nii.gz").stat().st_mtime_ns == stamp


def test_best_threshold_dice_is_one_for_a_separable_image():
    label = np.zeros((8, 8, 8), np.uint8)
    label[2:5, 2:5, 2:5] = 2
    image = np.where(label > 0, 1.0, 0.0) + np.random.default_rng(0).normal(0, 0.1, label.shape)
    assert best_threshold_dice(image, label) == 1.0
    assert best_threshold_dice(-image, label) == 1.0
    assert best_threshold_dice(np.random.default_rng(1).normal(size=label.shape), label) < 0.3


def test_smooth_field_equals_a_cubic_spline_zoom_of_the_coarse_grid():
    shape, cells = (13, 17, 11), 4
    coarse = np.random.default_rng(5).uniform(-1, 1, size=(cells,) * 3)
    expected = ndimage.zoom(coarse, [s / cells for s in shape], order=3, grid_mode=True, mode="nearest")
    np.testing.assert_allclose(smooth_field(shape, np.random.default_rng(5), cells), expected[:13, :17, :11],
                               atol=1e-6)


def test_wheel_cache_follows_toolkit_cache(tmp_path, monkeypatch):
    from toolkit.cache import cache_dir, fetch_wheel

    monkeypatch.setenv("TOOLKIT_CACHE", str(tmp_path))
    wheel = tmp_path / "sources" / "nilearn-0.14.1-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"cached")
    assert cache_dir() == tmp_path and fetch_wheel("nilearn==0.14.1") == wheel
