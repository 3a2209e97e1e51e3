"""Every detector architecture exports with its post-processing in the graph, and the graph runs at other image
shapes than the one it was traced on (as the toolkit feeds it: longest side ``data.img_size``), finding what
PyTorch finds."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.export.conftest import detection_data, write_run
from toolkit.engine.checkpoint import restore
from toolkit.engine.onnx_runtime import OnnxModel
from toolkit.export import graphs, parity


@pytest.fixture(scope="module")
def boxes(tmp_path_factory) -> Path:
    return detection_data(tmp_path_factory.mktemp("boxes"))


# noise on the class-score layers: an untrained model scores its boxes alike (sigmoid heads: all near the 0.01
# prior), and which of equal-scored boxes survive NMS is then decided by float rounding
@pytest.mark.parametrize("arch, noise", [("fasterrcnn", 0.5), ("retinanet", 0.02), ("fcos", 0.02), ("ssdlite", 0.5)])
def test_detector_graph_matches_pytorch_at_other_sizes(arch: str, noise: float, boxes: Path, tmp_path: Path) -> None:
    ckpt = write_run("detect", tmp_path, {"data": {"source": str(boxes), "img_size": 64},
                                          "model": {"arch": arch, "backbone": "simple_cnn", "detections_per_img": 10}},
                     head_noise=noise)
    task, model, _ = restore(ckpt, "cpu", backend="torch")
    dataset, _ = parity.val_inputs(task)
    proto, io = graphs.export_graph("detect", model, parity.example_input(task, model, dataset))
    graph = OnnxModel(proto.SerializeToString(), io)
    wanted = matched = 0
    torch.manual_seed(0)
    for size in ((64, 48), (40, 64), (64, 24)):  # traced on 64 x 64; the toolkit resizes to a longest side of 64
        image = dataset[0]["image"]
        image = torch.nn.functional.interpolate(image[None], size=size, mode="bilinear")[0].clamp(0, 1)
        with torch.no_grad():
            (ours,), (theirs,) = model([image]), graph([image])
        n, found, shift = parity.match_boxes(ours, theirs, conf=0.0)
        wanted, matched = wanted + n, matched + found
        assert shift <= parity.BOX_ATOL
    assert wanted and matched >= 0.8 * wanted  # Faster R-CNN's untrained RPN still ties a few proposals
