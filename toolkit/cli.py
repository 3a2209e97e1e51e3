"""The ``toolkit`` command: parse the arguments, call the toolkit, print. A ToolkitError is one line, exit 2."""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

from toolkit.errors import ToolkitError

DESCRIPTION = """Train, fine-tune, evaluate and deploy CNNs for classification, detection, 2D segmentation
and 3D tumour segmentation, on built-in demo datasets or your own folders and scans.

Every training run is configured by a recipe (toolkit/configs/<task>.yaml) and key=value overrides;
`toolkit train TASK --help` (or `toolkit config TASK`) lists every key with its value and meaning."""

EXAMPLES = """examples:
  toolkit train classify                                   # Fashion-MNIST quickstart
  toolkit train classify data=path/to/imagefolder          # your images: ImageNet mobilenet_v2 fine-tune
  toolkit train detect data=path/to/yolo_or_coco train.epochs=30
  toolkit train detect --help                              # every config key of the detect recipe
  toolkit train instance data=path/to/label_images         # one mask per object (Mask R-CNN); data=nuclei: demo
  toolkit val runs/classify/exp/weights/best.pt
  toolkit predict runs/classify/exp/weights/best.pt images/ top_k=3
  toolkit export runs/detect/exp/weights/best.pt           # ONNX beside it; predict/val/apps then use onnxruntime
  toolkit explain runs/classify/exp/weights/best.pt image.png method=gradcam++ target=Coat
  toolkit explain runs/classify/exp/weights/best.pt image.png layers   # feature maps, filters
  toolkit data prepare fashion-mnist
  toolkit data check path/to/detection_dataset              # every bad box/label, with file and line
  toolkit data convert path/to/yolo_dataset --to coco --out path/to/coco_dataset
  toolkit weights fetch mobilenet_v2
  toolkit app detection                                    # Streamlit demo (also: toolkit app medical|classify)
  torchrun --nproc_per_node=2 -m toolkit train classify    # DDP
"""


BACKEND_HELP = ("auto: onnxruntime for a .onnx file, or on the CPU when `toolkit export` wrote one for this checkpoint "
                "beside it; torch; onnx")


def _options(items: list[str]) -> dict[str, Any]:
    from toolkit.config import parse_value

    out = {}
    for item in items:
        if "=" not in item:
            raise ToolkitError(f"option '{item}' is not of the form key=value (e.g. conf=0.3)")
        key, value = item.split("=", 1)
        out[key] = parse_value(value)
    return out


def cmd_config(args: argparse.Namespace) -> int:
    """Print the resolved config of ``TASK`` (recipe < cfg= < overrides): every key, its value and meaning."""
    from toolkit.config import describe
    from toolkit.engine.run import resolve

    cfg, notes = resolve(args.task, args.overrides)
    rows = [(key, json.dumps(value), meaning) for key, value, meaning in describe(cfg)]
    width = max(len(k) for k, _, _ in rows) + 1
    vwidth = min(24, max(len(v) for _, v, _ in rows)) + 1
    print(f"toolkit train {args.task} {' '.join(args.overrides)}".rstrip() + " resolves to (key value  meaning):")
    for key, value, meaning in rows:
        print(f"  {key:<{width}} {value:<{vwidth}} {meaning}".rstrip())
    for note in notes:
        print(note)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from toolkit.engine.run import train

    if args.help or not args.task:
        if not args.task:
            args.parser.print_help()
            return 0
        return cmd_config(args)
    metrics = train(args.task, args.overrides)
    return 0 if metrics is not None else 1


