"""kill -9 during a real training run: after each kill every checkpoint loads and results.csv / best.pt are at
most one write behind; each resume repairs them and ends exactly where an uninterrupted run ends.

A short chain of kills here; ``benchmarks/faults.py`` runs 20 random kills and one at each file write."""
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.e2e.test_cli_classify import assert_one_line_error
from tests.helpers.faults import (ENV, TRAIN, Run, check_after_kill, check_consistent, final_metrics, kill_after,
                                  kill_at_write, reference, same_result, small_disk, wait_for_training)

pytestmark = pytest.mark.slow


def test_kills_at_each_kind_of_moment_are_survived(tmp_path: Path) -> None:
    ref, phases = reference(tmp_path)
    run = Run(tmp_path, "killed")
    kills = [
        ("epoch 1: last.pt written, best.pt being written", lambda p: kill_at_write(p, run, "best.pt")),
        ("epoch 2: last.pt being written", lambda p: kill_at_write(p, run, "last.pt")),
        ("a random moment of epochs 2-3", lambda p: wait_for_training(p, run) and
         kill_after(p, random.Random(0).uniform(0.0, 0.9) * sum(phases[2:4]))),
    ]
    for what, kill in kills:
        assert kill(run.start()), f"the run ended before the kill at {what}"
        assert check_after_kill(run.dir) == [], what
    log = run.finish()
    assert check_consistent(run.dir) == []
    assert same_result(run.dir, ref.dir) == []
    assert final_metrics(log) == final_metrics(ref.log())
    assert "removed 1 temp file(s)" in log  # the last.pt write that the second kill interrupted
    assert "row of epoch 1 was missing; rebuilt" in log and "best.pt: rewritten from the checkpoint of epoch 1" in log


def test_a_full_disk_ends_the_run_with_one_line_and_keeps_the_earlier_files(tmp_path: Path) -> None:
    """A 2 MB tmpfs: config.yaml and the first checkpoint (about 1.1 MB) fit, the next write does not."""
    with small_disk(tmp_path / "disk", "2m") as disk:
        out = subprocess.run([sys.executable, "-m", "toolkit", *TRAIN, f"train.project={disk}"], cwd=tmp_path,
                             env=ENV, capture_output=True, text=True, timeout=600)
        assert_one_line_error(out, "disk full: cannot write", str(disk), "bytes needed", "bytes free there")
        run = disk / "classify" / "exp"
        assert (run / "config.yaml").is_file() and not list(run.rglob(".*.tmp"))
        saved = [torch.load(p, weights_only=True)["epoch"] for p in (run / "weights").glob("*.pt")]
        assert saved == [1]  # weights/last.pt of epoch 1 survives; its best.pt did not fit
