"""Importing and using the toolkit leaves the user's global state alone: matplotlib's backend (a notebook's
inline plotting), PIL's decompression-bomb limit, the warnings filters and the loggers' levels."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "toolkit"

# Run in a fresh interpreter: the libraries the toolkit imports come first (their own import-time settings are
# theirs, not the toolkit's), then the state is read, the toolkit imported and used, and the state read again.
SCRIPT = """
import importlib, json, logging, pkgutil, sys, warnings
from pathlib import Path

for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except ImportError:  # an optional extra that is not installed: the toolkit cannot import it either
        pass
import matplotlib
import numpy as np
from PIL import Image


def state():
    return {"backend": matplotlib.get_backend(), "max_image_pixels": Image.MAX_IMAGE_PIXELS,
            "warnings": [repr(f) for f in warnings.filters],
            "log_levels": {n: logging.getLogger(n).level for n in ("", "monai.data.nvimgcodec_pydicom_plugin")}}


before = state()
import toolkit, toolkit.data.image_io, toolkit.medical.transforms, toolkit.tasks, toolkit.viz, toolkit.viz.slices
for module in pkgutil.iter_modules(toolkit.tasks.__path__):
    importlib.import_module("toolkit.tasks." + module.name)
from toolkit.data.image_io import read_image
from toolkit.medical.transforms import PipelineSpec, eval_pipeline
from toolkit.viz import plot_confusion_matrix, plot_results

Path("results.csv").write_text("epoch,loss,lr\\n1,0.9,0.01\\n2,0.5,0.001\\n")
plots = [plot_results(Path("results.csv"), Path("results.png")),
         plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"], Path("cm.png"))]
Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save("gray.png")
image = read_image("gray.png", 3)
eval_pipeline(PipelineSpec())  # builds MONAI's LoadImage, which probes for a CUDA DICOM decoder
print(json.dumps({"before": before, "after": state(), "image": list(image.shape),
                  "plots": [p.stat().st_size for p in plots]}))
"""


def third_party_imports() -> list[str]:
    """Dotted names of the non-toolkit modules imported at the top of any toolkit module."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return sorted(n for n in names if n.split(".")[0] not in ("toolkit", "__future__"))


def test_importing_and_plotting_keeps_backend_pil_limit_warnings_and_log_levels(tmp_path: Path) -> None:
    env = {**os.environ, "MPLBACKEND": "svg"}  # not Agg, so a switch to Agg shows
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(third_party_imports())], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["image"] == [8, 8, 3] and all(size > 1000 for size in out["plots"])
    assert out["before"]["backend"] == "svg"
    for key in ("backend", "max_image_pixels", "log_levels", "warnings"):
        assert out["after"][key] == out["before"][key], key
