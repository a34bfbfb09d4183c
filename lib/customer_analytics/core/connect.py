"""
Spark Connect, as every layer asks about it: whether a session is a Connect client (no
``SparkContext``, no JVM in this process, only runtime settings), and the remote URL with its
token hidden, for anything that prints or records it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: ``sc://host:443/;token=SECRET;x-other=1``: the token's value, up to the next parameter.
_TOKEN = re.compile(r"(;\s*token=)[^;\s\"']*", re.IGNORECASE)
HIDDEN = "***"


def is_connect(spark: SparkSession) -> bool:
    """True when ``spark`` is a Spark Connect session (``pyspark.sql.connect``)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def hide_token(text: str) -> str:
    """``text`` with the value of every ``;token=`` of a Connect URL replaced by ``***``."""
    return _TOKEN.sub(rf"\g<1>{HIDDEN}", text)


def session_master(spark: SparkSession) -> str:
    """``spark.master`` as the session reports it (``local[2]``, ``spark://...``), or ''."""
    try:
        return spark.conf.get("spark.master", "") or ""
    except Exception:  # a server that does not expose it (Databricks serverless)
        return ""
