"""Overlapping runs on one new sqlite store: no race while MLflow creates its tables, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.tracking import TrackingError, store_errors

PATRON = Path(sys.executable).with_name("patron")
TRIALS = 3  # the unguarded store failed 3 of 3 trials of store creation (issue 15 item 3)
TRAIN_TRIALS = 2  # whole training runs are slow on a shared machine; the race sits in store creation


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PATRON_", "MLFLOW_"))}
    env.update(PATRON_N_THREADS="1", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    return env


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> Path:
    """A 200-customer generated log written by `patron generate` (keeps each training run short)."""
    path = tmp_path_factory.mktemp("log") / "small.csv"
    done = subprocess.run(
        [str(PATRON), "generate", "--customers", "200", "--out", str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return path


def test_processes_initialising_one_new_store_together_all_succeed(tmp_path):
    script = (
        "import sys\n"
        "from training.tracking import configure_tracking, ensure_experiment\n"
        "print(ensure_experiment('patron', configure_tracking(sys.argv[1])))\n"
    )
    for trial in range(TRIALS):
        uri = f"sqlite:///{tmp_path}/store{trial}/mlflow.db"
        runs = [
            subprocess.Popen([sys.executable, "-c", script, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_environment(tmp_path))
            for _ in range(3)
        ]
        outputs = [run.communicate(timeout=300) for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0], [err[-2000:] for _, err in outputs]
        assert len({out.strip() for out, _ in outputs}) == 1  # one experiment, shared


@pytest.mark.slow
def test_two_patron_train_runs_on_a_new_store_both_finish(tmp_path, small_log):
    for trial in range(TRAIN_TRIALS):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        runs = [
            subprocess.Popen([str(PATRON), "train", "--transactions", str(small_log)], cwd=folder,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_environment(tmp_path))
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=900)[0] for run in runs]
        for run, output in zip(runs, outputs, strict=True):
            assert run.returncode == 0, output[-3000:]
            assert "Traceback" not in output
            assert "registered patron version" in output
        registered = sorted(line.split()[3] for output in outputs for line in output.splitlines()
                            if line.startswith("registered patron version"))
        assert registered == ["1", "2"]
        assert (folder / "mlruns" / "mlflow.db").is_file()


def test_a_store_failure_is_one_line(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path}/not-a-db/mlflow.db"
    (tmp_path / "not-a-db").mkdir()
    (tmp_path / "not-a-db" / "mlflow.db").write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(TrackingError) as caught, store_errors(uri):
        mlflow.MlflowClient(uri).search_experiments()
    message = str(caught.value)
    assert message.startswith(f"MLflow store {uri} failed: ") and "\n" not in message
    assert "not a database" in message
