"""The notebooks run top to bottom, as stored, on the demo data (CDNOW inside lifetimes).

They are executed with nbclient on the `python3` kernel of this environment: ipykernel (a dev
dependency) ships its kernelspec in `<venv>/share/jupyter/kernels/python3`, and the kernel spec lookup
is limited to that folder so a `python3` kernel registered elsewhere (e.g. ~/.local/share/jupyter) cannot
take over. A fresh `make setup` therefore needs no `ipykernel install`; a test checks that the kernel
really is this interpreter. Parameters (the cell tagged `parameters`) are overridden papermill-style,
by a cell inserted right after it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from realdata import CDNOW_MAP, REPO_ROOT, lifetimes_dataset

NOTEBOOKS = REPO_ROOT / "notebooks"
KERNEL = "python3"
TIMEOUT_SECONDS = 300
# Every 10th CDNOW customer (2,357 of 23,570, over the full 18 months): the champion of 02 trains in
# seconds instead of minutes (most of the ~30 s left is imports and creating the MLflow database), and
# the notebook rebuilds the same data from this file.
SUBSET_EVERY = 10

pytestmark = pytest.mark.slow


def execute(name: str, parameters: str = "", extra_cell: str = "") -> nbformat.NotebookNode:
    """Run a stored notebook in a fresh kernel started in notebooks/ (as Jupyter does); return it run."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    if parameters:
        tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
        assert tagged, f"{name} has no cell tagged 'parameters'"
        notebook.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(parameters))
    if extra_cell:
        notebook.cells.append(nbformat.v4.new_code_cell(extra_cell))
    specs = KernelSpecManager(kernel_dirs=[str(Path(sys.prefix) / "share" / "jupyter" / "kernels")])
    kernel = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    client = NotebookClient(
        notebook, km=kernel, timeout=TIMEOUT_SECONDS, kernel_name=KERNEL, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    return notebook


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook printed (stream outputs), in order."""
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )


def images(notebook: nbformat.NotebookNode) -> int:
    """How many PNG figures the notebook displayed."""
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


def test_notebooks_are_numbered_and_stored_without_outputs():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [p.name for p in paths] == ["01_explore.ipynb", "02_model_report.ipynb"]
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert notebook.metadata["kernelspec"]["name"] == KERNEL
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs not stripped"
                assert "execution" not in cell.metadata, f"{path.name}: execution timestamps not stripped"


def test_01_explore_runs_in_this_environment():
    notebook = execute("01_explore.ipynb", extra_cell="import sys\nprint('kernel:', sys.executable)")
    text = printed(notebook)
    assert f"kernel: {sys.executable}" in text  # the python3 kernel is this venv's interpreter
    assert "fitted bgnbd fallbacks: none" in text
    forecast = re.search(r"holdout repeat purchases: actual ([\d,]+), forecast ([\d,]+)", text)
    assert forecast, text
    actual, expected = (float(v.replace(",", "")) for v in forecast.groups())
    assert 0.7 < expected / actual < 1.1  # seen: 16,876 forecast for 19,675 (BG/NBD under-forecasts CDNOW)
    assert images(notebook) >= 3  # RFM distributions, the two matrices, the repeat-purchase curves


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> tuple[Path, str]:
    """A CDNOW subset and a sqlite MLflow store holding its champion, trained with `patron train`."""
    folder = tmp_path_factory.mktemp("champion")
    raw = pd.read_csv(lifetimes_dataset("CDNOW_master.txt"), sep=r"\s+", dtype=str)
    subset = raw.loc[raw["customer_id"].astype(int) % SUBSET_EVERY == 0]
    transactions = folder / "cdnow_subset.csv"
    subset.to_csv(transactions, index=False)
    tracking_uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    env = {
        **os.environ,
        "PATRON_TRACKING_URI": tracking_uri,
        "PATRON_N_THREADS": "1",  # a small fit: one thread is fastest on a busy machine
        "PATRON_CHURN_SNAPSHOTS": "2",
    }
    mapping = [arg for field, column in CDNOW_MAP.items() for arg in ("--map", f"{field}={column}")]
    command = [sys.executable, "-m", "patron.cli", "train", "--transactions", str(transactions), *mapping]
    command += ["--date-format", "%Y%m%d", "--force-promote"]
    done = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"promotion: (PROMOTED|FORCED)", done.stdout), done.stdout  # a champion exists
    return transactions, tracking_uri


def test_02_model_report_runs_against_the_champion(champion, monkeypatch):
    transactions, tracking_uri = champion
    monkeypatch.setenv("PATRON_TRACKING_URI", tracking_uri)  # the kernel inherits this environment
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    notebook = execute("02_model_report.ipynb", parameters=f"TRANSACTIONS = {json.dumps(str(transactions))}")
    text = printed(notebook)
    assert f"MLflow store: {tracking_uri}" in text
    assert "same data as the training run: True" in text
    auc = re.search(r"holdout churn AUC: recomputed ([\d.]+), logged ([\d.]+)", text)
    assert auc and auc.group(1) == auc.group(2), text  # the rebuilt holdout is the run's holdout
    assert float(auc.group(1)) > 0.7
    scored = re.search(r"([\d,]+) customers scored as of 1998-06-30", text)
    assert scored and int(scored.group(1).replace(",", "")) > 2000, text
    assert images(notebook) >= 8  # 6 logged plots, lift, reliability, composition, reasons
