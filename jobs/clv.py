"""The ``clv`` job for ``spark-submit --py-files <wheel> jobs/clv.py [options]``."""

import sys

from customer_analytics.cli import run_job

if __name__ == "__main__":
    sys.exit(run_job("clv"))
