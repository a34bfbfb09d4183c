"""
Benchmark the pipeline at several data sizes, stage by stage, against three peers for ingest +
features: the seed notebooks' pandas way, DuckDB SQL and plain PySpark in two commands (GitHub
issue #13).

Usage::

    python scripts/benchmark.py                       # 0.25x, 1x and 2x the seed's size
    python scripts/benchmark.py --with-10m            # ... and 10,000,000 transactions
    python scripts/benchmark.py --sizes 0.01          # a smoke run, about 24,000 transactions

Options: ``--sizes F,F,...`` fractions of the seed's 2,406,316 transactions (default
``0.25,1,2``); ``--with-10m``; ``--seed S`` for the generator (default 3); ``--work DIR`` for the
data, warehouses, event logs and logs (default ``data/benchmark``; generated data is reused);
``--out DIR`` for the results (default ``benchmarks``); ``--stages a,b`` to run fewer stages;
``--pipeline-command`` to also time ``customer-analytics pipeline`` as one process;
``--set key=value`` passed to every stage; ``--peer-memory-limit-mib N`` (default 90% of the
memory available at start; 0 for none); ``--timeout S`` per process. Run it from anywhere: the
commands it starts import the package from this checkout's ``lib/``.

For each size, in one run on the same files:

1. Data: ``scripts/generate_data.py --transactions N --output WORK/data/tx-N-seedS --seed S``,
   unless that folder's ``generation_summary.json`` says it holds N rows of seed S.
2. The project: each stage (``ingest``, ``features``, ``segment``, ``recommend``, ``evaluate``)
   as its own command, the way a user runs it, on a fresh warehouse
   (``python -m customer_analytics <stage> --conf conf/local.yaml --set source.path=DATA --set
   warehouse.path=WAREHOUSE``, plus Spark event logging into a folder per stage).
3. The peers, each in its own process on the same Parquet files (``scripts/benchmark_peers.py``):
   ``pandas`` (``json.loads`` per row, ``pd.to_datetime``, ``groupby``), ``duckdb`` (SQL with
   its JSON functions) and ``spark`` (plain PySpark as two commands, each its own JVM with
   ``conf/local.yaml``'s Spark settings: the first writes the accepted orders as Parquet, the
   second the features; no Delta, no quarantine or other table: what Spark alone costs here for
   the compared work). They compute the ``customer_features`` columns ``customer_id``,
   ``as_of``, ``total_visits``, ``total_spend``, ``total_items``, ``distinct_products``,
   ``first_order_date``, ``last_order_date`` and ``recency_days`` (why these: the docstring of
   ``benchmark_peers.py``); the project's two stages also write ``order_lines``, ``orders``,
   ``customers``, ``quarantine``, the reconciliation and ``monthly_sales``.

Measured per process (a stage or a peer):

- ``seconds``: wall clock from start to exit, JVM start and Delta JAR loading included;
  ``stage_s`` is the stage's own time as the command prints it;
- ``input rows``: the summary line the command prints (``[<stage>] rows in N, rows out M,
  ...``): ingest counts source rows, features ``orders``, segment and recommend customers,
  evaluate the test customers; a peer counts the source rows it read; ``rows/s`` is input
  rows / seconds;
- ``peak RSS``: the largest resident memory (VmRSS in ``/proc``) sampled every 0.2 s: of the
  command's java processes for a stage (the driver JVM; local mode runs the executors in it),
  of the peer's processes for a peer (the ``spark`` peer's JVMs included), or its
  ``ru_maxrss`` from ``wait4`` when larger (exact for one process; samples can miss a short
  peak);
- ``Spark jobs``: ``SparkListenerJobStart`` events in the stage's event log (and
  ``SparkListenerStageSubmitted`` for Spark stages).

A peer that fails (out of memory, killed at ``--peer-memory-limit-mib``, over ``--timeout``) is
reported as did not complete, with the reason. On the smallest size the peers' outputs are
compared with the project's ``customer_features`` table: counts and dates exactly, sums to a
relative 1e-6.

Printed and written to ``OUT/benchmark-<UTC time>.json`` and ``.md``: per size a table of the
stages, the pipeline's total (the sum of the stage commands), ingest + features against each
peer with the ratio (project seconds / peer seconds: below 1 the project is faster), the growth
of each stage's seconds from one size to the next (the target for doubling the data is at most
2.1), the equality check, and the machine (cores, memory, load average at start and end).

Exit code 0 when every stage ran and every peer matched the project on the smallest size, 1
otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(REPO / "lib"))
sys.path.insert(0, str(SCRIPTS))

import benchmark_peers  # noqa: E402

from customer_analytics.config import loader  # noqa: E402
from customer_analytics.config.schema import SourceConfig  # noqa: E402
from customer_analytics.core.catalog import CUSTOMER_FEATURES  # noqa: E402
from customer_analytics.orchestration.jobs import PIPELINE_STAGES  # noqa: E402

SEED_TRANSACTIONS = 2_406_316
TEN_MILLION = 10_000_000
DEFAULT_SIZES = "0.25,1,2"
DEFAULT_SEED = 3
DEFAULT_CONF = "conf/local.yaml"
GENERATED_DATA_SETTING = (
    "source.exclude_periods=[{start: 2021-01-01, end: 2021-12-31, reason: incomplete_2021}]"
)
SAMPLE_SECONDS = 0.2
#: Growth target: a stage's seconds at twice the data over its seconds at the smaller size.
DOUBLING_TARGET = 2.1
PEER_LABELS = {
    "pandas": "pandas (notebook)",
    "duckdb": "DuckDB SQL",
    "spark": "plain PySpark (2 commands)",
}
MIB = 1024 * 1024

_SUMMARY = re.compile(
    r"^\[(?P<stage>[\w-]+)\] rows in (?P<rows_in>[\d,]+), rows out (?P<rows_out>[\d,]+)"
    r"(?P<detail>.*), (?P<seconds>[\d.]+) s$"
)
_RUN_LINE = re.compile(r"^\[(?P<stage>[\w-]+)\] run \S+, warehouse \S+ \((?P<tables>.+)\)$")


# ---------------------------------------------------------------------------------------------
# Sizes and the machine


@dataclass(frozen=True)
class Size:
    """A data size: its label (``1×``, ``10M``) and its number of transactions."""

    label: str
    transactions: int

    @property
    def fraction(self) -> float:
        """Transactions as a fraction of the seed's."""
        return self.transactions / SEED_TRANSACTIONS


