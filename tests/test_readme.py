"""The README cannot drift from the code: its commands run here, and every setting is documented.

Every ```bash block of README.md runs, in order, as one bash script (`set -euo pipefail`) in a fresh
directory laid out like a clone: `.venv` links to this checkout's environment, `../shared` to the real
data, MLflow's store is a new `mlruns/`. The test changes the text in three ways only, each so the
run can check what a reader sees rather than hide it:
- the API's port 8000 becomes a free port (another process on this machine may hold 8000);
- after the line that starts `patron serve` in the background, it waits for `/readyz` and stops the
  server on exit (a reader waits for uvicorn's "Application startup complete" line);
- `curl -s` becomes `curl -sf`, so an HTTP error fails the script instead of printing a body.
Blocks that are not bash (`make demo`, `make test`, `mlflow ui`, a team server's address) cannot run
inside the suite; `test_the_other_blocks_are_known` says why for each and checks what can be checked.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from realdata import ONLINE_RETAIL, REPO_ROOT

from patron.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.integration]

README = REPO_ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

# Non-bash blocks, and why the suite does not run them as written.
NOT_RUN = {
    "make demo": "make test would run this suite again; make's recipes are checked with `make -n` below",
    ".venv/bin/mlflow ui": "a long-running web UI; the same store is read by the API tests and notebook 02",
    "patron score --engine spark --spark-master spark://": "needs a running Spark cluster and Spark Connect "
    "server; the bash block before it runs the same job on local[2], and tests/jobs check it equals the local engine",
    "export MLFLOW_TRACKING_URI": "a team server's address; tests/training/test_mlflow_server.py trains "
    "against a real `mlflow server` subprocess through MLFLOW_TRACKING_URI",
}


def blocks(kind: str | None = None) -> list[str]:
    """The README's fenced code blocks (of one info string, or all)."""
    text = README.read_text()
    return [body for info, body in FENCE.findall(text) if kind is None or info == kind]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def readme_script(port: int, with_online_retail: bool) -> str:
    """The README's bash blocks as one script, changed only as the module docstring says."""
    lines = ["set -euo pipefail"]
    for body in blocks("bash"):
        if "../shared/data" in body and not with_online_retail:
            continue  # a clone without ../shared/data (CI always has it)
        body = body.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("--port 8000", f"--port {port}")
        body = body.replace("curl -s ", "curl -sf ")
        for line in body.splitlines():
            lines.append(line)
            if "patron serve" in line and line.rstrip().endswith("&"):
                lines.append("SERVER=$!; trap 'kill $SERVER' EXIT")
                lines.append(
                    f"for i in $(seq 120); do curl -sf http://127.0.0.1:{port}/readyz >/dev/null && break; sleep 0.5; done"
                )
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A directory laid out like a fresh clone next to ../shared, with this checkout's .venv."""
    root = tmp_path_factory.mktemp("readme")
    (root / "shared").symlink_to(REPO_ROOT.parent / "shared")
    work = root / "work"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix))
    return work


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATRON_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_readme_commands_run(clone):
    port = free_port()
    script = readme_script(port, with_online_retail=ONLINE_RETAIL.exists())
    done = subprocess.run(
        ["bash", "-c", script], cwd=clone, env=clean_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    out = done.stdout
    # what a reader is told to expect
    assert "promotion: PROMOTED" in out  # the first training run in a fresh store
    assert "promotion: REJECTED - no improvement" in out  # the demo's identical second model
    assert "== value tier x lifecycle stage" in out and "== campaign under a budget of 5,000.00" in out
    assert '"customer_id":"00001"' in out  # GET /v1/customers/00001 from the demo's scores
    assert '"selected"' in out and '"churn_probability"' in out
    assert "patron_http_requests_total" in out
    for name in ("synthetic.parquet", "cdnow_features.parquet", "scores.parquet", "campaign.csv",
                 "campaign_from_score.csv", "demo_output/scores.parquet", "demo_output/campaign.csv"):
        assert (clone / name).stat().st_size > 0, name
    if ONLINE_RETAIL.exists():
        assert "135,080" in done.stdout + done.stderr  # the rows with no customer id, among the rejects
        assert (clone / "retail_features.rejects.csv").exists()


def test_the_other_blocks_are_known():
    others = [body for info, body in FENCE.findall(README.read_text()) if info != "bash"]
    for body in others:
        assert any(body.lstrip().startswith(key) for key in NOT_RUN), f"README block not run and not explained:\n{body}"
    dry = subprocess.run(["make", "-n", "demo", "test"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert ".venv/bin/patron demo" in dry.stdout and "pytest" in dry.stdout
    assert (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()[-1].strip() == "make test"
    ui = subprocess.run([str(Path(sys.prefix) / "bin" / "mlflow"), "ui", "--help"], capture_output=True, text=True)
    assert ui.returncode == 0 and "--backend-store-uri" in ui.stdout


def test_every_setting_is_documented_with_its_default():
    text = README.read_text()
    rows = dict(re.findall(r"^\| `(PATRON_[A-Z0-9_]+)` \| ([^|]*) \|", text, re.M))
    fields = {f"PATRON_{name.upper()}": name for name in Settings.model_fields}
    assert set(rows) == set(fields), "README settings table and Settings differ"
    defaults = Settings()
    for variable, cell in rows.items():
        name = fields[variable]
        value = cell.strip().strip("`")
        if value.startswith("("):  # "(none)", "(sniffed)", ...: no value of its own
            assert getattr(defaults, name) in (None, [], {}), variable
            continue
        parsed = Settings(**{name: value})
        assert getattr(parsed, name) == getattr(defaults, name), f"{variable}: README says {value}"
