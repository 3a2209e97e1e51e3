"""``toolkit train|val|predict|export|data|weights|app``: parse, call, print. Errors -> one line, exit 2."""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

from toolkit.errors import ToolkitError

EXAMPLES = """examples:
  toolkit train classify                                   # Fashion-MNIST, the default recipe
  toolkit train classify data=path/to/imagefolder model.backbone=mobilenet_v2 model.pretrained=true
  toolkit val runs/classify/exp/weights/best.pt
  toolkit predict runs/classify/exp/weights/best.pt images/ top_k=3
  toolkit data prepare fashion-mnist
  toolkit data check path/to/detection_dataset              # every bad box/label, with file and line
  toolkit data convert path/to/yolo_dataset --to coco --out path/to/coco_dataset
  toolkit weights fetch mobilenet_v2
  toolkit app detection                                    # Streamlit demo (also: toolkit app medical)
  torchrun --nproc_per_node=2 -m toolkit train classify    # DDP
"""


def _options(items: list[str]) -> dict[str, Any]:
    from toolkit.config import parse_value

    out = {}
    for item in items:
        if "=" not in item:
            raise ToolkitError(f"option '{item}' is not of the form key=value (e.g. conf=0.3)")
        key, value = item.split("=", 1)
        out[key] = parse_value(value)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from toolkit.engine.run import train

    metrics = train(args.task, args.overrides)
    return 0 if metrics is not None else 1


def cmd_val(args: argparse.Namespace) -> int:
    from toolkit.engine.run import validate

    metrics, report, plots = validate(args.checkpoint, args.overrides, args.split, args.device)
    print(report)
    for p in plots:
        print(f"wrote {p}")
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2))
        print(f"wrote {args.json}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from toolkit.predict import Predictor

    sources, options = [], {}
    for item in args.inputs:
        (options.update(_options([item])) if "=" in item and not Path(item).exists() else sources.append(item))
    if not sources:
        raise ToolkitError("give at least one image, folder or volume to predict on")
    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    records, failures, coco_results = [], [], []

    def report(error: ToolkitError) -> None:
        failures.append(error)
        print(f"skipped: {one_line(error)}", file=sys.stderr)

    for result in predictor.stream(sources, on_error=report, **options):
        record = result.to_dict()
        record["files"] = [str(p) for p in result.save(out_dir)]
        if hasattr(result, "to_coco"):  # detections: also a COCO results file, image_id = input order
            record["image_id"] = len(records)
            coco_results += result.to_coco(len(records))
        records.append(record)
        print(_summary_line(record))
    (out_dir / "predictions.json").write_text(json.dumps(records, indent=2))
    if coco_results or any("image_id" in r for r in records):
        (out_dir / "coco_results.json").write_text(json.dumps(coco_results))
        print(f"COCO results (image_id = input order) -> {out_dir / 'coco_results.json'}")
    _write_csv(records, out_dir / "predictions.csv")
    print(f"{len(records)} predictions -> {out_dir / 'predictions.json'}, {out_dir / 'predictions.csv'}")
    if failures:
        print(f"error: {len(failures)} input(s) could not be read (listed above)", file=sys.stderr)
        return 2
    return 0


def _summary_line(record: dict[str, Any]) -> str:
    shown = {k: v for k, v in record.items() if isinstance(v, (str, int, float)) and k != "source"}
    text = "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
    return f"{record.get('source', '')}: {text}"


def _write_csv(records: list[dict[str, Any]], path: Path) -> None:
    import csv

    columns = [k for k, v in records[0].items() if isinstance(v, (str, int, float))] if records else []
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)


def cmd_export(args: argparse.Namespace) -> int:
    from toolkit.export import export_onnx

    path, error = export_onnx(args.checkpoint, args.out, args.size, args.opset)
    print(f"wrote {path} (max |onnx - torch| = {error:.2e}); "
          f"use it with toolkit.export.load_onnx_predictor('{path}')")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from toolkit.data import builtin

    if args.action in ("check", "convert"):
        return _data_check_or_convert(args)
    import toolkit.data.datasets  # noqa: F401  (registers every built-in dataset)

    if args.action == "prepare":
        if not args.names:
            raise ToolkitError("name the datasets to prepare; `toolkit data list` shows them")
        for name in args.names:
            print(f"{name}: {builtin.prepare(name)}")
        return 0
    from toolkit.registry import DATASETS

    for name in DATASETS.names():
        print(f"{name:16} {builtin.data_dir(name)}")
    return 0