def parse_sizes(text: str, *, with_10m: bool = False) -> list[Size]:
    """
    ``0.25,1,2`` -> sizes of ``round(f * 2,406,316)`` transactions, smallest first.

    Raises
    ------
    ValueError
        A fraction that is not a positive number, or a size below the generator's 1,000 rows.
    """
    sizes = []
    for part in text.split(","):
        try:
            fraction = float(part)
        except ValueError:
            raise ValueError(f"--sizes: {part!r} is not a number") from None
        if fraction <= 0:
            raise ValueError(f"--sizes: {part!r} must be > 0")
        transactions = round(fraction * SEED_TRANSACTIONS)
        if transactions < 1_000:
            raise ValueError(f"--sizes: {part} is {transactions} transactions; at least 1,000")
        sizes.append(Size(f"{fraction:g}×", transactions))
    if with_10m:
        sizes.append(Size("10M", TEN_MILLION))
    return sorted(set(sizes), key=lambda s: s.transactions)


def _meminfo() -> dict[str, int]:
    """``/proc/meminfo`` in KiB."""
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0])
    return values


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages from ``/proc/loadavg``."""
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _command_output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    except OSError:
        return ""
    return (done.stdout or done.stderr).strip()


def machine() -> dict[str, object]:
    """Cores, CPU model, memory, software versions and the checkout's commit."""
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = _meminfo()
    java = _command_output(["java", "-version"]).splitlines()
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu": cpu_model,
        "memory_mib": memory["MemTotal"] // 1024,
        "memory_available_mib_at_start": memory["MemAvailable"] // 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": java[0] if java else None,
        "versions": {
            p: _version(p) for p in ("pyspark", "delta-spark", "deltalake", "pandas", "duckdb")
        },
        "commit": _command_output(["git", "rev-parse", "HEAD"]),
        "uncommitted_changes": bool(_command_output(["git", "status", "--porcelain"])),
    }


# ---------------------------------------------------------------------------------------------
# Running a command and measuring it


@dataclass
class Measured:
    """One finished command: exit, wall time and memory."""

    exit_code: int
    seconds: float
    peak_rss_mib: float
    #: getrusage's ru_maxrss of the command: its own peak, or that of a child it waited for.
    ru_maxrss_mib: float
    stopped: str | None
    log: str


