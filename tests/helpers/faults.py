"""Fault injection: ``kill -9`` a real training run (the ``toolkit`` CLI in a child process) at a random moment
or while one of its files is being written (its temp file exists), then check the run directory and resume it.

Shared by ``tests/e2e/test_faults.py`` (a few kills) and ``benchmarks/faults.py`` (20 random kills and one at
each file write of each epoch)."""
from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}  # lines as they come
EPOCHS = 3
# a tiny deterministic run: 300 digits, simple_cnn at 8x8 px, 10 steps per epoch
TRAIN = ["train", "classify", "data=digits", "data.limit=300", f"train.epochs={EPOCHS}", "train.batch_size=32",
         "train.deterministic=true", "train.workers=0", "train.progress=false"]
WRITES = ("last.pt", "best.pt", "results.csv")  # the files an epoch writes, in this order
# the lines that end a run's phases: set-up (the summary line), then each epoch (its line comes after its writes)
MARKERS = (" | run ", *(f"epoch {e}/{EPOCHS} " for e in range(1, EPOCHS + 1)))


@dataclass
class Run:
    """One run directory ``<project>/classify/<name>`` and the log of the processes that trained it."""

    project: Path
    name: str
    starts: int = 0  # processes started so far (each prints one summary line when its set-up is done)

    @property
    def dir(self) -> Path:
        return self.project / "classify" / self.name

    @property
    def last(self) -> Path:
        return self.dir / "weights" / "last.pt"

    def start(self) -> subprocess.Popen:
        """Train, or resume from ``weights/last.pt`` when there is one (a fresh start in the same directory when
        the kill came before the first epoch ended)."""
        args = [f"train.resume={self.last}"] if self.last.is_file() else \
            [f"train.project={self.project}", f"train.name={self.name}", "train.exist_ok=true"]
        self.starts += 1
        log = open(self.project / f"{self.name}.log", "a")
        return subprocess.Popen([sys.executable, "-m", "toolkit", *TRAIN, *args], cwd=self.project, env=ENV,
                                stdout=log, stderr=subprocess.STDOUT)

    def finish(self) -> str:
        """Resume to the end; returns the process's output."""
        proc = self.start()
        assert proc.wait(timeout=600) == 0, self.log()[-3000:]
        return self.log()

    def log(self) -> str:
        return (self.project / f"{self.name}.log").read_text()


def wait_for_line(proc: subprocess.Popen, run: Run, marker: str = MARKERS[0]) -> bool:
    """Block until ``proc``, the first process of ``run``, printed a line with ``marker`` (by default its summary
    line: set-up done); False when it ended before."""
    while proc.poll() is None:
        if marker in run.log():
            return True
        time.sleep(0.01)
    return False


def wait_for_training(proc: subprocess.Popen, run: Run) -> bool:
    """Block until ``proc`` (the latest process of ``run``) is done with its set-up and prints its summary line;
    False when it ended before."""
    while proc.poll() is None:
        if run.log().count(MARKERS[0]) >= run.starts:
            return True
        time.sleep(0.01)
    return False


def kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL ``proc`` ``seconds`` after now; False when it ended before."""
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        return _kill(proc)


def kill_at_write(proc: subprocess.Popen, run: Run, name: str, after: str = "") -> bool:
    """SIGKILL ``proc`` as soon as the temp file of a write of ``name`` (``.<name>.*.tmp``, see
    ``toolkit.safe_io``) appears, the first one after the line with ``after`` when given; False when the process
    ended before."""
    if after and not wait_for_line(proc, run, after):
        return False
    folders = (run.dir / "weights", run.dir)
    while proc.poll() is None:
        for folder in folders:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            if any(n.startswith(f".{name}.") and n.endswith(".tmp") for n in names):
                return _kill(proc)
    return False


def _kill(proc: subprocess.Popen) -> bool:
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return proc.wait() == -signal.SIGKILL


def rows(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "results.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def weights(run_dir: Path) -> dict[str, dict]:
    """Every ``.pt`` of ``weights/``, loaded with ``weights_only=True`` (a file that does not load fails here)."""
    folder = run_dir / "weights"
    return {p.name: torch.load(p, map_location="cpu", weights_only=True) for p in sorted(folder.glob("*.pt"))}


def check_after_kill(run_dir: Path) -> list[str]:
    """What must hold right after a kill: every .pt loads; results.csv is whole, one row per epoch, at most one
    epoch behind ``last.pt`` and never ahead; ``best.pt`` is not ahead of ``last.pt``."""
    if not run_dir.is_dir():
        return []
    files, table = weights(run_dir), [int(r["epoch"]) for r in rows(run_dir)]
    last = int(files["last.pt"]["epoch"]) if "last.pt" in files else 0
    problems = []
    if table != list(range(1, len(table) + 1)) or len(table) not in (last, last - 1):
        problems.append(f"results.csv has epochs {table}, last.pt epoch {last}")
    if "best.pt" in files and int(files["best.pt"]["epoch"]) > last:
        problems.append(f"best.pt holds epoch {files['best.pt']['epoch']}, ahead of last.pt's {last}")
    return problems


def check_consistent(run_dir: Path, monitor: str = "accuracy") -> list[str]:
    """What must hold after a resume: every .pt loads; one results.csv row per epoch of ``last.pt``; ``best.pt``
    holds the epoch of the best row; no temp file is left."""
    files, table = weights(run_dir), rows(run_dir)
    problems = []
    last = int(files["last.pt"]["epoch"]) if "last.pt" in files else 0
    if [int(r["epoch"]) for r in table] != list(range(1, last + 1)):
        problems.append(f"results.csv has epochs {[r['epoch'] for r in table]}, last.pt epoch {last}")
    if table:
        top = max(float(r[monitor]) for r in table)
        best = int(files["best.pt"]["epoch"]) if "best.pt" in files else None
        if best is None or float(table[best - 1][monitor]) != top:
            problems.append(f"best.pt holds epoch {best}, the best {monitor} is {top}")
    temps = [p.name for p in run_dir.rglob(".*.tmp")]
    if temps:
        problems.append(f"temp files left: {temps}")
    return problems


def same_result(run_dir: Path, reference: Path) -> list[str]:
    """A resumed run ends exactly where an uninterrupted one does: same rows (but the time column), same
    last.pt and best.pt weights."""
    problems = []
    drop = lambda table: [{k: v for k, v in r.items() if k != "time"} for r in table]  # noqa: E731
    if drop(rows(run_dir)) != drop(rows(reference)):
        problems.append("results.csv differs from the uninterrupted run's")
    mine, ref = weights(run_dir), weights(reference)
    for name in ("last.pt", "best.pt"):
        a, b = mine[name]["model"], ref[name]["model"]
        if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
            problems.append(f"{name} weights differ from the uninterrupted run's")
    return problems


def final_metrics(log: str) -> str:
    """The final evaluation's metrics line (the line after ``test metrics of ...``)."""
    lines = log.splitlines()
    return next(lines[i + 1] for i in range(len(lines) - 1, -1, -1) if lines[i].startswith("test metrics of"))


def reference(project: Path) -> tuple[Run, list[float]]:
    """An uninterrupted run and how long its phases took, in seconds: set-up, each epoch (training, evaluation,
    writes), the final evaluation."""
    run, times = Run(project, "reference"), [time.monotonic()]
    proc = run.start()
    for marker in MARKERS:
        assert wait_for_line(proc, run, marker), run.log()[-3000:]
        times.append(time.monotonic())
    assert proc.wait(timeout=600) == 0, run.log()[-3000:]
    times.append(time.monotonic())
    return run, [b - a for a, b in zip(times, times[1:])]


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "2m") -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted on ``folder``. Needs root with mount rights (``make test`` runs as root, as CI
    does): where mounting is refused the test fails, saying why, never skips."""
    folder.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.fail(f"a small tmpfs cannot be mounted here ({out.stderr.strip() or 'mount refused'}); the disk-full "
                    "check needs root with mount rights: run the tests as root, as `make test` in CI does")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)
