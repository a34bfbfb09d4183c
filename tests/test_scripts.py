"""Every Python script under scripts/ starts: its imports resolve and ``--help`` exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


def test_the_scripts_are_found():
    assert {p.name for p in SCRIPTS} >= {"benchmark.py", "compare_warehouses.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_exits_0(script):
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
