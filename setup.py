"""Install the customer_analytics package from lib/ with the customer-analytics console command."""

from pathlib import Path

from setuptools import find_packages, setup

#: Spark itself: installed for local runs and tests (``.[spark]``), never on a cluster that
#: brings its own (Databricks Runtime, a Spark distribution under spark-submit).
SPARK = [
    # [connect]: the Spark Connect client (grpcio, protobuf) and, with pyspark, a Connect server
    # for local[N] remotes (spark.remote, --remote)
    "pyspark[connect]>=4.2,<4.3",
    # the version whose JARs (io.delta:delta-spark_4.2_2.13) are on Maven Central: the
    # session loads the JARs of the installed delta-spark (customer_analytics.runtime.jars)
    "delta-spark==4.4.0",
]

#: The benchmark's peers (scripts/benchmark.py): the pandas notebook way and DuckDB SQL
#: (``lambda x: ...`` list functions need DuckDB 1.3 or newer).
BENCHMARK = ["duckdb>=1.3", "pandas>=2.2,<3", "pyarrow>=15"]

setup(
    name="customer-analytics",
    version="0.1.0",
    description="Customer single view, MLlib segmentation and recommendations as PySpark jobs "
    "writing Delta tables",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    include_package_data=True,
    # defaults shipped as data files (the default segment naming rules); MANIFEST.in puts
    # them in the source distribution too
    package_data={
        "customer_analytics.config.defaults": ["*.yaml"],
        "customer_analytics.runtime": ["log4j2.properties"],
    },
    install_requires=[
        "deltalake>=1.1,<2",
        "pyarrow>=15",
        "pandas>=2.2,<3",
        "pydantic>=2.7,<3",
        "pyyaml>=6",
        # the optimal assignment that keeps cluster ids across refits, and the clv fits
        "scipy>=1.10",
        "numpy>=1.26",
        # the report's charts (Agg canvas, no display); 3.10 for horizontal box plots
        "matplotlib>=3.10",
    ],
    extras_require={
        "spark": SPARK,
        "benchmark": BENCHMARK,
        # setuptools 70.1+ builds wheels without the wheel package: tests/test_bundle.py builds
        # the bundle's wheel offline with --no-build-isolation
        "test": [
            *SPARK,
            *BENCHMARK,  # tests/test_benchmark.py runs the peers
            "pytest>=8",
            "chispa>=0.10",
            "ruff>=0.6",
            # the layers contract in pyproject.toml (tests/test_layers.py)
            "import-linter>=2.1",
            "lifetimes>=0.11",
            "moto[server]>=5.1",
            "setuptools>=70.1",
            # drives Debian's chromium (no browser download) to check the report renders
            "playwright>=1.45",
        ],
    },
    entry_points={"console_scripts": ["customer-analytics=customer_analytics.cli:console_main"]},
)