def cmd_val(args: argparse.Namespace) -> int:
    from toolkit.engine.ensemble import default_split
    from toolkit.engine.run import val_dir, validate

    split = args.split or default_split(args.checkpoint)
    out_dir = val_dir(args.checkpoint, split, args.out)
    metrics, report, plots = validate(args.checkpoint, args.overrides, split, args.device, out_dir, args.backend)
    print(report)
    print(f"evaluation outputs -> {out_dir}")
    for p in plots:
        print(f"wrote {p}")
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2))
        print(f"wrote {args.json}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict on every input, printing each result as it comes, with a progress bar and ETA on stderr; one that
    cannot be read, predicted or saved is reported on one line and skipped, the others go on, and the exit code is
    then 2."""
    from tqdm.auto import tqdm

    from toolkit.predict import INPUT_FAILURES, Predictor

    sources, options = _predict_arguments(args.inputs)
    predictor = Predictor.from_checkpoint(args.checkpoint, args.device, backend=args.backend)
    batch_size = options.pop("batch_size", 8)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ToolkitError(f"batch_size={batch_size!r} must be a positive integer")
    predictor.check_options(options)
    out_dir = Path(args.out)
    _writing(out_dir, lambda: out_dir.mkdir(parents=True, exist_ok=True))
    records, failed, coco_results = [], [], []
    report = _skip_reporter(failed)
    inputs = predictor.expand_inputs(sources, on_error=report)
    missing = len(failed)  # inputs not found: not in the bar's total
    bar = tqdm(total=len(inputs), desc="predict", unit="input", file=sys.stderr, dynamic_ncols=True)
    for result in predictor.stream(inputs, batch_size=batch_size, on_error=report, **options):
        bar.update(len(records) + len(failed) - missing + 1 - bar.n)  # this result and the inputs skipped so far
        record = result.to_dict()
        try:
            record["files"] = [str(p) for p in result.save(out_dir)]
        except INPUT_FAILURES as e:
            report(str(record.get("source", "input")), e)
            continue
        if hasattr(result, "to_coco"):  # detections: also a COCO results file, image_id = input order
            record["image_id"] = len(records)
            coco_results += result.to_coco(len(records))
        records.append(record)
        tqdm.write(_summary_line(record), file=sys.stdout)
    bar.update(len(inputs) - bar.n)
    bar.close()
    _writing(out_dir, lambda: _write_outputs(records, coco_results, out_dir))
    if failed:
        print(f"error: {len(failed)} of {len(failed) + len(records)} input(s) could not be read, predicted or saved "
              "(listed above)", file=sys.stderr)
        return 2
    return 0


def _predict_arguments(items: list[str], verb: str = "predict on") -> tuple[list[str], dict[str, Any]]:
    """``toolkit predict`` arguments -> (inputs, ``key=value`` options); an existing path is always an input."""
    sources, options = [], {}
    for item in items:
        (options.update(_options([item])) if "=" in item and not Path(item).exists() else sources.append(item))
    if not sources:
        raise ToolkitError(f"give at least one image, folder or volume to {verb}")
    return sources, options


def _skip_reporter(failed: list[str]) -> Callable[[str, Exception], None]:
    """``report(source, error)``: prints the input's error on one line and adds the input to ``failed``."""
    def report(source: str, error: Exception) -> None:
        failed.append(source)
        from tqdm.auto import tqdm

        reason = one_line(error)  # tqdm.write: the line goes above a running progress bar, not into it
        tqdm.write(f"skipped: {reason}" if source in reason else f"skipped: {source}: {reason}", file=sys.stderr)
    return report


def cmd_explain(args: argparse.Namespace) -> int:
    """Heatmaps of every input (with the word ``layers``: feature maps and filters) saved under ``--out``; an input
    that cannot be read or explained is reported on one line and skipped, the others go on, and the exit code is
    then 2."""
    from toolkit.predict import INPUT_FAILURES, Predictor

    if args.checkpoint.lower().endswith(".onnx"):
        raise ToolkitError(f"{args.checkpoint} is an ONNX export; explanations need the PyTorch checkpoint (.pt) it "
                           "was exported from, e.g. runs/<task>/<name>/weights/best.pt")
    layers = [item for item in args.inputs if item == "layers" and not Path(item).exists()]
    sources, options = _predict_arguments([i for i in args.inputs if i not in layers], "explain")
    method = "layers" if layers else str(options.pop("method")) if "method" in options else None
    target, layer = options.pop("target", None), options.pop("layer", None)
    predictor = Predictor.from_checkpoint(args.checkpoint, args.device, backend="torch")
    out_dir, failed, done = Path(args.out), [], 0
    report = _skip_reporter(failed)
    for result in predictor.explain(sources, method, target, None if layer is None else str(layer), report,
                                    **options):
        try:
            files = result.save(out_dir)
        except INPUT_FAILURES as e:
            report(result.source, e)
            continue
        done += 1
        scores = [f"{t['target']} (score {t['score']:.4f})" if t.get("score") is not None else str(t["target"])
                  for t in result.to_dict().get("targets", [])]
        what = f"{result.method} @ {result.layer}: {', '.join(scores)}" if scores else "feature maps and filters"
        print(f"{result.source}: {what} -> {len(files)} files")
    print(f"{done} explanation(s) -> {out_dir}")
    if failed:
        print(f"error: {len(failed)} of {len(failed) + done} input(s) could not be read, explained or saved "
              "(listed above)", file=sys.stderr)
        return 2
    return 0


def _writing(out_dir: Path, write: Callable[[], Any]) -> None:
    """``write()``; an OS error (read-only folder, disk full) becomes a one-line ToolkitError naming ``out_dir``."""
    try:
        write()
    except OSError as e:
        raise ToolkitError(f"cannot write the predictions to {out_dir}: {e.strerror or e}; pass another --out") from None


def _write_outputs(records: list[dict[str, Any]], coco_results: list[dict[str, Any]], out_dir: Path) -> None:
    """predictions.json, predictions.csv and (detection) coco_results.json in ``out_dir``."""
    (out_dir / "predictions.json").write_text(json.dumps(records, indent=2))
    if coco_results or any("image_id" in r for r in records):
        (out_dir / "coco_results.json").write_text(json.dumps(coco_results))
        print(f"COCO results (image_id = input order) -> {out_dir / 'coco_results.json'}")
    _write_csv(records, out_dir / "predictions.csv")
    print(f"{len(records)} predictions -> {out_dir / 'predictions.json'}, {out_dir / 'predictions.csv'}")


def _summary_line(record: dict[str, Any]) -> str:
    shown = {k: v for k, v in record.items() if isinstance(v, (str, int, float)) and k != "source"}
    text = "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
    return f"{record.get('source', '')}: {text}"


def _write_csv(records: list[dict[str, Any]], path: Path) -> None:
    """The records' scalar fields (those of the first record) as CSV."""
    from toolkit.safe_io import atomic_write_csv

    columns = [k for k, v in records[0].items() if isinstance(v, (str, int, float))] if records else []
    atomic_write_csv(records, columns, path)


def cmd_export(args: argparse.Namespace) -> int:
    """Export to ONNX after parity with PyTorch on the run's val inputs; a mismatch is one line, exit 2."""
    from toolkit.export import export_onnx

    done = export_onnx(args.checkpoint, args.out, args.overrides, args.opset, args.limit)
    print(f"parity ({done.task}): {done.parity.summary}")
    print(f"wrote {done.path}; use it like a checkpoint: toolkit predict {done.path} INPUT, toolkit val {done.path}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from toolkit.data import builtin

    if args.action in ("check", "convert"):
        return _data_check_or_convert(args)
    if args.action == "prepare":
        if not args.names:
            raise ToolkitError("name the datasets to prepare; `toolkit data list` shows them")
        for name in args.names:
            print(f"{name}: {builtin.prepare(name)}")
        return 0
    for name in builtin.names():
        print(f"{name:16} {builtin.data_dir(name)}")
    return 0


def _data_check_or_convert(args: argparse.Namespace) -> int:
    """``check PATH``: list every problem of a detection or instance dataset (one with masks: label images,
    COCO ``segmentation``, YOLO polygons); ``convert SRC --to FMT [--out DST]``."""
    from toolkit.data import detection_check
    from toolkit.data.formats import instances

    if len(args.names) != 1:
        raise ToolkitError(f"`toolkit data {args.action}` takes one dataset path")
    src = Path(args.names[0])
    masks = instances.holds_masks(src)
    if args.action == "convert":
        if not args.to:
            raise ToolkitError("say the target format: --to coco|yolo|voc (boxes) or coco|yolo|labels (masks)")
        dst = Path(args.out) if args.out else src.with_name(f"{src.name}-{args.to}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if args.to == "labels" or (masks and args.to in instances.FORMATS):
                out = instances.convert_instances(src, args.to, dst)
            else:
                out = detection_check.convert(src, args.to, dst)
        for w in caught:
            if not issubclass(w.category, DeprecationWarning):
                print(f"note: {w.message}")
        print(f"wrote {out}")
        return 0
    problems = instances.check_instances(src) if masks else detection_check.check(src)
    for problem in problems:
        print(problem)
    if masks:
        fmt = f"{instances.detect_instance_format(src)}, instance masks"
    else:
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
    parser = argparse.ArgumentParser(prog="toolkit", description=DESCRIPTION, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", add_help=False, help="train a model: toolkit train TASK [key=value ...]",
                       description="Train TASK on its recipe with key=value overrides. With --help after TASK, "
                                   "print every config key of the resolved recipe, its value and meaning.")
    p.add_argument("task", nargs="?", help="classify | detect | instance | segment | segment3d")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. data=path/to/dataset train.epochs=5")
    p.add_argument("-h", "--help", action="store_true", help="show the config keys of TASK's recipe")
    p.set_defaults(func=cmd_train, parser=p)

    p = sub.add_parser("config", help="print a task's resolved config: toolkit config TASK [key=value ...]")
    p.add_argument("task", help="classify | detect | instance | segment | segment3d")
    p.add_argument("overrides", nargs="*", help="e.g. data=path/to/dataset (picks the recipe the run would use)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("val", help="evaluate a checkpoint, or a cross-validation run's folds as an ensemble: "
                                   "toolkit val CKPT|RUN_DIR [data=...]")
    p.add_argument("checkpoint")
    p.add_argument("overrides", nargs="*", help="e.g. data=path/to/other/dataset")
    p.add_argument("--split", choices=["val", "test"], help="default: test for a cross-validation run (its folds "
                                                           "as an ensemble), else val")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write the metrics to this JSON file")
    p.add_argument("--out", help="folder for the plots (default: <run>/val-<split> of the checkpoint's run, or "
                                 "runs/val/<name>-<split> for a checkpoint outside a run)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto", help=BACKEND_HELP)
    p.set_defaults(func=cmd_val)

    p = sub.add_parser("predict", help="predict: toolkit predict CKPT|RUN_DIR|CKPT,CKPT INPUT... [conf=0.3 iou=0.5 "
                                       "top_k=5]; a run directory of folds or several checkpoints: an ensemble")
    p.add_argument("checkpoint")
    p.add_argument("inputs", nargs="+", help="images, folders or volumes; key=value options")
    p.add_argument("--out", default="runs/predict", help="output folder")
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto", help=BACKEND_HELP)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="heatmaps: toolkit explain CKPT INPUT... [method=gradcam target=Coat "
                                       "layer=stage3] | feature maps and filters: toolkit explain CKPT IMAGE layers",
                       description="Heatmaps of what drove each prediction (overlay PNGs with a colour bar, the raw "
                                   "maps as .npy or NIfTI, a JSON per input), or with the word `layers` the feature "
                                   "maps of every backbone stage and the first convolution's filters. Options: "
                                   "method= (gradcam, gradcam++, hirescam, layercam, scorecam, eigencam; per task; "
                                   "default gradcam, hirescam for detection), "
                                   "target= (a class, a detection's index, a region TC/WT/ET), layer= (e.g. stage3), "
                                   "top_k=, conf=, iou=, overlap=.")
    p.add_argument("checkpoint")
    p.add_argument("inputs", nargs="+", help="images, folders or volumes; key=value options; the word `layers`")
    p.add_argument("--out", default="runs/explain", help="output folder")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("export", help="export to ONNX, checked against PyTorch on the run's val data: toolkit "
                                      "export CKPT [data=PATH]")
    p.add_argument("checkpoint")
    p.add_argument("overrides", nargs="*", help="e.g. data=path/to/dataset when the run's data has moved")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", help="output .onnx path (default: beside the checkpoint, which --backend auto then uses "
                                 "on the CPU)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--limit", type=int, default=0, help="val inputs the parity check runs on (default: up to 256 "
                                                        "images to classify, 16 to segment or detect, 4 scans)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("data", help="datasets: toolkit data prepare NAME | list | check PATH | "
                                    "convert SRC --to coco|yolo|voc")
    p.add_argument("action", choices=["prepare", "list", "check", "convert"])
    p.add_argument("names", nargs="*", help="built-in dataset names, or one dataset path")
    p.add_argument("--to", choices=["coco", "yolo", "voc", "labels"],
                   help="convert: target format (labels: instance label images)")
    p.add_argument("--out", help="convert: output folder (default: SRC-<format> beside SRC)")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("weights", help="pretrained weights: toolkit weights fetch NAME")
    p.add_argument("action", choices=["fetch"])
    p.add_argument("names", nargs="+", help="torchvision model names, e.g. mobilenet_v2")
    p.add_argument("--weights", help="a weights enum name, e.g. IMAGENET1K_V2 (default: DEFAULT)")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("app", help="start a Streamlit app: toolkit app detection|medical|classify [--port N]")
    p.add_argument("name", choices=["detection", "medical", "classify"])
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
    except BrokenPipeError:  # the output went to a reader that closed it early, e.g. `| head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
