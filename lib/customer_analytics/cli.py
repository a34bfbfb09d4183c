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
import textwrap
from datetime import date

from customer_analytics import __version__
from customer_analytics.config.loader import load, with_overrides
from customer_analytics.config.schema import Config
from customer_analytics.core.errors import ConfigError, UserError
from customer_analytics.io.sources import source_paths
from customer_analytics.orchestration.jobs import JOBS, PIPELINE_STAGES, SEGMENT_MODES
from customer_analytics.orchestration.runner import EXIT_OK, EXIT_USAGE, PROG, error_line, run

DEFAULT_CONF = os.path.join("conf", "local.yaml")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


#: The width of the descriptions, written out as they are so that the export help keeps its
#: layout.
HELP_WIDTH = 88
#: How to point the tool at one's own export, in every help page.
YOUR_OWN_EXPORT = """\
your own export (any key of the configuration can be set this way):
  customer-analytics pipeline --set source.path=sales.csv --set source.kind=invoice_lines \\
      --set "source.columns.customer_id=Customer ID" --set "source.read_options.sep=;" \\
      --set source.decimal=, --set 'source.date_formats=["dd/MM/yyyy HH:mm"]'

  source.path          a file, folder or glob: .csv, .json, .jsonl, .parquet, each also
                       compressed (.gz, .bz2, .zst); s3a:// and other Hadoop paths too
  source.kind          product_json | invoice_lines | basket_lines | transactions
  source.columns.NAME  the file's column for a canonical one (README: source kinds)
  source.read_options  Spark reader options, e.g. sep (the CSV delimiter, default ,)
  source.decimal       . (default; 1,050.15) or , (1.050,15)
  source.date_formats  Spark datetime patterns; unset, slash dates are read day or month
                       first as the values show, and refused when they cannot tell
  source.max_rejected_share  ingest fails above this quarantined share (default 0.05)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Customer analytics on Spark: ingest sales into Delta tables, build the\n"
        "customer single view, segment customers and recommend products.",
        epilog=YOUR_OWN_EXPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common, mode = _common_options(), _mode_option()
    jobs = parser.add_subparsers(dest="job", metavar="JOB", required=True)
    for job in JOBS.values():
        jobs.add_parser(
            job.name,
            parents=[common, mode] if job.name == "segment" else [common],
            help=job.help,
            description=textwrap.fill(job.help, HELP_WIDTH),
            epilog=YOUR_OWN_EXPORT if job.reads_source else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    stages = " -> ".join(PIPELINE_STAGES)
    pipeline = jobs.add_parser(
        "pipeline",
        parents=[common, mode],
        help=f"run every stage in order ({stages})",
        description=textwrap.fill(f"Run every stage in order: {stages}.", HELP_WIDTH),
        epilog=YOUR_OWN_EXPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pipeline.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=[name for name in PIPELINE_STAGES if name != "ingest"],
        metavar="STAGE",
        help="leave a stage out (repeatable), e.g. --skip clv on too few customers to fit it",
    )
    return parser


def _common_options() -> argparse.ArgumentParser:
    """--conf, --as-of, --remote and --set, which every job takes."""
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
        "--remote",
        metavar="URL",
        help="run over Spark Connect: sc://host:port for a running server, local[N] to start "
        "one in this process (sets spark.remote; default: $SPARK_REMOTE, else classic Spark)",
    )
    common.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration key, e.g. --set warehouse.path=/tmp/wh (repeatable)",
    )
    return common


def _mode_option() -> argparse.ArgumentParser:
    """--mode, which segment and pipeline take."""
    mode = argparse.ArgumentParser(add_help=False)
    mode.add_argument(
        "--mode",
        choices=SEGMENT_MODES,
        default="fit",
        help="segment: fit a new model (default) or score with the latest saved model",
    )
    return mode


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, validate configuration, run the job; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return int(exit_.code or 0)
    if args.job == "pipeline":
        stages = [name for name in PIPELINE_STAGES if name not in args.skip]
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
        error_line(str(exc))
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


def _load_config(args: argparse.Namespace, dates: list[date]) -> Config:
    remote = [f"spark.remote={args.remote}", "spark.master=null"] if args.remote else []
    config = load(args.conf, [*args.set, *remote])
    if len(dates) == 1:
        config = with_overrides(config, [f"features.as_of={dates[0].isoformat()}"])
    return config


__all__ = ["main", "console_main", "run_job", "build_parser", "ConfigError"]
