"""The ``runs`` table: one row appended per job run, whatever its outcome."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from customer_analytics.core import columns as C
from customer_analytics.orchestration.progress import StageSummary

RUNS_SCHEMA = StructType(
    [
        StructField(C.RUN_ID, StringType(), False),
        StructField(C.JOB, StringType(), False),
        StructField(C.ARGUMENTS, StringType(), True),
        StructField(C.STARTED_AT, TimestampType(), False),
        StructField(C.ENDED_AT, TimestampType(), True),
        StructField(C.STATUS, StringType(), False),
        StructField(C.ROWS_IN, LongType(), True),
        StructField(C.ROWS_OUT, LongType(), True),
        StructField(C.STAGES, StringType(), True),
        StructField(C.ERROR, StringType(), True),
    ]
)


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunRecord:
    run_id: str
    job: str
    arguments: list[str]
    started_at: datetime
    ended_at: datetime | None = None
    status: str = "running"
    stages: list[StageSummary] = field(default_factory=list)
    error: str | None = None

    def finish(self, status: str, stages: list[StageSummary], error: str | None = None) -> None:
        self.status = status
        self.stages = list(stages)
        self.error = error
        self.ended_at = datetime.now(UTC)

    def to_frame(self, spark: SparkSession) -> DataFrame:
        rows_in = self.stages[0].rows_in if self.stages else None
        rows_out = self.stages[-1].rows_out if self.stages else None
        row = (
            self.run_id,
            self.job,
            json.dumps(self.arguments),
            self.started_at,
            self.ended_at,
            self.status,
            rows_in,
            rows_out,
            json.dumps([s.as_dict() for s in self.stages], default=str),
            self.error,
        )
        return spark.createDataFrame([row], RUNS_SCHEMA)