def _processes() -> list[tuple[int, int, str]]:
    """``(pid, session id, command name)`` of every process."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2 :].split()
        found.append((int(entry.name), int(fields[3]), name))
    return found


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def session_rss_kib(session: int, *, java_only: bool) -> int:
    """Resident memory of the processes of a session (only its ``java`` ones if asked), KiB."""
    return sum(
        _rss_kib(pid)
        for pid, sid, name in _processes()
        if sid == session and (name == "java" or not java_only)
    )


def _session_alive(session: int) -> bool:
    return any(sid == session for _, sid, _ in _processes())


def _kill_session(session: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(session, signal.SIGKILL)


def run_measured(
    command: Sequence[str],
    *,
    log: Path,
    env: dict[str, str],
    java_only: bool,
    memory_limit_mib: float | None = None,
    timeout: float | None = None,
) -> Measured:
    """
    Run ``command`` in its own session, its output to ``log``, sampling its memory.

    Parameters
    ----------
    command : sequence of str
        Started from the repository's folder.
    log : Path
        Receives stdout and stderr.
    env : dict
        The command's environment.
    java_only : bool
        Sample the session's ``java`` processes only (a Spark command's driver JVM), else the
        whole session.
    memory_limit_mib : float, optional
        Kill the session when its sampled memory goes over this.
    timeout : float, optional
        Kill the session after this many seconds.

    Returns
    -------
    Measured
        The exit code (negative: the signal that ended it), seconds until the command exited,
        peak sampled memory, ru_maxrss, and why the benchmark stopped it (or None). After the
        command exits, this waits (up to 60 s) for what it started to exit too (a JVM that stops
        its Spark context), so that no two measured commands overlap.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    peak_kib, stopped = 0, None
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(command),
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                rss_kib = session_rss_kib(proc.pid, java_only=java_only)
                peak_kib = max(peak_kib, rss_kib)
                elapsed = time.perf_counter() - started
                if stopped is None and memory_limit_mib and rss_kib / 1024 > memory_limit_mib:
                    stopped = (
                        f"stopped by the benchmark at {rss_kib / 1024:,.0f} MiB, over the limit "
                        f"of {memory_limit_mib:,.0f} MiB (--peer-memory-limit-mib)"
                    )
                    _kill_session(proc.pid)
                elif stopped is None and timeout and elapsed > timeout:
                    stopped = f"stopped by the benchmark after {timeout:,.0f} s (--timeout)"
                    _kill_session(proc.pid)
                time.sleep(SAMPLE_SECONDS)
        except BaseException:
            _kill_session(proc.pid)
            proc.wait()
            raise
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        deadline = time.monotonic() + 60
        while _session_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(SAMPLE_SECONDS)
    return Measured(
        exit_code=proc.returncode,
        seconds=round(seconds, 2),
        peak_rss_mib=round(peak_kib / 1024, 1),
        ru_maxrss_mib=round(usage.ru_maxrss / 1024, 1),
        stopped=stopped,
        log=str(log),
    )


