"""3D segmentation task: label conversion, a train step, sliding-window inference, a tiny end-to-end run, and
prediction on NIfTI and DICOM input with the source geometry kept."""
import json
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
import torch
from PIL import Image

from toolkit.config import Config, TrainConfig
from toolkit.engine.run import train
from toolkit.errors import ConfigError, DataError
from toolkit.inference.sliding_window import SlidingWindow
from toolkit.medical import load_scan, read_nifti, write_dicom_series, write_nifti
from toolkit.medical.networks import build_network, check_roi
from toolkit.medical.synthetic import prepare_brain_lesions
from toolkit.medical.transforms import label_scheme, label_to_regions, regions_to_labels
from toolkit.predict import Predictor
from toolkit.tasks.segment3d import Segment3DData, Segment3DModel, Segment3DTask, collate


def _labels() -> np.ndarray:
    label = np.zeros((1, 6, 5, 4), np.uint8)
    label[0, 1, 1, 1], label[0, 2, 2, 2], label[0, 3, 3, 3] = 1, 2, 4
    return label


def test_brats_labels_become_tc_wt_et_channels():
    from monai.transforms import Compose

    label = _labels()
    regions = Compose(label_to_regions("brats"))({"label": torch.from_numpy(label)})["label"]
    assert regions.shape == (3, 6, 5, 4) and regions.dtype == torch.float32
    tc, wt, et = (r.numpy().astype(bool) for r in regions)
    assert tc[1, 1, 1] and tc[3, 3, 3] and not tc[2, 2, 2]  # core = necrotic (1) + enhancing (4)
    assert wt[1, 1, 1] and wt[2, 2, 2] and wt[3, 3, 3] and wt.sum() == 3  # whole = 1 + 2 + 4
    assert et[3, 3, 3] and et.sum() == 1  # enhancing = 4
    np.testing.assert_array_equal(regions_to_labels(regions), label[0])
    msd = np.select([label == 1, label == 2, label == 4], [2, 1, 3], 0).astype(np.uint8)  # Task01 numbering
    same = Compose(label_to_regions("msd"))({"label": torch.from_numpy(msd)})["label"]
    np.testing.assert_array_equal(same.numpy(), regions.numpy())
    assert label_scheme({"0": "bg", "1": "a", "2": "b", "4": "c"}) == "brats"
    assert label_scheme({"0": "background", "1": "edema", "2": "non-enhancing", "3": "enhancing"}) == "msd"
    with pytest.raises(ConfigError, match="data.labels=brats"):
        label_scheme({"0": "bg", "1": "a"})


def test_train_step_and_sliding_window_on_a_tiny_volume():
    cfg = Config("segment3d", Segment3DData(roi=[32, 32, 32], channels=2), Segment3DModel(arch="unet", init_filters=4),
                 TrainConfig())
    task = Segment3DTask(cfg)
    model = task.build_model(task.classes)
    image = torch.randn(2, 2, 32, 32, 32)
    target = (torch.rand(2, 3, 32, 32, 32) > 0.8).float()
    loss = task.loss(model(image), target)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with torch.no_grad():
        logits = SlidingWindow((32, 32, 32), overlap=0.5)(torch.randn(1, 2, 40, 19, 35), model.eval())
    assert logits.shape == (1, 3, 40, 19, 35)
    with pytest.raises(ConfigError, match=r"data.roi=\[32, 64, 96\]"):
        check_roi("swinunetr", (40, 60, 100))
    with pytest.raises(ConfigError, match="multiple of 8"):
        build_network("segresnet", 4, 3, init_filters=12)
    batch = collate([[{"image": torch.zeros(2, 4, 4, 4), "label": torch.zeros(3, 4, 4, 4)}] * 2,
                     {"image": torch.zeros(2, 5, 4, 4), "label": torch.zeros(3, 5, 4, 4)}])
    assert isinstance(batch["image"], list) and len(batch["image"]) == 3  # different sizes stay a list


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """2 train / 1 val cases at 6 mm, FLAIR only (so one DICOM series is a valid input), 1 epoch."""
    root = tmp_path_factory.mktemp("s3d")
    data = prepare_brain_lesions(root / "data", n_train=2, n_val=1, spacing_mm=6.0, seed=0)
    metrics = train("segment3d", [f"data.source={data}", "data.roi=[32,32,32]", "data.modalities=[3]",
                                  "model.init_filters=8", "train.epochs=1", "train.batch_size=2", "train.threads=2",
                                  f"train.project={root / 'runs'}", "train.progress=false", "train.workers=0"])
    run = root / "runs" / "segment3d" / "exp"
    return {"data": data, "run": run, "metrics": metrics, "root": root}