def _data_check_or_convert(args: argparse.Namespace) -> int:
    """``check PATH``: list every problem of a detection dataset; ``convert SRC --to FMT [--out DST]``."""
    from toolkit.data import detection_check

    if len(args.names) != 1:
        raise ToolkitError(f"`toolkit data {args.action}` takes one dataset path")
    src = Path(args.names[0])
    if args.action == "convert":
        if not args.to:
            raise ToolkitError("say the target format: --to coco|yolo|voc")
        dst = Path(args.out) if args.out else src.with_name(f"{src.name}-{args.to}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = detection_check.convert(src, args.to, dst)
        for w in caught:
            print(f"note: {w.message}")
        print(f"wrote {out}")
        return 0
    problems = detection_check.check(src)
    for problem in problems:
        print(problem)
    fmt = detection_check.detect_format(src) if src.exists() else "?"
    print(f"{src} ({fmt}): {len(problems)} problem(s)" if problems else f"{src} ({fmt}): no problems found")
    return 2 if problems else 0


def cmd_weights(args: argparse.Namespace) -> int:
    from toolkit.backbones import weights

    for name in args.names:
        print(f"{name}: {weights.fetch(name, args.weights or True)}")
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    """``streamlit run apps/<name>.py`` from the repository root (where ``.streamlit/config.toml`` lives); the
    app lists the runs under ``$TOOLKIT_RUNS``, by default ``runs/`` of the current folder."""
    import importlib.util
    import os
    import subprocess

    root = Path(__file__).resolve().parent.parent
    script = root / "apps" / f"{args.name}.py"
    if not script.is_file():
        raise ToolkitError(f"{script} not found: the apps ship with the source tree; run from a clone of it")
    if importlib.util.find_spec("streamlit") is None:
        raise ToolkitError("streamlit is not installed; run `pip install -e '.[apps]'`")
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(args.port)]
    env = {**os.environ, "TOOLKIT_RUNS": os.environ.get("TOOLKIT_RUNS", str(Path.cwd() / "runs"))}
    try:
        return subprocess.call(cmd, cwd=root, env=env)
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toolkit", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model: toolkit train TASK [key=value ...]")
    p.add_argument("task", help="classify | detect | segment | segment3d")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. data=digits train.epochs=5")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("val", help="evaluate a checkpoint: toolkit val CKPT [data=...]")
    p.add_argument("checkpoint")
    p.add_argument("overrides", nargs="*", help="e.g. data=path/to/other/dataset")
    p.add_argument("--split", default="val", choices=["val", "test"])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write the metrics to this JSON file")
    p.set_defaults(func=cmd_val)

    p = sub.add_parser("predict", help="predict: toolkit predict CKPT INPUT... [conf=0.3 iou=0.5 top_k=5]")
    p.add_argument("checkpoint")
    p.add_argument("inputs", nargs="+", help="images, folders or volumes; key=value options")
    p.add_argument("--out", default="runs/predict", help="output folder")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export to ONNX with a parity check: toolkit export CKPT")
    p.add_argument("checkpoint")
    p.add_argument("--out", help="output .onnx path (default: next to the checkpoint)")
    p.add_argument("--size", type=int, default=0, help="example input side in pixels")
    p.add_argument("--opset", type=int, default=17)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("data", help="datasets: toolkit data prepare NAME | list | check PATH | "
                                    "convert SRC --to coco|yolo|voc")
    p.add_argument("action", choices=["prepare", "list", "check", "convert"])
    p.add_argument("names", nargs="*", help="built-in dataset names, or one dataset path")
    p.add_argument("--to", choices=["coco", "yolo", "voc"], help="convert: target format")
    p.add_argument("--out", help="convert: output folder (default: SRC-<format> beside SRC)")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("weights", help="pretrained weights: toolkit weights fetch NAME")
    p.add_argument("action", choices=["fetch"])
    p.add_argument("names", nargs="+", help="torchvision model names, e.g. mobilenet_v2")
    p.add_argument("--weights", help="a weights enum name, e.g. IMAGENET1K_V2 (default: DEFAULT)")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("app", help="start a Streamlit app: toolkit app detection|medical [--port N]")
    p.add_argument("name", choices=["detection", "medical"])
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=cmd_app)
    return parser


def one_line(error: BaseException) -> str:
    """The user-facing line of an error, also when it was re-raised from a DataLoader worker."""
    text = str(error).strip()
    if text.startswith("Caught ") and "\n" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[-1] if last.startswith("toolkit.errors.") else last
    return text.splitlines()[0] if text else type(error).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except ToolkitError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last finished epoch's checkpoint is kept (weights/last.pt)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
