"""The nuclei built-in as instances, the instance Dataset / collate and the augmentation that keeps masks,
boxes and labels in step."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from tests.helpers.instances import make_instance_split
from toolkit.data import builtin, detection_check
from toolkit.data.formats.instance_record import boxes_of
from toolkit.data.formats.instances import detect_instance_format, load_instances
from toolkit.data.instance_dataset import InstanceDataset, collate
from toolkit.data.nuclei import nuclei_instances
from toolkit.data.transforms import Augment, instance_pipeline


def test_nuclei_instances_match_the_detection_split() -> None:
    """Same tiles as the detector's; objects = its boxes, crowd = its ignore regions; the label-image copy holds
    the same pixels (with the cut nuclei as plain objects: the format has no crowd)."""
    root = builtin.prepare("nuclei")
    inst, det = nuclei_instances(), detection_check.load(root / "coco")
    info = json.loads((root / "info.json").read_text())
    assert {s: d.describe() for s, d in inst.items()} == {"train": "35 images, 304 objects + 57 ignore regions",
                                                          "val": "4 images, 28 objects + 6 ignore regions"}
    for split in ("train", "val"):
        assert inst[split].num_objects == det[split].num_boxes == info[split]["instances"]
        assert inst[split].num_crowd == det[split].num_ignored
        i_recs, d_recs = (sorted(d.records, key=lambda r: r.path.name) for d in (inst[split], det[split]))
        assert [r.path.name for r in i_recs] == [r.path.name for r in d_recs]
        for i_rec, d_rec in zip(i_recs, d_recs):
            assert np.array_equal(i_rec.boxes()[i_rec.crowd == 0], d_rec.boxes)  # same order: by label id
    labels = root / "instances"
    assert detect_instance_format(labels) == "labels"
    from_labels = load_instances(labels)
    for split in ("train", "val"):
        assert from_labels[split].classes == ["nucleus"]
        assert from_labels[split].num_objects == inst[split].num_objects + inst[split].num_crowd
        rec = {r.path.name: r for r in from_labels[split].records}
        for other in inst[split].records:
            assert np.array_equal(rec[other.path.name].masks(), other.masks())


def test_dataset_and_collate(tmp_path: Path) -> None:
    data = make_instance_split(tmp_path, 2)
    ds = InstanceDataset(data, instance_pipeline(96, train=False, aug=Augment()))
    item = ds[1]
    assert item["image"].shape == (3, 80, 96) and item["image"].dtype == torch.float32 and item["scale"] == 2.0
    assert item["masks"].shape == (3, 80, 96) and item["masks"].dtype == torch.uint8
    expected = data.records[1].boxes() * 2  # a 2x upscale: boxes (x2/y2 exclusive) double
    assert torch.allclose(item["boxes"], torch.from_numpy(expected))
    batch = collate([ds[0], item])
    target = batch["targets"][1]
    assert set(target) == {"boxes", "labels", "masks", "iscrowd"} and target["masks"].shape == (3, 80, 96)
    assert batch["index"].tolist() == [0, 1] and batch["scale"].tolist() == [2.0, 2.0]


def test_augmentation_keeps_masks_boxes_and_labels_in_step(tmp_path: Path) -> None:
    data = make_instance_split(tmp_path, 1, classes=("a", "b", "c"))
    rec = data.records[0]
    aug = Augment(hflip=0.5, vflip=0.5, rotate90=0.5, translate=0.2, scale=0.2, rotate=20)
    pipe = instance_pipeline(48, train=True, aug=aug, seed=3, crop=0.3)
    image = np.zeros((rec.height, rec.width, 3), np.float32)
    masks = rec.masks()
    for k, mask in enumerate(masks):  # each object's pixels carry its class: labels must stay with masks
        image[mask > 0] = (rec.labels[k] + 1) / 4
    dropped = 0
    for _ in range(20):
        out = pipe({"image": image, "masks": masks, "labels": rec.labels, "crowd": np.array([0, 1, 0])})
        m = out["masks"].numpy()
        assert m.reshape(len(m), -1).any(axis=1).all()  # no empty mask survives
        assert np.array_equal(out["boxes"].numpy(), boxes_of(m))
        dropped += len(masks) - len(m)
        gray = out["image"][0].numpy()
        for k in range(len(m)):  # interpolation blurs the edges: look at the pixel deepest inside the mask
            depth = ndimage.distance_transform_edt(np.pad(m[k], 1))[1:-1, 1:-1]
            if depth.max() >= 2:
                assert abs(gray.flat[depth.argmax()] - (out["labels"][k].item() + 1) / 4) < 0.05
        assert len(out["crowd"]) == len(m) and set(out["crowd"].tolist()) <= {0, 1}
    assert dropped > 0  # the crop cut some objects out entirely