def test_end_to_end_run_writes_checkpoint_metrics_and_plots(trained):
    run, metrics = trained["run"], trained["metrics"]
    assert (run / "weights" / "best.pt").is_file() and (run / "results.csv").is_file()
    assert {"dice_tc", "dice_wt", "dice_et", "dice_mean", "hd95_wt", "hd95"} <= set(metrics)
    assert 0.0 <= metrics["dice_mean"] <= 1.0
    rows = (run / "cases_val.csv").read_text().splitlines()
    assert rows[0].startswith("case,dice_tc,dice_wt,dice_et,hd95_tc") and rows[1].startswith("lesions_002")
    assert (run / "overlay_val.png").stat().st_size > 1000


def _flair(trained) -> tuple[np.ndarray, np.ndarray]:
    scan = read_nifti(trained["data"] / "imagesTr" / "lesions_002.nii.gz")
    return scan.array[..., 3], scan.affine


def test_predict_nifti_keeps_the_source_affine(trained, tmp_path):
    flair, affine = _flair(trained)
    oblique = affine @ np.diag([-1.0, 1.0, 1.0, 1.0])  # flipped first axis: not RAS, must still come back
    source = write_nifti(flair[::-1].copy(), oblique, tmp_path / "case.nii.gz")
    predictor = Predictor.from_checkpoint(trained["run"] / "weights" / "best.pt")
    (result,) = predictor.predict(source, progress=False)
    files = result.save(tmp_path / "out")
    assert [f.name for f in files] == ["case_mask.nii.gz"]
    mask = read_nifti(files[0])
    np.testing.assert_allclose(mask.affine, oblique)
    assert mask.shape == flair.shape and set(np.unique(mask.array)) <= {0, 1, 2, 4}
    record = result.to_dict()
    voxel_ml = 6.0 ** 3 / 1000
    assert record["wt_ml"] == pytest.approx((mask.array > 0).sum() * voxel_ml, abs=1e-3)
    assert record["spacing_mm"] == [6.0, 6.0, 6.0]


def test_predict_dicom_folder_is_one_scan_with_nifti_and_seg(trained, tmp_path):
    flair, affine = _flair(trained)
    write_dicom_series(flair * 1000, affine, tmp_path / "series", modality="MR")
    predictor = Predictor.from_checkpoint(trained["run"] / "weights" / "best.pt")
    results = predictor.predict(tmp_path / "series", progress=False)
    assert len(results) == 1
    files = {f.name: f for f in results[0].save(tmp_path / "out")}
    assert set(files) == {"series_mask.nii.gz", "series_mask.seg.dcm"}
    np.testing.assert_allclose(read_nifti(files["series_mask.nii.gz"]).affine, load_scan(tmp_path / "series").affine,
                               atol=1e-5)
    seg = hd.seg.segread(files["series_mask.seg.dcm"])
    assert seg.number_of_segments == 3 and seg.Modality == "SEG"


def test_2d_inputs_give_clear_errors(trained, tmp_path):
    predictor = Predictor.from_checkpoint(trained["run"] / "weights" / "best.pt")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "slice.png")
    with pytest.raises(DataError, match="slice.png is a 2D image; the segment3d model needs a 3D scan"):
        predictor.predict(tmp_path / "slice.png")
    write_nifti(np.zeros((16, 16, 1), np.float32), np.eye(4), tmp_path / "flat.nii.gz")
    with pytest.raises(DataError, match=r"flat.nii.gz is a 2D image \(shape \(16, 16, 1\)\)"):
        predictor.predict(tmp_path / "flat.nii.gz")
    write_nifti(np.zeros((16, 16, 16, 2), np.float32), np.eye(4), tmp_path / "two.nii.gz")
    with pytest.raises(DataError, match="has 2 channel\\(s\\); the model was trained on 1"):
        predictor.predict(tmp_path / "two.nii.gz")


def test_predict_cli_on_an_anonymised_dicom_series_writes_a_valid_seg(trained, tmp_path, capsys, dciodvfy_errors):
    """``toolkit predict CKPT series_folder`` on a series without Type 2 patient/study attributes: rc 0, NIfTI,
    SEG (valid for highdicom and dciodvfy), volumes and predictions.json."""
    from tests.helpers.dicom import strip_type2
    from toolkit.cli import main

    flair, affine = _flair(trained)
    write_dicom_series(flair * 1000, affine, tmp_path / "series", modality="MR")
    strip_type2(tmp_path / "series")
    out = tmp_path / "out"
    rc = main(["predict", str(trained["run"] / "weights" / "best.pt"), str(tmp_path / "series"), "progress=false",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    (record,) = json.loads((out / "predictions.json").read_text())
    assert sorted(Path(f).name for f in record["files"]) == ["series_mask.nii.gz", "series_mask.seg.dcm"]
    assert {"tc_ml", "wt_ml", "et_ml", "labels_ml"} <= set(record)
    seg = hd.seg.segread(out / "series_mask.seg.dcm")
    assert seg.number_of_segments == 3 and seg.PatientBirthDate == ""
    assert dciodvfy_errors(out / "series_mask.seg.dcm") == []