def child_environment() -> dict[str, str]:
    """This environment with the checkout's ``lib/`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    paths = [str(REPO / "lib"), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def failure_reason(measured: Measured) -> str:
    """Why a command did not complete, in one line."""
    if measured.stopped:
        return measured.stopped
    if measured.exit_code < 0:
        name = signal.Signals(-measured.exit_code).name
        hint = " (the kernel's out-of-memory killer?)" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    lines = [ln for ln in Path(measured.log).read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("customer-analytics: error:")]
    last = (errors or lines or ["(no output)"])[-1].strip()
    return f"exit code {measured.exit_code}: {last}"


def summary_lines(text: str) -> dict[str, dict[str, object]]:
    """
    The stage summary lines a command printed, by stage.

    Returns
    -------
    dict
        ``stage -> {rows_in, rows_out, detail, seconds}``, plus ``tables`` (how the warehouse is
        written, e.g. native Delta) from the line a run starts with.
    """
    found: dict[str, dict[str, object]] = {}
    tables = None
    for line in text.splitlines():
        if match := _RUN_LINE.match(line.strip()):
            tables = match["tables"]
        elif match := _SUMMARY.match(line.strip()):
            found[match["stage"]] = {
                "rows_in": int(match["rows_in"].replace(",", "")),
                "rows_out": int(match["rows_out"].replace(",", "")),
                "detail": match["detail"].lstrip(", "),
                "seconds": float(match["seconds"]),
                "tables": tables,
            }
    return found


def count_spark_events(folder: Path) -> tuple[int, int]:
    """
    ``(jobs, stages)`` started, from the Spark event logs under ``folder``: single files, or
    the ``events_*`` files of rolling logs (``eventlog_v2_<app>/``, Spark 4's default).
    """
    jobs = stages = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith((".", "appstatus")):
            continue
        with path.open(errors="replace") as events:
            for line in events:
                if line.startswith('{"Event":"SparkListenerJobStart"'):
                    jobs += 1
                elif line.startswith('{"Event":"SparkListenerStageSubmitted"'):
                    stages += 1
    return jobs, stages


# ---------------------------------------------------------------------------------------------
# One size: data, stages, peers


@dataclass
class StageResult:
    """One stage command (or the whole pipeline as one command)."""

    stage: str
    status: str  # succeeded | failed | skipped
    seconds: float | None = None
    stage_seconds: float | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_per_second: float | None = None
    peak_rss_mib: float | None = None
    ru_maxrss_mib: float | None = None
    spark_jobs: int | None = None
    spark_stages: int | None = None
    tables: str | None = None
    detail: str | None = None
    reason: str | None = None
    log: str | None = None


@dataclass
class PeerResult:
    """One peer's run on one size."""

    peer: str
    status: str  # completed | did not complete
    seconds: float | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_per_second: float | None = None
    peak_rss_mib: float | None = None
    ru_maxrss_mib: float | None = None
    output: str | None = None
    reason: str | None = None
    log: str | None = None


@dataclass
class SizeResult:
    """Everything measured on one size."""

    label: str
    transactions: int
    fraction: float
    data: str
    generation: dict[str, object]
    stages: list[StageResult] = field(default_factory=list)
    pipeline_command: StageResult | None = None
    peers: list[PeerResult] = field(default_factory=list)

    def stage(self, name: str) -> StageResult | None:
        return next((s for s in self.stages if s.stage == name), None)

    def total_seconds(self, names: Sequence[str]) -> float | None:
        """Summed seconds of the named stages; None unless all of them succeeded."""
        picked = [self.stage(n) for n in names]
        if not picked or any(s is None or s.status != "succeeded" for s in picked):
            return None
        return round(sum(s.seconds for s in picked), 2)

    @property
    def pipeline_seconds(self) -> float | None:
        return self.total_seconds([s.stage for s in self.stages])

    @property
    def ingest_features_seconds(self) -> float | None:
        return self.total_seconds(["ingest", "features"])

    def peer(self, name: str) -> PeerResult | None:
        return next((p for p in self.peers if p.peer == name), None)

    def ratio(self, peer_name: str) -> float | None:
        """Ingest + features seconds / the peer's seconds (below 1: the project is faster)."""
        peer, ours = self.peer(peer_name), self.ingest_features_seconds
        if ours is None or peer is None or peer.status != "completed" or not peer.seconds:
            return None
        return round(ours / peer.seconds, 3)


def ensure_data(size: Size, work: Path, seed: int, env: dict[str, str]) -> tuple[Path, dict]:
    """
    The folder of generated data for ``size``, generating it unless it is there already.

    Returns
    -------
    tuple of (Path, dict)
        ``DIR/transactions`` and ``{"reused": bool, "seconds": ..., "rows_written": ...}``.

    Raises
    ------
    RuntimeError
        When the generator fails (its log is named).
    """
    folder = work / "data" / f"tx-{size.transactions}-seed{seed}"
    summary_file = folder / "generation_summary.json"
    if summary_file.exists():
        summary = json.loads(summary_file.read_text())
        made = (summary.get("requested_transactions"), summary.get("seed"))
        if made == (size.transactions, seed):
            return folder / "transactions", {
                "reused": True,
                "seconds": summary.get("seconds", {}).get("total"),
                "rows_written": summary.get("rows_written"),
            }
    print(f"[{size.label}] generating {size.transactions:,} transactions into {folder}", flush=True)
    log = work / "logs" / f"generate-{size.transactions}-seed{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        str(SCRIPTS / "generate_data.py"),
        "--transactions",
        str(size.transactions),
        "--output",
        str(folder),
        "--seed",
        str(seed),
    ]
    with log.open("w") as out:
        done = subprocess.run(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"generate_data.py failed (exit {done.returncode}); see {log}")
    summary = json.loads(summary_file.read_text())
    return folder / "transactions", {
        "reused": False,
        "seconds": summary["seconds"]["total"],
        "rows_written": summary["rows_written"],
    }


def stage_command(
    job: str, *, conf: str, data: Path, warehouse: Path, event_log: Path, sets: Sequence[str]
) -> list[str]:
    """The command a user runs for ``job``, with Spark event logging into ``event_log``."""
    overrides = [
        f"source.path={data}",
        f"warehouse.path={warehouse}",
        "spark.conf.spark.eventLog.enabled=true",
        f"spark.conf.spark.eventLog.dir={event_log.as_uri()}",
        "spark.conf.spark.eventLog.compress=false",
        *sets,
    ]
    command = [sys.executable, "-m", "customer_analytics", job, "--conf", conf]
    for override in overrides:
        command += ["--set", override]
    return command


