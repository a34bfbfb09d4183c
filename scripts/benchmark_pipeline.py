"""
Benchmark: run the pipeline's stages on a source and print, per stage, the seconds, the rows
in and out, rows per second, and how many Spark jobs and stages it ran.

    python scripts/benchmark_pipeline.py --source data/generated/transactions \
        [--kind product_json] [--warehouse /tmp/bench-wh] [--set key=value ...]

Uses the same code as ``customer-analytics pipeline`` (``conf/local.yaml`` plus overrides).
Run it under ``/usr/bin/time -v`` for the peak memory of the driver.
"""

from __future__ import annotations

import argparse
import time

from customer_analytics import config, session
from customer_analytics.pipeline import JOBS, PIPELINE, JobContext
from customer_analytics.progress import Progress
from customer_analytics.runs import new_run_id
from customer_analytics.tables import Warehouse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--source", required=True)
    parser.add_argument("--kind", default="product_json")
    parser.add_argument("--warehouse", default="/tmp/customer-analytics-bench")
    parser.add_argument("--conf", default="conf/local.yaml")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--stages", default=",".join(PIPELINE))
    args = parser.parse_args()
    overrides = [
        f"source.path={args.source}",
        f"source.kind={args.kind}",
        f"warehouse.path={args.warehouse}",
        *args.set,
    ]
    cfg = config.load(args.conf, overrides)
    started = time.perf_counter()
    spark = session.build(cfg.spark)
    print(f"spark session: {time.perf_counter() - started:.1f} s", flush=True)
    tracker = spark.sparkContext.statusTracker()
    warehouse = Warehouse.for_path(spark, cfg.warehouse.path, cfg.warehouse.delta)
    progress = Progress()
    ctx = JobContext(spark, cfg, warehouse, new_run_id(), cfg.features.as_of, progress)
    results = []
    for name in args.stages.split(","):
        spark.sparkContext.setJobGroup(name, f"benchmark {name}")
        with progress.stage(name) as summary:
            JOBS[name].run(ctx, summary)
        job_ids = tracker.getJobIdsForGroup(name)
        stages = sum(len(tracker.getJobInfo(j).stageIds) for j in job_ids if tracker.getJobInfo(j))
        results.append((summary, len(job_ids), stages))
    print(
        f"\n{'stage':<10}{'seconds':>9}{'rows in':>13}{'rows out':>12}{'rows in/s':>12}"
        f"{'jobs':>6}{'stages':>8}"
    )
    for summary, jobs, stages in results:
        rate = summary.rows_in / summary.seconds if summary.seconds else 0
        print(
            f"{summary.stage:<10}{summary.seconds:>9.1f}{summary.rows_in:>13,}"
            f"{summary.rows_out:>12,}{rate:>12,.0f}{jobs:>6}{stages:>8}"
        )


if __name__ == "__main__":
    main()
