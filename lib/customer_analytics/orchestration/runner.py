"""
The runner: start the session, run the jobs in order (once per ``--as-of`` date where asked),
print a line per stage and append the run's record to the ``runs`` table.

Exit codes: 0 success; 2 bad configuration, arguments or input (one line on stderr); 3 another
run committed to a table this run was writing; 1 anything else (traceback on stderr). Every run
that got as far as a Spark session appends a row to the ``runs`` table.
"""

from __future__ import annotations

import sys
import traceback
from datetime import UTC, date, datetime

from customer_analytics.config.schema import Config
from customer_analytics.core import catalog
from customer_analytics.core.connect import hide_token, is_connect
from customer_analytics.core.errors import ConcurrentWriteError, UserError, first_line
from customer_analytics.core.paths import join
from customer_analytics.io import filesystem
from customer_analytics.io.tables import Warehouse
from customer_analytics.orchestration.jobs import Job, JobContext
from customer_analytics.orchestration.progress import Progress
from customer_analytics.orchestration.runs import RunRecord, new_run_id
from customer_analytics.runtime import materialize, session

PROG = "customer-analytics"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def error_line(message: str) -> None:
    """Print ``customer-analytics: error: <message>`` on stderr."""
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


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

    Of several jobs (``pipeline``), one whose ``skip_reason`` gives a reason is skipped, and
    the run goes on: the stages the data supports run (e.g. no product lists from a source
    without products).

    With several ``dates`` the jobs that read the source run once, then the others run for
    each date in turn (oldest first).
    """
    progress = Progress()
    several = len(jobs) > 1  # a stage the user asked for alone is never skipped
    record = RunRecord(new_run_id(), job_name, [hide_token(a) for a in argv], datetime.now(UTC))
    warehouse_cfg = config.warehouse
    try:
        spark = session.build(
            config.spark,
            delta=warehouse_cfg.delta,
            paths=(warehouse_cfg.path, config.source.path),
            metastore_path=warehouse_cfg.path if warehouse_cfg.schema_ else None,
        )
    except UserError as exc:
        error_line(str(exc))
        return EXIT_USAGE
    try:
        warehouse = Warehouse.for_config(spark, warehouse_cfg)
        location = describe_location(spark, warehouse)
    except (UserError, ValueError) as exc:
        error_line(str(exc))
        session.stop_connect(spark)
        return EXIT_USAGE
    remote = session.remote_url(config.spark)
    over = f" over Spark Connect {hide_token(remote)}" if remote and is_connect(spark) else ""
    progress.say(
        f"[{job_name}] run {record.run_id}, warehouse {location} ({warehouse.describe()}){over}"
    )
    materializer = materialize.Materializer(config.spark.materialize, warehouse, record.run_id)
    ctx = JobContext(
        spark,
        config,
        warehouse,
        record.run_id,
        None,
        progress,
        mode=mode,
        materializer=materializer,
    )
    code, error = EXIT_OK, None
    try:
        with (
            materialize.reliable_checkpoints(
                spark, join(warehouse.path, catalog.CHECKPOINTS_FOLDER)
            ),
            session.model_release_between_calls(spark) as release_models,
        ):
            for job, as_of in _steps(jobs, dates):
                ctx.as_of = as_of
                label = job.name if len(dates) < 2 or job.reads_source else f"{job.name} {as_of}"
                reason = job.skip_reason(ctx) if several and job.skip_reason else None
                if reason is not None:
                    progress.skip(label, reason)
                    continue
                with progress.stage(label) as summary:
                    job.run(ctx, summary)
                release_models()
    except UserError as exc:
        code, error = exc.exit_code, hide_token(str(exc))
        error_line(error)
    except Exception as exc:
        code, error = EXIT_FAILED, hide_token(f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        error_line(f"{job_name} failed: {error.splitlines()[0]}")
    finally:
        materializer.close()
    record.finish("succeeded" if code == EXIT_OK else "failed", progress.stages, error)
    try:
        append_run_record(warehouse, record.to_frame(spark))
    except Exception as exc:  # the run's own outcome matters more than its record
        cause = hide_token(first_line(exc, limit=300))
        if code == EXIT_OK:
            error_line(
                f"the run succeeded but its record could not be appended to the runs table: {cause}"
            )
        else:  # e.g. the JVM is gone after an out-of-memory error: the cause is the one above
            error_line(f"the run's record could not be appended to the runs table either: {cause}")
        code = code or EXIT_FAILED
    if code == EXIT_OK:
        report = f"; report {ctx.report_file}" if ctx.report_file else ""
        progress.say(
            f"[{job_name}] done in {sum(s.seconds for s in progress.stages):.1f} s; tables in "
            f"{location}{report}"
        )
    session.stop_connect(spark)
    return code


def describe_location(spark, warehouse: Warehouse) -> str:
    """Where the tables are: the warehouse folder, or the schema and the folder of the files."""
    files = filesystem.for_session(spark).qualified(warehouse.path)
    return f"{warehouse.namespace}, files in {files}" if warehouse.by_name else files


def append_run_record(warehouse, record, attempts: int = 3) -> None:
    """
    Append to the runs table; an append that lost to another run's commit (both creating the
    table) is tried again, as an append's rows are not yet in the table.
    """
    for attempt in range(1, attempts + 1):
        try:
            warehouse.write(catalog.RUNS, record, mode="append")
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
