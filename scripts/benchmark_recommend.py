"""
Time ``recommend`` on slices of UCI Online Retail made of whole invoices: the basket rules of
invoices of hundreds of products, which MLlib's FPGrowth did not finish, by the default
``pairs`` engine.

    python scripts/benchmark_recommend.py --source ../shared/data/online_retail.parquet \
        --lines 10000,30000,100000,all --work /tmp/br

Each size runs ``customer-analytics pipeline`` up to ``recommend`` in a process of its own
(clv, evaluate and report left out: a slice of a few hundred customers may not fit BG/NBD;
K fixed at 4, one KMeans start), and prints recommend's seconds and rule count from its
stage line. ``--set recommend.rules_engine=fpgrowth`` shows the FPGrowth guard instead.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

REPO = Path(__file__).resolve().parent.parent
STAGE_LINE = re.compile(r"^\[recommend\] rows in .*basket_rules ([\d,]+), ([\d.]+) s$")
RULES_LINE = re.compile(r"^\[recommend\] basket rules \(([^)]*)\): ([\d,]+)$")


def whole_invoices(spark: SparkSession, source: str, lines: int | None, target: Path) -> int:
    """Write the first invoices (by first line date, then number) holding at most ``lines``."""
    df = spark.read.parquet(source)
    if lines is not None:
        firsts = df.groupBy("InvoiceNo").agg(
            F.min("InvoiceDate").alias("_first"), F.count("*").alias("_lines")
        )
        order = Window.orderBy("_first", "InvoiceNo").rowsBetween(Window.unboundedPreceding, 0)
        kept = firsts.withColumn("_upto", F.sum("_lines").over(order)).filter(
            F.col("_upto") <= lines
        )
        df = df.join(kept.select("InvoiceNo"), "InvoiceNo", "left_semi")
    df.write.mode("overwrite").parquet(str(target))
    return spark.read.parquet(str(target)).count()


def recommend_figures(output: str) -> tuple[float, int, str]:
    """(seconds, rules, rule settings) from the pipeline's recommend lines."""
    seconds = rules = None
    settings = ""
    for line in output.splitlines():
        if match := STAGE_LINE.match(line):
            rules, seconds = int(match.group(1).replace(",", "")), float(match.group(2))
        if match := RULES_LINE.match(line):
            settings = match.group(1)
    if seconds is None:
        raise RuntimeError(f"no recommend line in the output:\n{output[-3000:]}")
    return seconds, rules, settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=str(REPO.parent / "shared/data/online_retail.parquet"))
    parser.add_argument("--lines", default="10000,30000,100000,all")
    parser.add_argument("--work", default="/tmp/benchmark_recommend")
    parser.add_argument("--set", action="append", default=[], help="more configuration")
    args = parser.parse_args(argv)
    work = Path(args.work)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("slices")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    slices = []
    for size in args.lines.split(","):
        target = work / f"slice-{size}"
        rows = whole_invoices(spark, args.source, None if size == "all" else int(size), target)
        slices.append((size, rows, target))
    spark.stop()
    print(f"{'lines':>8} {'rows':>8} {'recommend s':>12} {'rules':>7}  pipeline s  settings")
    for size, rows, target in slices:
        command = [sys.executable, "-m", "customer_analytics", "pipeline"]
        command += ["--skip", "clv", "--skip", "evaluate", "--skip", "report"]
        for value in (
            "source.kind=invoice_lines",
            f"source.path={target}",
            f"warehouse.path={work / f'warehouse-{size}'}",
            "segmentation.k=4",
            "segmentation.n_init=1",
            *args.set,
        ):
            command += ["--set", value]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            error = done.stderr.strip().splitlines()[-1][:200]
            print(f"{size:>8} {rows:>8} exit {done.returncode}: {error}")
            continue
        seconds, rules, settings = recommend_figures(done.stdout)
        print(f"{size:>8} {rows:>8} {seconds:>12.1f} {rules:>7}  {wall:>10.1f}  {settings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
