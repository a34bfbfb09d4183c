"""
The Databricks Asset Bundle (databricks.yml, resources/*.yml): the job it defines runs the
pipeline's stages in order, each through an entry point the wheel really has, with arguments
the command accepts and a configuration file that validates. No Spark, no network.
"""

from __future__ import annotations

import configparser
import fnmatch
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from customer_analytics import cli
from customer_analytics.config import loader
from customer_analytics.orchestration.jobs import PIPELINE_STAGES
from tests.conftest import REPO

JOB_KEY = "customer_analytics"
WORKSPACE_FILES = "${workspace.file_path}"
REFERENCE = re.compile(r"\$\{([^}]+)\}")
#: What the CLI substitutes at deploy time, for a user "someone@example.com".
DEPLOYMENT_VALUES = {
    "workspace.file_path": str(REPO),
    "workspace.current_user.userName": "someone@example.com",
    "workspace.current_user.short_name": "someone",
    "bundle.name": "customer-analytics",
}


def load_bundle() -> dict:
    """``databricks.yml`` with the ``resources`` of every file its ``include`` globs name."""
    root = yaml.safe_load((REPO / "databricks.yml").read_text(encoding="utf-8"))
    resources: dict = {}
    for pattern in root.get("include", []):
        for path in sorted(REPO.glob(pattern)):
            included = yaml.safe_load(path.read_text(encoding="utf-8"))
            for kind, items in included.get("resources", {}).items():
                resources.setdefault(kind, {}).update(items)
    root["resources"] = resources
    return root


def target_job(bundle: dict, target: str) -> dict:
    """
    The job as ``target`` deploys it: the target's job resource merged into the bundle's, its
    tasks merged by ``task_key`` (as the CLI merges them).
    """
    job = {**bundle["resources"]["jobs"][JOB_KEY]}
    override = bundle["targets"][target].get("resources", {}).get("jobs", {}).get(JOB_KEY, {})
    for key, value in override.items():
        if key != "tasks":
            job[key] = value
    extra = {task["task_key"]: task for task in override.get("tasks", [])}
    job["tasks"] = [{**task, **extra.get(task["task_key"], {})} for task in job["tasks"]]
    return job


def target_values(bundle: dict, target: str) -> dict:
    """Every ``${...}`` the bundle uses, as the CLI would resolve it for ``target``."""
    variables = {name: spec.get("default") for name, spec in bundle["variables"].items()}
    variables.update(bundle["targets"][target].get("variables", {}))
    values = {f"var.{name}": value for name, value in variables.items()}
    values.update(DEPLOYMENT_VALUES)
    values["bundle.target"] = target
    return values


def resolve(value, values: dict):
    """Substitute ``${name}`` references (repeatedly, as variables may name variables)."""
    if isinstance(value, list):
        return [resolve(item, values) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item, values) for key, item in value.items()}
    if not isinstance(value, str):
        return value
    whole = REFERENCE.fullmatch(value)
    if whole:
        return resolve(values[whole.group(1)], values)
    resolved = REFERENCE.sub(lambda match: str(resolve(values[match.group(1)], values)), value)
    return resolved if resolved == value else resolve(resolved, values)


def task_order(tasks: list[dict]) -> list[str]:
    """Task keys in run order, following ``depends_on`` from the task that depends on none."""
    upstream = {
        task["task_key"]: [dep["task_key"] for dep in task.get("depends_on", [])] for task in tasks
    }
    order = [key for key, deps in upstream.items() if not deps]
    assert len(order) == 1, f"expected one first task, got {order}"
    while len(order) < len(upstream):
        following = [key for key, deps in upstream.items() if deps == [order[-1]]]
        assert len(following) == 1, f"expected one task after {order[-1]}, got {following}"
        order.append(following[0])
    return order


@pytest.fixture(scope="module")
def bundle() -> dict:
    return load_bundle()


@pytest.fixture(scope="module")
def job(bundle) -> dict:
    return bundle["resources"]["jobs"][JOB_KEY]


