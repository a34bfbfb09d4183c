"""The ``evaluate`` job for ``spark-submit --py-files <wheel> jobs/evaluate.py [options]``."""

import sys

from customer_analytics.cli import run_job

if __name__ == "__main__":
    sys.exit(run_job("evaluate"))
