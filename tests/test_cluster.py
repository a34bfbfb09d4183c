"""
The pipeline under ``spark-submit`` on a Spark standalone cluster: ``scripts/cluster_smoke.sh``
starts a master and two workers on 127.0.0.1, runs ``jobs/pipeline.py`` (every stage but
evaluate and the report) twice with the Delta package, kills a worker and its executor in the
middle of a stage of the second run, and compares the two runs' tables with chispa. A few
minutes; marked ``cluster`` (``-m "not cluster"`` leaves it out).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, shared_file

SCRIPT = REPO / "scripts" / "cluster_smoke.sh"
#: Both runs, the cluster, the wheel and the comparison: 6.5-7 minutes on a shared 2-core
#: machine, 14.5 under heavy load.
TIMEOUT_SECONDS = 1800


def _run_smoke(data) -> tuple[int, str]:
    """Run the script; on a timeout, SIGTERM it so that its trap stops the cluster it started."""
    # without evaluate: a minute less of CI; run it with `bash scripts/cluster_smoke.sh`
    env = {**os.environ, "PYTHON": sys.executable, "SKIP_STAGES": "evaluate report"}
    proc = subprocess.Popen(
        ["bash", str(SCRIPT), str(data)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=120)
        pytest.fail(f"cluster_smoke.sh ran over {TIMEOUT_SECONDS} s:\n{out[-8000:]}")
    return proc.returncode, out


@pytest.mark.cluster
def test_pipeline_on_standalone_cluster_survives_a_lost_worker_with_equal_tables():
    data = shared_file("transactions_product_json_sample.parquet")

    code, out = _run_smoke(data)

    print(out)  # the run times and stage lines, shown with -rP or on failure
    assert code == 0, out[-8000:]
    for run in ("run1", "run2"):
        assert re.search(
            rf"^cluster_smoke: {run}: exit 0 in [\d.]+ s, native Delta; 18 Delta", out, re.M
        )
    killed = re.search(
        r"^cluster_smoke: killed worker \d .* in stage (\w+), with (\d+) task\(s\) running",
        out,
        re.M,
    )
    assert killed, out[-8000:]
    stage = killed.group(1)
    assert stage == "recommend"  # the first of KILL_STAGES, which cuts lineage
    lost = re.search(r"lost executor \d+ with (\d+) running task\(s\) \(ExecutorLostFailure", out)
    assert lost and int(lost.group(1)) >= 1
    assert f"RESULT worker killed mid-stage: {stage}" in out
    assert re.search(r"RESULT run1 \(2 workers\): [\d.]+ s", out)
    assert re.search(rf"RESULT run2 \(worker \d killed in stage {stage}\): [\d.]+ s", out)
    assert "RESULT tables equal: 17 tables compared, all equal" in out
    assert re.search(r"^cluster_smoke: PASSED$", out, re.M)