@pytest.fixture(scope="module")
def tasks(job) -> list[dict]:
    return job["tasks"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The package wheel, built offline from a copy of the sources (the work tree stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "lib", source / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--quiet", "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"the wheel did not build (setuptools>=70.1?):\n{build.stderr}"
    (path,) = out.glob("*.whl")
    return path


@pytest.fixture(scope="module")
def wheel_metadata(wheel) -> dict:
    """Distribution name and console scripts read from the wheel's ``*.dist-info``."""
    with zipfile.ZipFile(wheel) as archive:
        (dist_info,) = {name.split("/")[0] for name in archive.namelist() if ".dist-info/" in name}
        metadata = archive.read(f"{dist_info}/METADATA").decode("utf-8")
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode("utf-8")
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str
    parser.read_string(entry_points)
    name = re.search(r"^Name: (.+)$", metadata, re.MULTILINE).group(1).strip()
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.MULTILINE)
    return {"name": name, "console_scripts": dict(parser["console_scripts"]), "requires": requires}


def test_bundle_is_named_after_the_project_and_includes_the_job(bundle, job):
    assert bundle["bundle"]["name"] == "customer-analytics"
    assert job["name"] == "customer-analytics"


def test_dev_is_the_default_development_target_and_prod_deploys_one_shared_copy(bundle):
    dev, prod = bundle["targets"]["dev"], bundle["targets"]["prod"]

    assert (dev["mode"], dev.get("default")) == ("development", True)
    assert prod["mode"] == "production"
    assert (
        prod["workspace"]["root_path"]
        == "/Workspace/Shared/.bundle/${bundle.name}/${bundle.target}"
    )


def test_targets_change_variables_and_compute_only(bundle):
    for name, target in bundle["targets"].items():
        assert set(target) <= {"mode", "default", "workspace", "variables", "resources"}, name
        jobs = target.get("resources", {}).get("jobs", {})
        assert set(jobs) <= {JOB_KEY}, name
        override = jobs.get(JOB_KEY, {})
        assert set(override) <= {"environments", "job_clusters", "tasks"}, name
        for task in override.get("tasks", []):
            assert set(task) <= {"task_key", "environment_key", "job_cluster_key", "libraries"}


def test_the_bundle_job_names_no_compute_of_its_own(job):
    assert "job_clusters" not in job and "environments" not in job
    for task in job["tasks"]:
        assert not {"environment_key", "job_cluster_key", "libraries"} & set(task)


def test_tasks_run_the_pipeline_stages_in_order(tasks):
    assert task_order(tasks) == list(PIPELINE_STAGES)


def test_each_task_runs_the_job_of_its_own_stage(tasks):
    for task in tasks:
        assert task["python_wheel_task"]["parameters"][0] == task["task_key"]


def test_every_entry_point_is_a_console_script_of_the_wheel(tasks, wheel_metadata):
    for task in tasks:
        entry_point = task["python_wheel_task"]["entry_point"]
        assert entry_point in wheel_metadata["console_scripts"], task["task_key"]
    assert wheel_metadata["console_scripts"]["customer-analytics"] == (
        "customer_analytics.cli:console_main"
    )


def test_package_name_is_the_wheels_distribution_name(tasks, wheel_metadata):
    assert wheel_metadata["name"] == "customer-analytics"
    for task in tasks:
        assert task["python_wheel_task"]["package_name"] == wheel_metadata["name"]


def test_the_wheel_never_installs_spark_over_the_runtimes_own(wheel_metadata):
    spark = [r for r in wheel_metadata["requires"] if r.startswith(("pyspark", "delta-spark"))]

    assert spark, "pyspark and delta-spark are listed (in the spark extra)"
    assert all('extra == "spark"' in r or 'extra == "test"' in r for r in spark), spark


def test_the_wheel_runner_finds_the_entry_point_by_package_and_name(tasks, wheel, tmp_path):
    """The lookup Databricks does: distribution(package_name).entry_points, by name."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)
    for task in tasks:
        wheel_task = task["python_wheel_task"]
        (distribution,) = importlib.metadata.distributions(
            name=wheel_task["package_name"], path=[str(tmp_path)]
        )
        found = [ep for ep in distribution.entry_points if ep.name == wheel_task["entry_point"]]
        assert [ep.value for ep in found] == ["customer_analytics.cli:console_main"]


def test_a_job_that_fails_raises_so_the_wheel_task_fails(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["customer-analytics", "ingest", "--as-of", "2024-13-01"])

    with pytest.raises(SystemExit) as raised:
        cli.console_main()

    assert raised.value.code == 2
    assert "expected a date YYYY-MM-DD" in capsys.readouterr().err


def test_a_job_that_succeeds_returns_without_system_exit(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["customer-analytics", "--help"])

    assert cli.console_main() is None
    assert "ingest" in capsys.readouterr().out


@pytest.mark.parametrize("target", ["dev", "prod", "classic"])
def test_the_command_parses_every_task_parameters(bundle, tasks, target):
    values = target_values(bundle, target)
    for task in tasks:
        params = resolve(task["python_wheel_task"]["parameters"], values)

        args = cli.build_parser().parse_args(params)

        assert args.job == task["task_key"]
        assert args.conf == str(REPO / "conf" / "databricks.yaml")


@pytest.mark.parametrize(
    ("target", "schema", "files", "materialize"),
    [
        (
            "dev",
            "customer_analytics_dev_someone",
            "/Volumes/main/customer_analytics/files/dev_someone",
            "table",
        ),
        ("prod", "customer_analytics", "/Volumes/main/customer_analytics/files", "table"),
        ("classic", "customer_analytics", "/Volumes/main/customer_analytics/files", "checkpoint"),
    ],
)
def test_every_task_configuration_validates_with_the_target_tables_and_paths(
    bundle, tasks, target, schema, files, materialize
):
    values = target_values(bundle, target)
    for task in tasks:
        args = cli.build_parser().parse_args(
            resolve(task["python_wheel_task"]["parameters"], values)
        )

        loaded = loader.load(args.conf, args.set)

        assert (loaded.warehouse.catalog, loaded.warehouse.schema_) == ("main", schema)
        assert loaded.warehouse.path == files
        assert loaded.source.path == "/Volumes/main/customer_analytics/raw/transactions"
        assert loaded.warehouse.delta == "native"
        assert loaded.spark.materialize == materialize
        assert loaded.recommend.rules_engine == "pairs"  # serverless has no FPGrowthModel


def test_the_configuration_file_is_read_from_the_synced_bundle_files(bundle, tasks):
    includes = bundle["sync"]["include"]
    for task in tasks:
        params = task["python_wheel_task"]["parameters"]
        conf = params[params.index("--conf") + 1]
        assert conf.startswith(WORKSPACE_FILES + "/")
        relative = conf.removeprefix(WORKSPACE_FILES + "/")
        assert (REPO / relative).is_file()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in includes), relative


def _built_wheel(bundle) -> str:
    (artifact,) = bundle["artifacts"].values()
    assert artifact["type"] == "whl"
    assert "-w dist" in artifact["build"]
    return os.path.normpath(REPO / artifact["path"] / "dist" / "*.whl")


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_dev_and_prod_run_every_task_on_serverless_with_the_wheel_the_artifact_builds(
    bundle, target
):
    job = target_job(bundle, target)
    (environment,) = job["environments"]
    spec = resolve(environment["spec"], target_values(bundle, target))

    assert "job_clusters" not in job
    assert spec["environment_version"] == "4"
    # the target's resources are in databricks.yml: its paths are relative to the root
    assert [os.path.normpath(REPO / d) for d in spec["dependencies"]] == [_built_wheel(bundle)]
    for task in job["tasks"]:
        assert task["environment_key"] == environment["environment_key"], task["task_key"]
        assert "job_cluster_key" not in task and "libraries" not in task


def test_classic_runs_every_task_on_the_job_cluster_with_the_wheel(bundle):
    job = target_job(bundle, "classic")
    (cluster,) = job["job_clusters"]

    assert "environments" not in job
    for task in job["tasks"]:
        assert task["job_cluster_key"] == cluster["job_cluster_key"]
        (library,) = task["libraries"]
        assert os.path.normpath(REPO / library["whl"]) == _built_wheel(bundle)
        assert "environment_key" not in task


def test_the_cluster_gives_driver_and_executors_16m_thread_stacks(bundle):
    (cluster,) = target_job(bundle, "classic")["job_clusters"]
    spark_conf = cluster["new_cluster"]["spark_conf"]

    assert "-Xss16m" in spark_conf["spark.driver.extraJavaOptions"].split()
    assert "-Xss16m" in spark_conf["spark.executor.extraJavaOptions"].split()


def test_the_cluster_runs_a_spark_4_runtime_in_dedicated_access_mode(bundle):
    job = target_job(bundle, "classic")
    new_cluster = resolve(job["job_clusters"][0]["new_cluster"], target_values(bundle, "classic"))

    assert new_cluster["spark_version"] == "17.3.x-scala2.13"
    assert new_cluster["data_security_mode"] == "DATA_SECURITY_MODE_DEDICATED"
    assert new_cluster["node_type_id"] == "i3.xlarge"


@pytest.mark.parametrize(("target", "status"), [("dev", "PAUSED"), ("prod", "UNPAUSED")])
def test_the_daily_utc_schedule_is_paused_in_dev_only(bundle, job, target, status):
    schedule = resolve(job["schedule"], target_values(bundle, target))

    assert schedule == {
        "quartz_cron_expression": "0 0 3 * * ?",
        "timezone_id": "UTC",
        "pause_status": status,
    }


def test_failures_are_mailed_to_the_deploying_user_by_default(bundle, job):
    notifications = resolve(job["email_notifications"], target_values(bundle, "dev"))

    assert notifications == {"on_failure": ["someone@example.com"]}


def _bundle_cli() -> str | None:
    """The Databricks CLI with the ``bundle`` commands (not the legacy Python CLI), if any."""
    binary = shutil.which("databricks")
    if binary is None:
        return None
    probe = subprocess.run([binary, "bundle", "--help"], capture_output=True, text=True)
    return binary if probe.returncode == 0 else None


@pytest.mark.parametrize("target", ["dev", "prod", "classic"])
def test_databricks_bundle_validate_accepts_the_bundle(target):
    binary = _bundle_cli()
    if binary is None:
        pytest.skip("the Databricks CLI (0.230+, with 'bundle') is not installed")
    if not (os.environ.get("DATABRICKS_HOST") or os.environ.get("DATABRICKS_CONFIG_PROFILE")):
        pytest.skip("bundle validate needs a workspace: DATABRICKS_HOST or a profile is not set")

    result = subprocess.run(
        [binary, "bundle", "validate", "--target", target],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
