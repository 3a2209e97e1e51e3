"""Prediction on a folder streams: the first result comes after reading one input, later inputs are read a batch at
a time, and ``toolkit predict`` prints each result before it reads the next batch, under a progress bar with an ETA."""
from __future__ import annotations

import re
from pathlib import Path

from tests.predict.conftest import write_images
from toolkit.cli import main
from toolkit.predict import Predictor
from toolkit.tasks import task_class


def _count_reads(monkeypatch, task: str, on_read=None) -> list[str]:
    """The sources the task reads, in order, as a list that grows while a prediction runs."""
    cls = task_class(task)
    read_input, reads = cls.read_input, []

    def counted(self, path, **options):
        reads.append(Path(path).name)
        if on_read:
            on_read(len(reads))
        return read_input(self, path, **options)

    monkeypatch.setattr(cls, "read_input", counted)
    return reads


def test_the_first_result_needs_one_input_and_the_rest_come_a_batch_at_a_time(make_checkpoint, tmp_path: Path,
                                                                            monkeypatch) -> None:
    write_images(tmp_path / "images", n=11)
    reads = _count_reads(monkeypatch, "classify")
    stream = Predictor.from_checkpoint(make_checkpoint("classify"), "cpu").stream(tmp_path / "images", batch_size=4)
    first = next(stream)
    assert len(reads) == 1 and first.source.endswith(reads[0])
    second = next(stream)
    assert len(reads) == 1 + 4 and second.source.endswith(reads[1])
    rest = list(stream)
    assert len(rest) == 9 and len(reads) == 11 and [Path(r.source).name for r in rest] == reads[2:]


def test_the_cli_prints_each_result_before_reading_the_next_batch(make_checkpoint, tmp_path: Path, capsys,
                                                                  monkeypatch) -> None:
    write_images(tmp_path / "images", n=6)
    printed_before_read: dict[int, str] = {}
    reads = _count_reads(monkeypatch, "classify",
                         on_read=lambda n: printed_before_read.setdefault(n, capsys.readouterr().out))
    code = main(["predict", str(make_checkpoint("classify")), str(tmp_path / "images"), "batch_size=2",
                 "--out", str(tmp_path / "out")])
    assert code == 0 and len(reads) == 6
    assert printed_before_read[1] == ""
    assert reads[0] in printed_before_read[2]  # the first result is out before the second input is read
    assert reads[2] in printed_before_read[4] and reads[3] not in printed_before_read[4]
    bar = capsys.readouterr().err
    assert re.search(r"predict: 100%.*6/6 \[\d\d:\d\d<00:00", bar), bar  # elapsed<remaining: the ETA


def test_predicting_loads_no_metrics_library(make_checkpoint, tmp_path: Path) -> None:
    """torchmetrics (0.7 s to import) is for val and training; a fresh process that predicts never imports it."""
    import subprocess
    import sys

    images = write_images(tmp_path / "images", n=1)
    checks = [f"Predictor.from_checkpoint(r'{make_checkpoint(task)}', 'cpu').predict(r'{images[0]}')"
              for task in ("classify", "detect", "segment")]
    code = ("import sys\nfrom toolkit.predict import Predictor\n" + "\n".join(checks) +
            "\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'torchmetrics'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
