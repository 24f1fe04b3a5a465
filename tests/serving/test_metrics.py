"""serving.metrics without a server: the workers' shared folder and forgetting dead workers.

The summing itself runs in real worker processes (tests/serving/test_served_processes.py):
prometheus_client picks its value store when imported, so this process stays in memory mode.
"""

from __future__ import annotations

import os
import subprocess
import sys

from serving.metrics import (
    MULTIPROC_DIR_ENV,
    ServingMetrics,
    forget_dead_workers,
    shared_metrics_dir,
)


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_several_workers_get_a_fresh_folder_that_is_removed_afterwards(monkeypatch):
    monkeypatch.delenv(MULTIPROC_DIR_ENV, raising=False)
    with shared_metrics_dir(2) as folder:
        assert folder is not None and os.path.isdir(folder) and os.listdir(folder) == []
        assert os.environ[MULTIPROC_DIR_ENV] == folder
        open(os.path.join(folder, "counter_1.db"), "wb").close()  # what a worker writes
    assert not os.path.exists(folder) and MULTIPROC_DIR_ENV not in os.environ


def test_one_worker_needs_no_folder_and_a_given_folder_is_kept(monkeypatch, tmp_path):
    monkeypatch.delenv(MULTIPROC_DIR_ENV, raising=False)
    with shared_metrics_dir(1) as folder:
        assert folder is None and MULTIPROC_DIR_ENV not in os.environ
    monkeypatch.setenv(MULTIPROC_DIR_ENV, str(tmp_path))
    with shared_metrics_dir(4) as folder:
        assert folder == str(tmp_path)
    assert tmp_path.is_dir() and os.environ[MULTIPROC_DIR_ENV] == str(tmp_path)


def test_only_the_live_series_of_dead_workers_are_forgotten(tmp_path):
    gone, alive = dead_pid(), os.getpid()
    names = [f"gauge_liveall_{gone}.db", f"gauge_liveall_{alive}.db", f"counter_{gone}.db", f"histogram_{gone}.db"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert forget_dead_workers(str(tmp_path)) == [gone]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])  # counts of the dead stay summed


def test_in_memory_metrics_expose_this_process_and_follow_the_served_model():
    metrics = ServingMetrics()
    metrics.set_model("patron", "1")
    metrics.set_model("patron", "2")
    text = metrics.exposition().decode()
    assert 'patron_model_info{model_name="patron",model_version="2"} 1.0' in text
    assert 'model_version="1"' not in text
