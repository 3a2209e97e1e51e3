"""Start a Streamlit app of ``apps/`` in the background and wait until it answers (browser tests, benchmarks)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from toolkit.errors import ToolkitError

ROOT = Path(__file__).resolve().parent.parent  # the source tree: apps/ and .streamlit/config.toml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app: str, env: dict[str, str], log: Path, timeout_s: float = 60.0) -> Iterator[str]:
    """``streamlit run apps/<app>.py`` on a free local port with ``env`` added; yields its URL once
    ``/_stcore/health`` answers; stops the server on exit. Its output goes to ``log``."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "apps" / f"{app}.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ToolkitError(f"streamlit did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
