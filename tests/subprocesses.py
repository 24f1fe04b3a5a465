"""Waiting for a server started as a subprocess by a test."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def wait_until_up(url: str, process: subprocess.Popen, log_path: Path, what: str, timeout: float = 120) -> None:
    """Return once `url` answers; fail the test with the server's log if it exits or times out first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what} did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate a server started by a test, killing it if it does not exit within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