def run_stage(job: str, run_dir: Path, data: Path, args, env: dict[str, str]) -> StageResult:
    """
    Run one stage command (``job`` in PIPELINE_STAGES), or ``pipeline`` (every stage, one command).

    Returns
    -------
    StageResult
        Seconds, rows, memory and Spark jobs of the command.
    """
    event_log = run_dir / "eventlog" / job
    shutil.rmtree(event_log, ignore_errors=True)
    event_log.mkdir(parents=True)
    command = stage_command(
        job,
        conf=args.conf,
        data=data,
        warehouse=run_dir / ("warehouse-pipeline" if job == "pipeline" else "warehouse"),
        event_log=event_log,
        sets=args.set,
    )
    measured = run_measured(
        command, log=run_dir / "logs" / f"{job}.log", env=env, java_only=True, timeout=args.timeout
    )
    jobs, spark_stages = count_spark_events(event_log)
    summaries = summary_lines(Path(measured.log).read_text(errors="replace"))
    names = list(PIPELINE_STAGES) if job == "pipeline" else [job]
    ok = measured.exit_code == 0 and all(n in summaries for n in names)
    rows_in = summaries[names[0]]["rows_in"] if names[0] in summaries else None
    return StageResult(
        stage=job,
        status="succeeded" if ok else "failed",
        seconds=measured.seconds,
        stage_seconds=round(sum(s["seconds"] for s in summaries.values()), 2)
        if summaries
        else None,
        rows_in=rows_in,
        rows_out=summaries[names[-1]]["rows_out"] if names[-1] in summaries else None,
        rows_per_second=round(rows_in / measured.seconds, 1) if rows_in else None,
        peak_rss_mib=measured.peak_rss_mib,
        ru_maxrss_mib=measured.ru_maxrss_mib,
        spark_jobs=jobs,
        spark_stages=spark_stages,
        tables=next((s["tables"] for s in summaries.values() if s["tables"]), None),
        detail="; ".join(f"{n}: {s['detail']}" for n, s in summaries.items() if s["detail"]),
        reason=None if ok else failure_reason(measured),
        log=measured.log,
    )


def peer_command(peer: str, data: Path, output: Path, source: SourceConfig) -> list[str]:
    """The command of one peer, with the configuration's date formats and excluded periods."""
    command = [sys.executable, str(SCRIPTS / "benchmark_peers.py"), peer]
    command += ["--source", str(data), "--output", str(output)]
    for pattern in source.effective_date_formats():
        text = pattern if peer == "spark" else benchmark_peers.strptime_format(pattern)
        command += ["--date-format", text]
    for period in source.exclude_periods:
        command += ["--exclude", f"{period.start.isoformat()}:{period.end.isoformat()}"]
    return command


def run_peer(peer: str, run_dir: Path, data: Path, source: SourceConfig, args, env) -> PeerResult:
    """Run one peer in its own process; a failure is a result (did not complete), not an error."""
    output = run_dir / "peers" / f"{peer}.parquet"
    output.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (output, Path(benchmark_peers.spark_orders_path(output))):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        leftover.unlink(missing_ok=True)
    measured = run_measured(
        peer_command(peer, data, output, source),
        log=run_dir / "logs" / f"peer-{peer}.log",
        env=env,
        java_only=False,
        memory_limit_mib=args.peer_memory_limit_mib or None,
        timeout=args.timeout,
    )
    summary = summary_lines(Path(measured.log).read_text(errors="replace")).get(peer)
    completed = measured.exit_code == 0 and summary is not None and output.exists()
    result = PeerResult(
        peer=peer,
        status="completed" if completed else "did not complete",
        seconds=measured.seconds,
        peak_rss_mib=max(measured.peak_rss_mib, measured.ru_maxrss_mib),
        ru_maxrss_mib=measured.ru_maxrss_mib,
        reason=None if completed else failure_reason(measured),
        log=measured.log,
    )
    if completed:
        result.rows_in, result.rows_out = summary["rows_in"], summary["rows_out"]
        result.rows_per_second = round(summary["rows_in"] / measured.seconds, 1)
        result.output = str(output)
    return result


def run_size(size: Size, args, source: SourceConfig, env) -> SizeResult:
    """Generate (or reuse) the data of one size, run the stages, then the peers."""
    work = args.work
    data, generation = ensure_data(size, work, args.seed, env)
    run_dir = work / "runs" / f"tx-{size.transactions}-seed{args.seed}"
    for leftover in ("warehouse", "warehouse-pipeline"):
        shutil.rmtree(run_dir / leftover, ignore_errors=True)
    result = SizeResult(
        size.label, size.transactions, round(size.fraction, 4), str(data), generation
    )
    print(f"== {size.label}: {size.transactions:,} transactions ({data})", flush=True)
    failed = False
    for job in args.stages:
        if failed:
            result.stages.append(StageResult(job, "skipped", reason="an earlier stage failed"))
            continue
        stage = run_stage(job, run_dir, data, args, env)
        result.stages.append(stage)
        failed = stage.status != "succeeded"
        print(f"[{size.label}] {job}: {_progress_text(stage)}", flush=True)
    if args.pipeline_command:
        result.pipeline_command = run_stage("pipeline", run_dir, data, args, env)
        print(f"[{size.label}] pipeline: {_progress_text(result.pipeline_command)}", flush=True)
    for peer in benchmark_peers.PEERS:
        outcome = run_peer(peer, run_dir, data, source, args, env)
        result.peers.append(outcome)
        text = (
            f"{outcome.seconds:.1f} s, peak {outcome.peak_rss_mib:,.0f} MiB"
            if outcome.status == "completed"
            else f"did not complete: {outcome.reason}"
        )
        print(f"[{size.label}] {PEER_LABELS[peer]}: {text}", flush=True)
    return result


