"""onnxruntime against eager PyTorch on the CPU, per task: latency at batch 1 and throughput at batch 8 of each
task's default model (``toolkit/configs/<task>.yaml``: mobilenet_v2 classifier at 224 px, U-Net mobilenet_v2 on
256-px crops, Faster R-CNN mobilenet_v2-FPN at 448 px as the nuclei recipe, 3D U-Net on 64^3 windows), in one run.

Weights do not change the cost of a dense network, so the default models are random; a detector's cost does depend
on what it finds, so ``--checkpoint detect=PATH`` (any task) times a trained run instead (a detector on its own val
images), and also exports it with the parity check on its val data, whose figures join the table.

    python benchmarks/deploy_speed.py [--checkpoint detect=runs/detect/exp/weights/best.pt ...] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import load_average, write  # noqa: E402

from toolkit import config as config_mod  # noqa: E402
from toolkit.engine import checkpoint  # noqa: E402
from toolkit.engine.onnx_runtime import OnnxModel  # noqa: E402
from toolkit.export import export_onnx, graphs, parity  # noqa: E402
from toolkit.tasks import task_class  # noqa: E402

TASKS = ("classify", "segment", "detect", "segment3d")
SIZES = {"classify": 224, "segment": 256, "detect": 448}  # input side (px) of the default models


def default_model(task: str) -> tuple[Any, torch.nn.Module]:
    """(task, eval model with random weights) of ``configs/<task>.yaml``; detect as the nuclei recipe."""
    cls = task_class(task)
    recipes = [task, "detect-nuclei"] if task == "detect" else [task]
    cfg = config_mod.load(task, cls.DataConfig, cls.ModelConfig, [], recipes=recipes)
    instance = cls(cfg)
    if task in ("classify", "segment"):
        instance.channels = cfg.data.channels = 3
    if task == "segment3d":
        cfg.data.channels = 4
    torch.manual_seed(0)
    return instance, instance.build_model(["a", "b"] if task != "segment3d" else instance.classes, pretrained=False)


def batch_of(task: Any, n: int, images: list[torch.Tensor] | None = None) -> Any:
    """``n`` inputs as the model takes them: a list of images for detection (``images`` in turn when given: a
    detector's cost depends on what it sees), else a batch tensor."""
    torch.manual_seed(1)
    if task.name == "detect":
        return [images[i % len(images)] if images else torch.rand(3, SIZES["detect"], SIZES["detect"])
                for i in range(n)]
    if task.name == "segment3d":
        return torch.randn(n, task.cfg.data.channels, *task.cfg.data.roi)
    return torch.randn(n, 3, SIZES[task.name], SIZES[task.name])


def seconds(runs: dict[str, Callable[[], Any]], repeats: int, warmup: int = 3) -> dict[str, tuple[float, float]]:
    """{name: (median wall seconds, median CPU seconds of all this process's threads)} of ``repeats`` calls of each
    ``run()``, one run after the other, each after ``warmup`` untimed calls (oneDNN needs more than one to settle on
    3D convolutions; the threads of one runtime keep spinning for a while after it returns, and would slow the other
    if they took turns). Wall time is what a user waits for; CPU time also counts idle threads spinning."""
    timed = {}
    for name, run in runs.items():
        for _ in range(warmup):
            run()
        pairs = []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            pairs.append((time.perf_counter() - wall, time.process_time() - cpu))
        timed[name] = (statistics.median(t[0] for t in pairs), statistics.median(t[1] for t in pairs))
    return timed


def compare(task: Any, model: torch.nn.Module, repeats: int, images: list[torch.Tensor] | None = None
            ) -> dict[str, Any]:
    example = batch_of(task, 1, images)
    proto, io = graphs.export_graph(task.name, model, example[0] if task.name == "detect" else example)
    onnx_model = OnnxModel(proto.SerializeToString(), io)
    row: dict[str, Any] = {"task": task.name}
    for batch in (1, 8):
        inputs = batch_of(task, batch, images)
        with torch.no_grad():
            timed = seconds({"torch": lambda: model(inputs), "onnx": lambda: onnx_model(inputs)}, repeats)
        (torch_wall, torch_cpu), (onnx_wall, onnx_cpu) = timed["torch"], timed["onnx"]
        if batch == 1:
            row.update({"torch_ms_b1": round(torch_wall * 1000, 1), "onnx_ms_b1": round(onnx_wall * 1000, 1),
                        "speedup_b1": round(torch_wall / onnx_wall, 2),
                        "speedup_b1_cpu": round(torch_cpu / onnx_cpu, 2)})
        else:
            row.update({"torch_per_s_b8": round(batch / torch_wall, 1), "onnx_per_s_b8": round(batch / onnx_wall, 1),
                        "speedup_b8": round(torch_wall / onnx_wall, 2)})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="TASK=PATH: time (and export with "
                                                                          "parity) this trained run instead")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="threads of both runtimes (default: PyTorch's, all cores, as predict and the apps run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trained = dict(item.split("=", 1) for item in args.checkpoint)
    rows = []
    for name in args.tasks:
        if name in trained:
            done = export_onnx(trained[name], Path("runs/bench") / f"deploy_{name}.onnx")
            task, model, _ = checkpoint.restore(trained[name], "cpu", backend="torch")
            dataset, _ = parity.val_inputs(task)  # real inputs: the run's val images
            images = [torch.as_tensor(dataset[i]["image"]) for i in range(len(dataset))] if name == "detect" else None
            row = {**compare(task, model, args.repeats, images), "model": trained[name],
                   "parity": done.parity.summary}
        else:
            task, model = default_model(name)
            row = {**compare(task, model.eval(), args.repeats), "model": f"configs/{name}.yaml (random weights)"}
        rows.append(row)
        print(row, flush=True)
    write("deploy_speed", rows, f"{os.cpu_count()} CPU cores, torch and onnxruntime on {args.threads} thread(s); "
                                f"wall time (speedup_b1_cpu: CPU time), median of {args.repeats}; load average at the "
                                f"end {load_average()}")


if __name__ == "__main__":
    main()
