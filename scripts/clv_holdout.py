"""
Holdout check of the lifetime value models: fit on the orders up to a date, then compare each
customer's predicted visits over the following days with the visits they made, beside the
naive forecast "each customer keeps their past visit rate".

    python scripts/clv_holdout.py --source ../shared/data/online_retail.parquet \\
        --kind invoice_lines --calibration-end 2011-08-31 --holdout-end 2011-11-30 --work /tmp/h

Runs ``ingest``, ``features`` and ``clv`` (as of ``--calibration-end``, with the holdout's
length as the horizon) into ``<work>/warehouse``, then one aggregation of
``clv.holdout_visits``; only the summary reaches the driver.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from customer_analytics import cli
from customer_analytics.core import columns as C
from customer_analytics.stages.clv import holdout_summary, holdout_visits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--source", required=True, help="the orders file (all of it)")
    parser.add_argument("--kind", default="invoice_lines", help="source.kind")
    parser.add_argument("--calibration-end", type=date.fromisoformat, required=True)
    parser.add_argument("--holdout-end", type=date.fromisoformat, required=True)
    parser.add_argument("--work", type=Path, required=True, help="folder for the warehouse")
    parser.add_argument("--set", action="append", default=[], help="more configuration")
    args = parser.parse_args()
    start = date.fromordinal(args.calibration_end.toordinal() + 1)
    horizon = (args.holdout_end - start).days + 1
    warehouse = args.work / "warehouse"
    settings = [
        "--set",
        f"source.path={args.source}",
        "--set",
        f"source.kind={args.kind}",
        "--set",
        f"warehouse.path={warehouse}",
        "--set",
        f"clv.horizons_days=[{horizon}]",
        *[a for s in args.set for a in ("--set", s)],
    ]
    if cli.main(["ingest", *settings]) != 0:
        return 1
    for job in ("features", "clv"):
        if cli.main([job, "--as-of", args.calibration_end.isoformat(), *settings]) != 0:
            return 1

    from pyspark.sql import SparkSession

    from customer_analytics.io.tables import Warehouse

    tables = Warehouse.for_path(SparkSession.getActiveSession(), str(warehouse))
    summary = tables.read("customer_features").select(
        C.CUSTOMER_ID, C.FREQUENCY, C.FIRST_ORDER_DATE
    )
    scores = tables.read("customer_clv").join(summary, C.CUSTOMER_ID)
    visits = holdout_visits(
        scores, tables.read("orders"), start=start, end=args.holdout_end, horizon_days=horizon
    )
    result = holdout_summary(visits)
    print(
        f"holdout {start}..{args.holdout_end} ({horizon} days), fitted on orders up to "
        f"{args.calibration_end}: {result['customers']:,} customers"
    )
    print(f"{'forecast':<28} {'MAE visits':>10} {'total':>10} {'actual':>10} {'ratio':>7}")
    for name, mae, total in (
        ("BG/NBD (expected visits)", result["mae_model"], result["total_predicted"]),
        ("naive (past visit rate)", result["mae_naive"], result["total_naive"]),
    ):
        ratio = total / result["total_actual"]
        print(
            f"{name:<28} {mae:>10.4f} {total:>10.1f} {result['total_actual']:>10.0f} {ratio:>7.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
