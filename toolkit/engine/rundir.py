"""A run directory's files and how they stay consistent when a run is killed or resumed.

An epoch ends with three writes, each atomic (``safe_io``): ``weights/last.pt``, then ``weights/best.pt`` when
the epoch is the best, then the epoch's row of ``results.csv``. ``last.pt`` is the record: it holds the epoch, its
metrics and the best epoch so far (``epoch - best.stale_epochs``). A kill between two writes leaves the later files
one epoch behind, never ahead, and ``repair`` brings them back in line with ``last.pt`` when the run resumes:
rows after its epoch are dropped, a missing row of its epoch is rebuilt from its metrics, and ``best.pt`` is
rewritten from it when it was the best epoch and ``best.pt`` does not hold it.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from toolkit.engine import checkpoint
from toolkit.errors import ToolkitError
from toolkit.safe_io import atomic_write_csv

RESULTS = "results.csv"


def is_run_latest(ckpt: Path) -> bool:
    """Whether ``ckpt`` is the latest checkpoint of a run directory (``<run>/weights/last.pt`` beside
    ``<run>/config.yaml``): resuming from it continues that run in place."""
    ckpt = ckpt.resolve()
    return ckpt.name == "last.pt" and ckpt.parent.name == "weights" and (ckpt.parent.parent / "config.yaml").is_file()


def source_run(ckpt: Path) -> Path | None:
    """The run directory ``ckpt`` sits in (``<run>/weights/<file>.pt``), if any."""
    run = ckpt.resolve().parent.parent
    return run if ckpt.resolve().parent.name == "weights" and (run / "config.yaml").is_file() else None


def fold_checkpoints(run: Path) -> list[Path]:
    """``<run>/fold*/weights/best.pt`` in fold order."""
    found = run.glob("fold*/weights/best.pt")
    return sorted(found, key=lambda p: int(p.parent.parent.name[4:]) if p.parent.parent.name[4:].isdigit() else -1)


def next_free(base: Path, name: str) -> Path:
    """``base/name``, or ``base/name2``, ``name3``, ... : the first that does not exist."""
    path, n = base / name, 2
    while path.exists():
        path, n = base / f"{name}{n}", n + 1
    return path


def best_epoch(ckpt: dict[str, Any]) -> int | None:
    """The best epoch so far as ``ckpt`` records it; None when no epoch had a finite monitored value."""
    best = ckpt.get("best") or {}
    value = best.get("value")
    if value is None or not math.isfinite(value):
        return None
    return int(ckpt["epoch"]) - int(best.get("stale_epochs", 0))


# -- results.csv --------------------------------------------------------------------------------------------
def read_results(run_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of ``results.csv``; empty when it does not exist."""
    path = run_dir / RESULTS
    if not path.is_file() or path.stat().st_size == 0:
        return [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def write_results(run_dir: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Rewrite ``results.csv`` whole and atomically."""
    atomic_write_csv(rows, columns, run_dir / RESULTS)


def table_row(row: dict[str, Any]) -> dict[str, Any]:
    """The ``results.csv`` cells of an epoch's row: numbers only (no flags, no per-class ``a/b`` metrics), 6
    significant digits."""
    return {k: (int(v) if k == "epoch" else f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and "/" not in k and k != "is_best"}


def add_row(run_dir: Path, row: dict[str, Any]) -> None:
    """Put ``row`` into ``results.csv`` as its last row: rows of its epoch and later ones are replaced."""
    cells = table_row(row)
    columns, rows = read_results(run_dir)
    columns += [c for c in cells if c not in columns]
    write_results(run_dir, columns, [r for r in rows if int(r["epoch"]) < cells["epoch"]] + [cells])


# -- resume --------------------------------------------------------------------------------------------------
def repair(run_dir: Path, last: dict[str, Any], source: Path | None = None) -> list[str]:
    """Make ``run_dir``'s ``results.csv`` and ``weights/best.pt`` agree with ``last`` (the checkpoint the run
    resumes from), as the module docstring explains. ``source``: the run the checkpoint came from, when the run
    goes on in a new directory (its rows up to the checkpoint's epoch and its best.pt are taken over). Returns
    notes of what was changed."""
    epoch, notes = int(last["epoch"]), []
    columns, rows = read_results(source or run_dir)
    by_epoch = {int(r["epoch"]): r for r in rows}  # one row per epoch: the latest written wins
    later = [e for e in sorted(by_epoch) if e > epoch]
    if later and not source:
        notes.append(f"results.csv: dropped the rows of epochs {', '.join(map(str, later))}, written after the "
                     f"checkpoint's epoch {epoch}")
    if epoch not in by_epoch:
        cells = table_row(last.get("metrics") or {})
        if cells.get("epoch") == epoch:
            by_epoch[epoch] = cells
            columns += [c for c in cells if c not in columns]
            notes.append(f"results.csv: the row of epoch {epoch} was missing; rebuilt from the checkpoint's metrics")
    table = [by_epoch[e] for e in sorted(by_epoch) if e <= epoch]
    if columns and (source or table != rows):
        write_results(run_dir, columns, table)
    return notes + _repair_best(run_dir, last, source)


def _repair_best(run_dir: Path, last: dict[str, Any], source: Path | None) -> list[str]:
    """``weights/best.pt`` := the best epoch's weights as far as they can be found (``last`` itself, or the source
    run's best.pt when it holds that epoch)."""
    wanted = best_epoch(last)
    target = run_dir / "weights" / "best.pt"
    if wanted is None or _epoch_of(target) == wanted:
        return []
    if wanted == int(last["epoch"]):
        checkpoint.save(last, target)
        return [f"weights/best.pt: rewritten from the checkpoint of epoch {wanted}, the best epoch"]
    if source and _epoch_of(source / "weights" / "best.pt") == wanted:
        checkpoint.save(checkpoint.load(source / "weights" / "best.pt"), target)
        return [f"weights/best.pt: the best epoch {wanted} taken over from {source}"]
    return [f"weights/best.pt does not hold the best epoch {wanted} and its weights are not in the checkpoint; "
            "best.pt is written again when a later epoch beats it"]


def _epoch_of(path: Path) -> int | None:
    try:
        return int(checkpoint.load(path)["epoch"]) if path.is_file() else None
    except (ToolkitError, KeyError, TypeError, ValueError):
        return None
