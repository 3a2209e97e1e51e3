"""The built-in dataset table: one module fills DATASETS, lazily, and every entry point reads the same table."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.data import arrays, builtin
from toolkit.data.classification import load_splits
from toolkit.errors import DataError

ALL = ["brain-lesions", "digits", "fashion-mnist", "nuclei"]


def test_one_table_without_importing_the_preparers() -> None:
    """Importing the table registers every dataset but imports no preparer (nuclei, MONAI, the arrays)."""
    code = ("import sys; from toolkit.registry import DATASETS; import toolkit.data.builtin; "
            "print(DATASETS.names()); print([m for m in ('toolkit.data.nuclei', 'toolkit.medical.synthetic', "
            "'toolkit.data.arrays', 'monai') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [str(ALL), "[]"]


def test_cli_list_and_tasks_see_the_same_table(capsys) -> None:
    from toolkit.cli import main

    assert main(["data", "list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == builtin.names() == ALL
    assert builtin.names("classify") == ["digits", "fashion-mnist"] and builtin.names("detect") == ["nuclei"]
    with pytest.raises(DataError, match="'nuclei' is a built-in dataset for detect, segment, instance; the classification "
                                        "ones are digits, fashion-mnist"):
        load_splits("nuclei", 0, 0.1, 0)


def test_digits_keep_their_fixed_stratified_test_set(tmp_path: Path) -> None:
    data = arrays.load_arrays(arrays.prepare_digits(tmp_path))
    assert len(data["y_train"]) == 1437 and len(data["y_test"]) == 360
    shares = np.bincount(data["y_test"], minlength=10) / np.bincount(np.concatenate([data["y_train"], data["y_test"]]))
    assert np.allclose(shares, 0.2, atol=0.01)  # stratified
    assert arrays.prepare_digits(tmp_path) == tmp_path  # idempotent