"""Shared bits of the benchmarks: timing, peak memory, writing JSON + a Markdown table."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

OUT = Path("runs/bench")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def run_child(script: str, name: str, args: list[str]) -> dict[str, Any]:
    """Run ``script --child NAME ARGS`` in a fresh process (own peak memory); its last stdout line is a JSON row."""
    out = subprocess.run([sys.executable, script, "--child", name, *args], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine()}


def write(name: str, rows: list[dict[str, Any]], notes: str = "") -> Path:
    """Write ``runs/bench/<name>.json`` and ``.md`` (a table of ``rows``) and print the table."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"machine": machine(), "rows": rows, "notes": notes}, indent=2))
    columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |")
    table = "\n".join(lines)
    (OUT / f"{name}.md").write_text(f"# {name}\n\n{machine()}\n\n{table}\n\n{notes}\n")
    print(table)
    if notes:
        print(notes)
    return OUT / f"{name}.md"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
