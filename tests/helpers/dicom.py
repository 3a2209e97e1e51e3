"""Shared checks of the medical tests: a DICOM series stripped as anonymisers do, and Debian's DICOM validator."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pydicom
import pytest

# Type 2 patient/study attributes that anonymised exports often drop.
DROPPED_TYPE2 = ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                 "ReferringPhysicianName")


def strip_type2(folder: Path) -> list[Path]:
    """Delete ``DROPPED_TYPE2`` from every ``.dcm`` file under ``folder`` (in place); returns the files."""
    files = sorted(folder.rglob("*.dcm"))
    for path in files:
        ds = pydicom.dcmread(path)
        for keyword in DROPPED_TYPE2:
            delattr(ds, keyword)
        ds.save_as(path)
    assert files and not any(k in pydicom.dcmread(files[0]) for k in DROPPED_TYPE2)
    return files


@pytest.fixture()
def dciodvfy_errors() -> Callable[[Path], list[str]]:
    """``check(path)``: the "Error" lines Debian's ``dciodvfy`` (dicom3tools) prints for a DICOM SEG file.

    Fails (never skips) where dciodvfy is missing: ``make setup`` installs it (target ``system-dicom``)."""
    tool = shutil.which("dciodvfy")
    assert tool, "dciodvfy is not installed: run `make setup` (installs Debian's dicom3tools) or " \
                 "`apt-get install dicom3tools`"

    def check(path: Path) -> list[str]:
        out = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
        lines = (out.stdout + out.stderr).splitlines()
        assert any(line.strip() == "Segmentation" for line in lines), f"dciodvfy did not read {path}: {lines}"
        return [line for line in lines if "Error" in line]

    return check
