"""Fault injection: ``kill -9`` a tiny training run (300 digits, simple_cnn, 3 epochs, deterministic) at
``--random`` random moments and once while each file of each epoch is being written (its temp file exists).
After each kill: every .pt loads with ``weights_only=True`` and results.csv / best.pt are at most one write
behind last.pt. After each resume to the end: one results.csv row per epoch, best.pt = the best row's epoch, no
temp file, and the same rows and weights as an uninterrupted run. Writes ``runs/bench/faults.{json,md}``.

    python benchmarks/faults.py [--random 20] [--seed 0]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch  # noqa: E402
from common import write  # noqa: E402

from tests.helpers.faults import (EPOCHS, MARKERS, WRITES, Run, check_after_kill, check_consistent,  # noqa: E402
                                  final_metrics, kill_after, kill_at_write, reference, same_result, wait_for_line)


def one_kill(project: Path, name: str, kill, ref: Run) -> dict:
    """Start a fresh run, ``kill(proc, run)`` it, check, resume to the end, check; one result row."""
    run = Run(project, name)
    started = time.monotonic()
    killed = kill(run.start(), run)
    orphan = bool(list(run.dir.rglob(".*.tmp"))) if run.dir.is_dir() else False
    problems, last = [], "?"
    try:
        last = torch.load(run.last, weights_only=True)["epoch"] if run.last.is_file() else 0
        problems += check_after_kill(run.dir)
        log = run.finish()
        problems += check_consistent(run.dir) + same_result(run.dir, ref.dir)
        if final_metrics(log) != final_metrics(ref.log()):
            problems.append(f"final metrics {final_metrics(log)!r} != {final_metrics(ref.log())!r}")
    except Exception as e:  # noqa: BLE001 - a file that does not load, a resume that fails: a finding, not a crash
        problems.append(f"{type(e).__name__}: {str(e)[-300:]}")
    return {"kill": name, "killed": killed, "mid-write": orphan, "last.pt epoch at kill": last,
            "problems": "; ".join(problems) or "none", "seconds": round(time.monotonic() - started, 1)}


class RandomKill:
    """SIGKILL at a random moment: a phase of the run drawn at random (set-up, an epoch, the final evaluation),
    then a uniform moment within the time that phase took in the uninterrupted run."""

    def __init__(self, rng: random.Random, phases: list[float]) -> None:
        self.rng, self.phases = rng, phases

    def __call__(self, proc, run: Run) -> bool:
        phase = self.rng.randrange(len(self.phases))
        if phase and not wait_for_line(proc, run, MARKERS[phase - 1]):
            return False
        return kill_after(proc, self.rng.uniform(0, self.phases[phase]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=20, help="kills at random moments")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        project = Path(tmp)
        ref, phases = reference(project)
        print(f"uninterrupted run: phases {[round(p, 1) for p in phases]} s; {final_metrics(ref.log())}", flush=True)
        random_kill = RandomKill(rng, phases)
        kills = [(f"random-{i + 1}", random_kill) for i in range(args.random)]
        kills += [(f"{name}-epoch{e}", lambda p, r, name=name, e=e: kill_at_write(p, r, name, MARKERS[e - 1]))
                  for e in range(1, EPOCHS + 1) for name in WRITES]
        rows = []
        for name, kill in kills:
            for attempt in range(3):  # a run that ended before its kill moment is tried again
                rows.append(one_kill(project, f"{name}-try{attempt + 1}" if attempt else name, kill, ref))
                print(rows[-1], flush=True)
                if rows[-1]["killed"]:
                    break
    killed = [r for r in rows if r["killed"]]
    survived = [r for r in killed if r["problems"] == "none"]
    write("faults", rows, notes=f"{len(survived)} of {len(killed)} kills survived ({len(rows) - len(killed)} runs "
                                f"ended before their kill moment and were tried again); "
                                f"{sum(r['mid-write'] for r in killed)} kills hit a write in progress (a temp file was "
                                f"left); phases of the uninterrupted run (set-up, epochs, final evaluation): "
                                f"{', '.join(f'{p:.1f}' for p in phases)} s")


if __name__ == "__main__":
    main()