def _progress_text(stage: StageResult) -> str:
    if stage.status != "succeeded":
        return f"{stage.status}: {stage.reason} (log {stage.log})"
    return (
        f"{stage.seconds:.1f} s, peak {stage.peak_rss_mib:,.0f} MiB, {stage.spark_jobs} Spark jobs"
    )


# ---------------------------------------------------------------------------------------------
# Equality on the smallest size, growth between sizes


def read_delta_columns(table: Path, columns: Sequence[str]):
    """
    Some columns of a Delta table's current version, as pandas.

    Reads the version's Parquet files (``DeltaTable.file_uris``) with pyarrow: the project's
    tables have no deletion vectors, and this avoids the dataset scanner's threads that can
    abort the interpreter at exit (delta-rs #2184).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    files = [uri.removeprefix("file://") for uri in DeltaTable(str(table)).file_uris()]
    return pa.concat_tables([pq.read_table(f, columns=list(columns)) for f in files]).to_pandas()


def check_equality(result: SizeResult, warehouse: Path) -> dict[str, object]:
    """
    Compare each completed peer's output with the project's ``customer_features``.

    Returns
    -------
    dict
        ``size``, ``columns``, ``equal`` (True only when every peer completed and matched) and
        per peer ``{"equal": bool, "detail": str, "examples": [...]}``.
    """
    import pandas as pd

    report: dict[str, object] = {
        "size": result.label,
        "columns": list(benchmark_peers.FEATURE_COLUMNS),
        "exact": list(benchmark_peers.EXACT_COLUMNS),
        "relative_tolerance": {
            name: benchmark_peers.RELATIVE_TOLERANCE for name in benchmark_peers.APPROX_COLUMNS
        },
        "peers": {},
    }
    features = result.stage("features")
    if features is None or features.status != "succeeded":
        report["equal"] = False
        report["detail"] = "not checked: the features stage did not run"
        return report
    project = read_delta_columns(warehouse / CUSTOMER_FEATURES, benchmark_peers.FEATURE_COLUMNS)
    for peer in result.peers:
        if peer.status != "completed":
            report["peers"][peer.peer] = {"equal": False, "detail": f"not checked: {peer.reason}"}
            continue
        comparison = benchmark_peers.compare_features(project, pd.read_parquet(peer.output))
        report["peers"][peer.peer] = {
            "equal": comparison.equal,
            "detail": comparison.describe(),
            "examples": comparison.examples,
        }
    report["equal"] = len(report["peers"]) == len(benchmark_peers.PEERS) and all(
        p["equal"] for p in report["peers"].values()
    )
    return report


def _row_seconds(result: SizeResult) -> dict[str, float | None]:
    """Seconds per row of the growth table: stages, totals and peers."""
    rows: dict[str, float | None] = {}
    for stage in result.stages:
        rows[stage.stage] = stage.seconds if stage.status == "succeeded" else None
    rows["pipeline total"] = result.pipeline_seconds
    rows["ingest + features"] = result.ingest_features_seconds
    for peer in result.peers:
        rows[PEER_LABELS[peer.peer]] = peer.seconds if peer.status == "completed" else None
    return rows


def growth(results: Sequence[SizeResult]) -> list[dict[str, object]]:
    """
    Seconds at each size over seconds at the next smaller size, per stage, total and peer.

    Returns
    -------
    list of dict
        One per consecutive pair: ``from``, ``to``, ``data_ratio`` and ``seconds_ratio``
        (row -> ratio or None); where the data doubles, ``target`` (2.1) and ``within_target``.
    """
    pairs = []
    for small, large in zip(results, results[1:], strict=False):
        before, after = _row_seconds(small), _row_seconds(large)
        ratios = {
            name: round(after[name] / before[name], 3)
            if before.get(name) and after.get(name)
            else None
            for name in after
        }
        pair: dict[str, object] = {
            "from": small.label,
            "to": large.label,
            "data_ratio": round(large.transactions / small.transactions, 3),
            "seconds_ratio": ratios,
        }
        if abs(large.transactions / small.transactions - 2) < 0.01:
            pair["target"] = DOUBLING_TARGET
            pair["within_target"] = {
                stage.stage: (ratios.get(stage.stage) or 0) <= DOUBLING_TARGET
                for stage in large.stages
                if ratios.get(stage.stage) is not None
            }
        pairs.append(pair)
    return pairs


# ---------------------------------------------------------------------------------------------
# Tables: printed and markdown


def _num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.2f} ({'project faster' if ratio < 1 else 'project slower'})"


def size_tables(result: SizeResult) -> list[tuple[str, list[str], list[list[str]]]]:
    """``(title, header, rows)`` of one size's tables: stages, then project vs peers."""
    header = [
        "stage",
        "seconds",
        "stage s",
        "input rows",
        "rows/s",
        "peak RSS MiB",
        "Spark jobs",
        "Spark stages",
        "status",
    ]
    rows = []
    commands = [*result.stages, *([result.pipeline_command] if result.pipeline_command else [])]
    for s in commands:
        name = "pipeline (one command)" if s.stage == "pipeline" else s.stage
        status = s.status if s.status == "succeeded" else f"{s.status}: {s.reason}"
        rows.append(
            [
                name,
                _num(s.seconds, 1),
                _num(s.stage_seconds, 1),
                _num(s.rows_in),
                _num(s.rows_per_second),
                _num(s.peak_rss_mib),
                _num(s.spark_jobs),
                _num(s.spark_stages),
                status,
            ]
        )
    rows.append(["pipeline total (stage commands)", _num(result.pipeline_seconds, 1)] + [""] * 7)
    peer_header = [
        "ingest + features",
        "seconds",
        "input rows",
        "rows/s",
        "peak RSS MiB",
        "ratio",
        "status",
    ]
    ingest, feats = result.stage("ingest"), result.stage("features")
    peaks = [s.peak_rss_mib for s in (ingest, feats) if s and s.peak_rss_mib is not None]
    ours = result.ingest_features_seconds
    peer_rows = [
        [
            "project (2 commands)",
            _num(ours, 1),
            _num(ingest.rows_in if ingest else None),
            _num(ingest.rows_in / ours if ingest and ingest.rows_in and ours else None),
            _num(max(peaks) if peaks else None),
            "",
            "completed" if ours is not None else "did not complete",
        ]
    ]
    for p in result.peers:
        completed = p.status == "completed"
        peer_rows.append(
            [
                PEER_LABELS[p.peer],
                _num(p.seconds, 1),
                _num(p.rows_in),
                _num(p.rows_per_second),
                _num(p.peak_rss_mib),
                _ratio_text(result.ratio(p.peer)),
                p.status if completed else f"{p.status}: {p.reason}",
            ]
        )
    return [
        (f"{result.label}: {result.transactions:,} transactions", header, rows),
        (
            f"{result.label}: ingest + features vs the peers (ratio = project s / peer s)",
            peer_header,
            peer_rows,
        ),
    ]


