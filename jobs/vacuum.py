"""The ``vacuum`` job for ``spark-submit --py-files <wheel> jobs/vacuum.py [options]``."""

import sys

from customer_analytics.cli import run_job

if __name__ == "__main__":
    sys.exit(run_job("vacuum"))
