"""
What the package's own code may do with configuration and data: no shell (a value from either
never reaches a command line), and table names that stay inside the warehouse.
"""

from __future__ import annotations

import ast

import pytest

from customer_analytics.io.tables import Warehouse
from tests.conftest import REPO

SOURCES = sorted(
    [*(REPO / "lib" / "customer_analytics").rglob("*.py"), *(REPO / "jobs").glob("*.py")]
)
#: Calls that run a command line through a shell.
SHELL_CALLS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
}


def calls(path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            yield (owner.id if isinstance(owner, ast.Name) else "", node.func.attr), node


def test_the_code_scanned_is_the_package():
    assert {p.name for p in SOURCES} >= {
        "cli.py",
        "jars.py",
        "session.py",
        "runner.py",
        "ingest.py",
    }


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_command_goes_through_a_shell(path):
    for name, node in calls(path):
        assert name not in SHELL_CALLS, f"{path.name}:{node.lineno} {'.'.join(name)}"
        if name[0] == "subprocess":
            shell = [k for k in node.keywords if k.arg == "shell"]
            assert not shell, f"{path.name}:{node.lineno} shell="
            assert isinstance(node.args[0], ast.List), f"{path.name}:{node.lineno}: argv as a list"


@pytest.mark.parametrize("name", ["../elsewhere", "a/b", ".hidden", "_models", ""])
def test_a_table_name_that_leaves_the_warehouse_folder_is_refused(spark, tmp_path, name):
    warehouse = Warehouse.for_path(spark, str(tmp_path), backend="deltalake")

    with pytest.raises(ValueError, match="invalid table name"):
        warehouse.table_path(name)