def growth_table(pairs: Sequence[dict]) -> tuple[str, list[str], list[list[str]]] | None:
    """``(title, header, rows)`` of the growth ratios, or None with fewer than two sizes."""
    if not pairs:
        return None
    header = ["seconds ratio"] + [
        f"{p['from']} → {p['to']} (data ×{p['data_ratio']:g})" for p in pairs
    ]
    names = list(pairs[-1]["seconds_ratio"])
    rows = []
    for name in names:
        cells = [name]
        for p in pairs:
            ratio = p["seconds_ratio"].get(name)
            text = _num(ratio, 2)
            if ratio is not None and name in p.get("within_target", {}):
                text += " ok" if p["within_target"][name] else f" over {DOUBLING_TARGET}"
            cells.append(text)
        rows.append(cells)
    return f"growth per stage (target for doubled data: ≤ {DOUBLING_TARGET})", header, rows


def render_text(title: str, header: list[str], rows: list[list[str]]) -> str:
    """A table as aligned text: numbers right, names and status left."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    left = {0} | {i for i, name in enumerate(header) if name == "status"}

    def line(cells: list[str]) -> str:
        padded = [
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([f"\n{title}", line(header), *[line(r) for r in rows]])


def render_markdown(title: str, header: list[str], rows: list[list[str]]) -> str:
    """A table as a markdown section with a pipe table."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    align = ["---"] + ["---" if name == "status" else "---:" for name in header[1:]]
    lines.append("|" + "|".join(align) + "|")
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def equality_text(report: dict | None) -> list[str]:
    if report is None:
        return []
    lines = [
        f"equality on {report['size']} ({', '.join(report['columns'])}; counts and dates exact, "
        f"sums to a relative {benchmark_peers.RELATIVE_TOLERANCE:g}):"
    ]
    if "detail" in report:
        lines.append(f"  {report['detail']}")
    for peer, outcome in report["peers"].items():
        lines.append(f"  {PEER_LABELS[peer]}: {outcome['detail']}")
        lines += [f"    {example}" for example in outcome.get("examples", [])]
    return lines


