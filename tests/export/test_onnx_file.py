"""What the toolkit accepts as an ONNX file and when it uses one: foreign, damaged and changed files are one-line
errors; a graph that does not predict like PyTorch is refused at export; ``--backend`` picks the engine."""
from __future__ import annotations

import copy
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from toolkit.cli import main
from toolkit.engine import checkpoint, onnx_runtime
from toolkit.engine.onnx_runtime import OnnxModel
from toolkit.errors import ConfigError, ToolkitError
from toolkit.export import export_onnx, graphs
from toolkit.predict import Predictor


@pytest.fixture(scope="module")
def exported(export_runs, tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, its export beside it) of the small segment run."""
    ckpt = export_runs("segment")
    return ckpt, export_onnx(ckpt).path


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_foreign_damaged_and_changed_files_are_one_line_errors(exported, tmp_path: Path, capsys) -> None:
    node = helper.make_node("Identity", ["image"], ["output"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "foreign.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    changed = onnx.load(str(exported[1]))
    weight = next(t for t in changed.graph.initializer if t.raw_data)
    weight.raw_data = bytes(len(weight.raw_data))  # zeroed weights
    onnx.save(changed, str(tmp_path / "changed.onnx"))
    image = str(tmp_path / "x.png")
    for name, expected in (("foreign", "not exported by this toolkit"), ("junk", "not a readable ONNX file"),
                           ("changed", "was changed after export")):
        assert main(["predict", str(tmp_path / f"{name}.onnx"), image]) == 2
        assert expected in _error(capsys)


def test_a_graph_that_differs_from_pytorch_is_refused(export_runs, tmp_path: Path, monkeypatch, capsys) -> None:
    real = graphs.export_graph

    def perturbed(task_name, model, example, opset=graphs.OPSET):
        other = copy.deepcopy(model)
        with torch.no_grad():
            for p in other.parameters():
                p.add_(0.05 * torch.randn_like(p))
        return real(task_name, other, example, opset)

    monkeypatch.setattr(graphs, "export_graph", perturbed)
    out = tmp_path / "bad.onnx"
    assert main(["export", str(export_runs("segment")), "--out", str(out)]) == 2
    line = _error(capsys)
    assert "export refused" in line and "of" in line and "pixels" in line
    assert not out.exists()


def test_backend_choice(exported, tmp_path: Path) -> None:
    ckpt, onnx_file = exported
    assert isinstance(Predictor.from_checkpoint(ckpt, device="cpu").model, OnnxModel)  # auto: the export beside
    assert not isinstance(Predictor.from_checkpoint(ckpt, backend="torch").model, OnnxModel)
    assert isinstance(Predictor.from_checkpoint(onnx_file).model, OnnxModel)
    other = tmp_path / "best.pt"
    other.write_bytes(ckpt.read_bytes())
    (tmp_path / "best.onnx").write_bytes(onnx_file.read_bytes())
    assert onnx_runtime.beside(other) == tmp_path / "best.onnx"  # same bytes: a match
    checkpoint.save(checkpoint.load(ckpt) | {"epoch": 1}, other)  # another checkpoint now
    assert onnx_runtime.beside(other) is None
    assert not isinstance(Predictor.from_checkpoint(other).model, OnnxModel)
    with pytest.raises(ConfigError, match="exported from another checkpoint"):
        Predictor.from_checkpoint(other, backend="onnx")
    with pytest.raises(ConfigError, match="runs on onnxruntime"):
        Predictor.from_checkpoint(onnx_file, backend="torch")


def test_explanations_of_an_onnx_predictor_use_its_checkpoint(exported) -> None:
    """A checkpoint that runs on onnxruntime explains with its PyTorch weights; a bare .onnx file says what is needed."""
    ckpt, onnx_file = exported
    predictor = Predictor.from_checkpoint(ckpt, device="cpu")
    assert predictor.backend == "onnx"
    image = torch.rand(32, 32, 3).numpy()
    (result,) = predictor.explain(image)
    (reference,) = Predictor.from_checkpoint(ckpt, backend="torch").explain(image)
    assert result.heatmaps.keys() == reference.heatmaps.keys()
    for name, heatmap in result.heatmaps.items():
        assert (heatmap == reference.heatmaps[name]).all()
    assert predictor.backend == "onnx"  # predictions still run on onnxruntime
    with pytest.raises(ToolkitError, match="explanations need the PyTorch checkpoint"):
        Predictor.from_checkpoint(onnx_file).explain(image)
