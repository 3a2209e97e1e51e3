"""Shared bits of the benchmarks: timing, peak memory, writing JSON + a Markdown table."""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

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


def timed_steps(loss_of: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer, steps: int,
                warmup: int = 2) -> tuple[float, float]:
    """Wall and CPU seconds of ``steps`` optimiser steps on ``loss_of()``, after ``warmup`` untimed ones."""
    for i in range(steps + warmup):
        if i == warmup:
            wall, cpu = time.perf_counter(), time.process_time()
        optimizer.zero_grad()
        loss_of().backward()
        optimizer.step()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare_in_children(script: str, impls: tuple[str, ...], child: Callable[..., dict], *, steps: int, batch: int,
                        size: int) -> tuple[argparse.Namespace, list[dict[str, Any]]] | None:
    """The command line of a speed benchmark (``--threads --steps --batch --size``). In the parent: one fresh
    child process per implementation (so peak memory does not mix), returns (args, rows). In a child
    (``--child IMPL``): prints ``child(IMPL, steps, batch, size)`` as JSON and returns None."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--size", type=int, default=size)
    parser.add_argument("--child", choices=impls, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.batch, args.size)))
        return None
    args.load = load_average()
    options = [f"--{k}={getattr(args, k)}" for k in ("threads", "steps", "batch", "size")]
    return args, [run_child(script, impl, options) for impl in impls]


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine()}


def load_average() -> tuple[float, float, float]:
    """The machine's 1, 5 and 15-minute load averages, rounded: other work that ran beside a timing."""
    return tuple(round(v, 2) for v in os.getloadavg())


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
