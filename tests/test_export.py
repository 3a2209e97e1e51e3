from pathlib import Path

import numpy as np
import pytest

from toolkit import load_predictor
from toolkit.errors import ToolkitError
from toolkit.export import export_onnx, load_onnx_predictor


def test_onnx_export_matches_pytorch_predictions(digits_checkpoint: Path, digits_arrays, tmp_path: Path) -> None:
    path, error = export_onnx(digits_checkpoint, tmp_path / "m.onnx")
    assert error < 1e-4
    images = [digits_arrays["x_test"][i] for i in range(6)]
    torch_results = load_predictor(digits_checkpoint).predict(images)
    onnx_results = load_onnx_predictor(path).predict(images)
    for a, b in zip(torch_results, onnx_results):
        assert a.top[0][0] == b.top[0][0]
        assert np.isclose(a.top[0][1], b.top[0][1], atol=1e-4)


def test_foreign_onnx_file_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["image"], ["output"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "x.onnx"))
    with pytest.raises(ToolkitError, match="not exported by this toolkit"):
        load_onnx_predictor(tmp_path / "x.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ToolkitError, match="cannot load it"):
        load_onnx_predictor(tmp_path / "junk.onnx")
