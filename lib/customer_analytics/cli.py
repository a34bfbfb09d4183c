"""
The ``customer-analytics`` command and the ``jobs/*.py`` entry points.

``customer-analytics <job> [--conf PATH] [--as-of YYYY-MM-DD] [--set section.key=value ...]``

Exit codes: 0 success; 2 bad configuration, arguments or input (one line on stderr, before
any Spark work where it can be known then); 1 anything else (traceback on stderr). Every run
that got as far as a Spark session appends a row to the ``runs`` table.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from datetime import UTC, date, datetime

from customer_analytics import __version__
from customer_analytics.config import Config, load, source_paths
from customer_analytics.errors import ConcurrentWriteError, ConfigError, UserError
from customer_analytics.pipeline import JOBS, PIPELINE, SEGMENT_MODES, Job, JobContext
from customer_analytics.progress import Progress
from customer_analytics.runs import RUNS_TABLE, RunRecord, new_run_id

PROG = "customer-analytics"
DEFAULT_CONF = os.path.join("conf", "local.yaml")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Customer analytics on Spark: ingest sales into Delta tables, build the "
        "customer single view, segment customers and recommend products.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--conf",
        default=DEFAULT_CONF,
        metavar="PATH",
        help=f"YAML configuration (default: {DEFAULT_CONF})",
    )
    common.add_argument(
        "--as-of",
        type=_iso_date,
        action="append",
        metavar="YYYY-MM-DD",
        help="last day observed (overrides features.as_of); default: date of the last order "
        "(segment, recommend: the date of their input table); pipeline takes several, e.g. the "
        "half-years of the data, and runs the stages after ingest for each in turn (the report "
        "once, for the last)",
    )
    common.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration key, e.g. --set warehouse.path=/tmp/wh (repeatable)",
    )
    jobs = parser.add_subparsers(dest="job", metavar="JOB", required=True)
    mode = argparse.ArgumentParser(add_help=False)
    mode.add_argument(
        "--mode",
        choices=SEGMENT_MODES,
        default="fit",
        help="segment: fit a new model (default) or score with the latest saved model",
    )
    for job in JOBS.values():
        parents = [common, mode] if job.name == "segment" else [common]
        jobs.add_parser(job.name, parents=parents, help=job.help, description=job.help)
    stages = " -> ".join(PIPELINE)
    pipeline = jobs.add_parser(
        "pipeline",
        parents=[common, mode],
        help=f"run every stage in order ({stages})",
        description=f"Run every stage in order: {stages}.",
    )
    pipeline.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=[name for name in PIPELINE if name != "ingest"],
        metavar="STAGE",
        help="leave a stage out (repeatable), e.g. --skip clv on too few customers to fit it",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, validate configuration, run the job; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return int(exit_.code or 0)
    if args.job == "pipeline":
        stages = [name for name in PIPELINE if name not in args.skip]
    else:
        stages = [args.job]
    dates = sorted(set(args.as_of or []))
    try:
        if len(dates) > 1 and args.job != "pipeline":
            raise ConfigError(f"--as-of: {args.job} runs for one date; pipeline takes several")
        config = _load_config(args, dates)
        if any(JOBS[name].reads_source for name in stages):
            source_paths(config.source)
    except UserError as exc:
        _error(str(exc))
        return EXIT_USAGE
    return run(
        args.job,
        [JOBS[name] for name in stages],
        config,
        dates,
        argv,
        mode=getattr(args, "mode", "fit"),
    )


def console_main() -> None:
    """
    Entry point of the ``customer-analytics`` console script and of Databricks wheel tasks.

    A console script exits with what its function returns, but a Databricks
    ``python_wheel_task`` calls the entry point and ignores the return value: a job that
    returned 2 would be reported as succeeded and the next task would run. Raising
    ``SystemExit`` with the exit code fails the task; success returns normally.

    Raises
    ------
    SystemExit
        With the exit code of :func:`main` when it is not 0.
    """
    code = main()
    if code != EXIT_OK:
        raise SystemExit(code)


def run_job(job: str, argv: list[str] | None = None) -> int:
    """Entry point of ``jobs/<job>.py``: the same as ``customer-analytics <job> ...``."""
    return main([job, *(sys.argv[1:] if argv is None else argv)])


def run(
    job_name: str,
    jobs: list[Job],
    config: Config,
    dates: list[date],
    argv: list[str],
    mode: str = "fit",
) -> int:
    """
    Start the session, run ``jobs`` in order, record the run; return the exit code.

    With several ``dates`` the jobs that read the source run once, then the others run for
    each date in turn (oldest first).
    """
    from customer_analytics import session
    from customer_analytics.storage import FileSystem, join
    from customer_analytics.tables import Warehouse

    progress = Progress()
    record = RunRecord(new_run_id(), job_name, argv, datetime.now(UTC))
    try:
        spark = session.build(
            config.spark,
            delta=config.warehouse.delta,
            paths=(config.warehouse.path, config.source.path),
        )
        warehouse = Warehouse.for_path(spark, config.warehouse.path, config.warehouse.delta)
        location = FileSystem.for_session(spark).qualified(warehouse.path)
    except UserError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    progress.say(f"[{job_name}] run {record.run_id}, warehouse {location} ({warehouse.describe()})")
    ctx = JobContext(spark, config, warehouse, record.run_id, None, progress, mode=mode)
    code, error = EXIT_OK, None
    try:
        with session.reliable_checkpoints(spark, join(warehouse.path, session.CHECKPOINTS_FOLDER)):
            for job, as_of in _steps(jobs, dates):
                ctx.as_of = as_of
                label = job.name if len(dates) < 2 or job.reads_source else f"{job.name} {as_of}"
                with progress.stage(label) as summary:
                    job.run(ctx, summary)
    except UserError as exc:
        code, error = exc.exit_code, str(exc)
        _error(error)
    except Exception as exc:
        code, error = EXIT_FAILED, f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        _error(f"{job_name} failed: {error.splitlines()[0]}")
    record.finish("succeeded" if code == EXIT_OK else "failed", progress.stages, error)
    try:
        _append_run_record(warehouse, record.to_frame(spark))
    except Exception as exc:  # the run's own outcome matters more than its record
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        if code == EXIT_OK:
            _error(
                f"the run succeeded but its record could not be appended to the runs table: {cause}"
            )
        else:  # e.g. the JVM is gone after an out-of-memory error: the cause is the one above
            _error(f"the run's record could not be appended to the runs table either: {cause}")
        code = code or EXIT_FAILED
    if code == EXIT_OK:
        report = f"; report {ctx.report_file}" if ctx.report_file else ""
        progress.say(
            f"[{job_name}] done in {sum(s.seconds for s in progress.stages):.1f} s; tables in "
            f"{location}{report}"
        )
    return code


def _append_run_record(warehouse, record, attempts: int = 3) -> None:
    """
    Append to the runs table; an append that lost to another run's commit (both creating the
    table) is tried again, as an append's rows are not yet in the table.
    """
    for attempt in range(1, attempts + 1):
        try:
            warehouse.write(RUNS_TABLE, record, mode="append")
            return
        except ConcurrentWriteError:
            if attempt == attempts:
                raise


def _steps(jobs: list[Job], dates: list[date]) -> list[tuple[Job, date | None]]:
    """
    (job, as_of) in the order they run: source readers once, then the other stages once per
    date, then the stages for the last date only (the report).
    """
    if len(dates) < 2:
        return [(job, dates[0] if dates else None) for job in jobs]
    once = [(job, None) for job in jobs if job.reads_source]
    per_date = [j for j in jobs if not (j.reads_source or j.last_date_only)]
    last = [(job, dates[-1]) for job in jobs if job.last_date_only]
    return once + [(job, day) for day in dates for job in per_date] + last


def _load_config(args: argparse.Namespace, dates: list[date]) -> Config:
    config = load(args.conf, args.set)
    if len(dates) == 1:
        config = config.with_overrides([f"features.as_of={dates[0].isoformat()}"])
    return config


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


__all__ = ["main", "console_main", "run_job", "build_parser", "ConfigError"]
