"""
``python tests/held_writes.py GATE TABLE[,TABLE...] <customer-analytics arguments>``: the
command, with each write of the listed tables held inside its Delta transaction until the
file ``GATE.open`` exists. ``GATE.held`` appears when a write is held.

A held write has read the table's version and not yet committed, so a run started meanwhile
commits first and the held run is certain to lose the race (tests/test_kill.py). The hold is a
partition of the written frame that waits for the gate and yields no row: the data written is
the command's own.
"""

from __future__ import annotations

import os
import sys
import time

from pyspark.sql import functions as F
from pyspark.sql import types as T

from customer_analytics import cli
from customer_analytics.io import tables


def wait_for(gate: str) -> bool:
    open(f"{gate}.held", "a").close()
    while not os.path.exists(f"{gate}.open"):
        time.sleep(0.1)
    return False


def hold_writes(gate: str, names: set[str]) -> None:
    execute = tables.TableWriter.execute

    def held(self, df):
        if os.path.basename(self._path.rstrip("/")) not in names:
            return execute(self, df)
        waits = F.udf(lambda _: wait_for(gate), T.BooleanType()).asNondeterministic()
        nothing = (
            df.sparkSession.range(1)
            .filter(waits(F.col("id")))
            .select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in df.schema.fields])
        )
        return execute(self, df.unionByName(nothing))

    tables.TableWriter.execute = held


if __name__ == "__main__":
    gate, names, *argv = sys.argv[1:]
    hold_writes(gate, set(names.split(",")))
    sys.exit(cli.main(argv))
