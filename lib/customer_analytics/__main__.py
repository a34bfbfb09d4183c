"""``python -m customer_analytics <job> ...``: the same as the ``customer-analytics`` command."""

import sys

from customer_analytics.cli import main

sys.exit(main())