def _loads(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def markdown_report(report: dict, tables: list[tuple[str, list[str], list[list[str]]]]) -> str:
    m = report["machine"]
    parts = [
        f"# Benchmark {report['started_at']}",
        "",
        f"- command: `{' '.join(report['command'])}`",
        f"- machine: {m['cores']} cores ({m['cpu']}), {m['memory_mib']:,} MiB memory, "
        f"Linux {m['kernel']}, Python {m['python']}, {m['java']}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in m['versions'].items())}",
        f"- commit: {m['commit']}"
        + (" (with uncommitted changes)" if m["uncommitted_changes"] else ""),
        f"- load average (1, 5, 15 min): {_loads(report['load_average_start'])} at start, "
        f"{_loads(report['load_average_end'])} at end",
        f"- seconds: wall clock of each command, JVM start included; {report['seconds']:.0f} s "
        "in all",
        "",
    ]
    parts += [render_markdown(*t) for t in tables]
    if report.get("equality"):
        parts += ["### Equality", "", *[f"    {ln}" for ln in equality_text(report["equality"])]]
    parts.append(f"\nexit code {report['exit_code']}")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="fractions of 2,406,316 rows")
    parser.add_argument("--with-10m", action="store_true", help="add 10,000,000 transactions")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed")
    parser.add_argument("--work", type=Path, default=REPO / "data" / "benchmark")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks")
    parser.add_argument("--conf", default=DEFAULT_CONF, help="configuration of every stage")
    parser.add_argument(
        "--stages", default=",".join(PIPELINE_STAGES), help="stages to run, in order"
    )
    parser.add_argument(
        "--pipeline-command",
        action="store_true",
        help="also run 'pipeline' as one command on each size",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--peer-memory-limit-mib", type=float, default=None)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per command")
    args = parser.parse_args(argv)
    # the generated data imitates the seed's, whose 2021 is incomplete: left out of every model
    args.set = [GENERATED_DATA_SETTING, *args.set]
    try:
        args.sizes = parse_sizes(args.sizes, with_10m=args.with_10m)
    except ValueError as exc:
        parser.error(str(exc))
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in args.stages if s not in PIPELINE_STAGES]
    if unknown or args.stages != [s for s in PIPELINE_STAGES if s in args.stages]:
        parser.error(f"--stages: a subset of {','.join(PIPELINE_STAGES)} in that order")
    if args.peer_memory_limit_mib is None:
        args.peer_memory_limit_mib = round(_meminfo()["MemAvailable"] / 1024 * 0.9)
    args.work = args.work.resolve()
    args.out = args.out.resolve()
    args.conf = (
        str((REPO / args.conf).resolve()) if not Path(args.conf).is_absolute() else args.conf
    )
    return args


def peer_source_config(args: argparse.Namespace) -> SourceConfig:
    """
    The configuration's ``source`` section (date formats, excluded periods) for the peers.

    Raises
    ------
    SystemExit
        When the configuration asks for what the peers do not implement.
    """
    cfg = loader.load(args.conf, [f"source.path={args.work}", *args.set])
    if cfg.source.kind != "product_json":
        sys.exit(f"benchmark: the peers read product_json sources, not {cfg.source.kind}")
    if cfg.features.as_of is not None or cfg.features.lookback_days is not None:
        sys.exit("benchmark: the peers use as_of = the last order date and no lookback_days")
    return cfg.source


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the tables, write JSON and markdown; return the exit code."""
    args = parse_args(argv)
    source = peer_source_config(args)
    env = child_environment()
    started = datetime.now(UTC)
    clock = time.perf_counter()
    report: dict[str, object] = {
        "started_at": started.isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine(),
        "load_average_start": load_average(),
        "settings": {
            "sizes": [asdict(s) for s in args.sizes],
            "seed": args.seed,
            "conf": args.conf,
            "set": args.set,
            "stages": args.stages,
            "peer_memory_limit_mib": args.peer_memory_limit_mib,
            "timeout": args.timeout,
            "work": str(args.work),
            "sample_seconds": SAMPLE_SECONDS,
        },
    }
    results: list[SizeResult] = []
    equality = None
    for size in args.sizes:
        result = run_size(size, args, source, env)
        results.append(result)
        if equality is None:
            warehouse = args.work / "runs" / f"tx-{size.transactions}-seed{args.seed}"
            equality = check_equality(result, warehouse / "warehouse")
            print("\n".join(equality_text(equality)), flush=True)
    pairs = growth(results)
    report["load_average_end"] = load_average()
    report["seconds"] = round(time.perf_counter() - clock, 1)
    stages_ok = all(s.status == "succeeded" for r in results for s in r.stages)
    report["exit_code"] = 0 if stages_ok and equality and equality["equal"] else 1
    report["sizes"] = [
        {
            **asdict(r),
            "pipeline_seconds": r.pipeline_seconds,
            "ingest_features_seconds": r.ingest_features_seconds,
            "ratio_to_peers": {p: r.ratio(p) for p in benchmark_peers.PEERS},
        }
        for r in results
    ]
    report["growth"] = pairs
    report["equality"] = equality

    tables = [t for r in results for t in size_tables(r)]
    if (growth_rows := growth_table(pairs)) is not None:
        tables.append(growth_rows)
    print("\n".join(render_text(*t) for t in tables))
    print("\n" + "\n".join(equality_text(equality)))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    json_path = args.out / f"benchmark-{stamp}.json"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path = args.out / f"benchmark-{stamp}.md"
    md_path.write_text(markdown_report(report, tables))
    print(f"\nwritten: {json_path} and {md_path.name}; exit code {report['exit_code']}")
    return int(report["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
