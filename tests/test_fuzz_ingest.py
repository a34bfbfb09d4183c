"""
Ingest under corrupted input, the ways real exports break (issue #17): for each of the four
source kinds, in CSV and in Parquet, a clean file of ten records is corrupted one way at a
time (a group of alike corruptions in different rows), at seeded positions. Each case must
either be read with every input record accounted for (accepted + quarantined + excluded = the
records the test counts itself, with Python's ``csv`` module or pyarrow), or be refused with
one line (:class:`InputError`, the job's exit 2) that names the file and the column.

It runs the job's own steps (read, prepare, the reconciliation counts) without writing
tables: ``tests/test_ingest.py`` and ``tests/test_cli.py`` cover the writes and the exit codes.
``FUZZ_SEED`` changes the positions, ``FUZZ_SECONDS`` (default 150) bounds the time; the test
prints how many cases it tried and how each ended. ``FUZZ_THROUGH_THE_JOB=1`` runs each case
through the ``ingest`` job instead (exit code, stderr, the written reconciliation table): about
three times as long, so not in CI.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import io
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from customer_analytics.config.schema import SourceConfig
from customer_analytics.core.errors import InputError
from customer_analytics.io.sources import read_source
from customer_analytics.stages import ingest, reconciliation
from tests.helpers import RETAIL_HEADER

SEED = int(os.environ.get("FUZZ_SEED", "17"))
SECONDS = float(os.environ.get("FUZZ_SECONDS", "150"))
#: ``FUZZ_THROUGH_THE_JOB=1``: each case through ``customer-analytics ingest``, tables written.
THROUGH_THE_JOB = os.environ.get("FUZZ_THROUGH_THE_JOB") == "1"
RECORDS = 10


@dataclass(frozen=True)
class Kind:
    """A clean file of one source kind, and where its text, number and date fields are."""

    header: list[str]
    rows: Callable[[int], list[str]]
    text: str
    number: str
    date: str


KINDS = {
    "product_json": Kind(
        header=[
            "transaction_id",
            "customer_id",
            "transaction_date",
            "location",
            "total_amt",
            "discount",
            "paid_amt",
            "product_json",
        ],
        rows=lambda i: [
            f"T{i}",
            str(100 + i % 4),
            f"2023-0{1 + i % 8}-1{i % 9} 10:00:00",
            "SG-01",
            "25.0",
            "0.0",
            "25.0",
            json.dumps([{"product_id": f"P{i % 3}", "quantity": 2, "unit_price": 12.5}]),
        ],
        text="location",
        number="total_amt",
        date="transaction_date",
    ),
    "invoice_lines": Kind(
        header=RETAIL_HEADER,
        rows=lambda i: [
            f"5363{i // 2}",
            f"S{i % 4}",
            f"ITEM {i % 4}",
            str(1 + i % 3),
            f"12/{1 + i % 9}/2010 8:26",
            "2.55",
            str(17850 + i % 3),
            "United Kingdom",
        ],
        text="Description",
        number="Quantity",
        date="InvoiceDate",
    ),
    "basket_lines": Kind(
        header=["BASKET_ID", "CUST_CODE", "SHOP_DATE", "PROD_CODE", "QUANTITY", "SPEND"],
        rows=lambda i: [
            str(994100 + i // 2),
            f"CUST{i % 4}",
            f"200604{10 + i}",
            f"PRD{i % 5}",
            "1",
            "1.25",
        ],
        text="PROD_CODE",
        number="SPEND",
        date="SHOP_DATE",
    ),
    "transactions": Kind(
        header=["customer_id", "date", "quantity", "amount"],
        rows=lambda i: [str(1 + i % 4), f"1997-01-{1 + i:02d}", "2", "10.5"],
        text="customer_id",
        number="amount",
        date="date",
    ),
}


def _in_rows(*changes: tuple[str, str]) -> Callable:
    """
    A corruption: each ``(field, value)`` in a row of its own, ``field`` a kind's ``text``,
    ``number`` or ``date`` field, or ``product_json`` (only for the kind that has it).
    """

    def corrupt(kind: Kind, rows: list[list[str]], rng: random.Random):
        for (field, value), row in zip(changes, rng.sample(rows, len(changes)), strict=True):
            name = field if field == "product_json" else getattr(kind, field)
            if name not in kind.header:
                return None  # the corruption does not apply to this kind
            row[kind.header.index(name)] = value
        return kind.header, rows

    return corrupt


def _duplicated(kind, rows, rng):
    return kind.header, [*rows, *rng.sample(rows, 2)]


def _extra_column(kind, rows, rng):
    return [*kind.header, "note"], [[*row, f"n{rng.randrange(9)}"] for row in rows]


def _missing_column(kind, rows, rng):
    drop = kind.header.index(kind.date)
    return (
        [h for i, h in enumerate(kind.header) if i != drop],
        [[v for i, v in enumerate(row) if i != drop] for row in rows],
    )


#: Corruptions of records, written as CSV and as Parquet; those of a group in different rows.
RECORD_CASES = {
    "bad_json": _in_rows(
        ("product_json", '[{"product_id": "P1", "quant'),  # truncated
        ("product_json", '[{"product_id": 5, "quantity": "x", "unit_price": []}]'),
        ("product_json", '{"product_id": "P1"}'),  # not a list
    ),
    "numbers_as_text": _in_rows(("number", "1,234.50"), ("number", "12,5"), ("number", "twelve")),
    "numbers_out_of_range": _in_rows(("number", "-5"), ("number", "1e308")),
    "bad_dates": _in_rows(
        ("date", "2099-01-01"), ("date", "1970-01-01"), ("date", "2021-02-30"), ("date", "")
    ),
    "awkward_text": _in_rows(("text", ""), ("text", 'a,"b"\r\nc')),
    "duplicated_rows": _duplicated,
    "extra_column": _extra_column,
    "missing_column": _missing_column,
}


def _csv_bytes(header, rows, line_end="\n") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


#: Corruptions of the CSV file as bytes.
FILE_CASES = {
    "byte_order_mark": lambda data: b"\xef\xbb\xbf" + data,
    "crlf": lambda data: data.replace(b"\n", b"\r\n"),
    "latin1_bytes": lambda data: data.replace(b"1", b"\xe91", 1),
    "empty_file": lambda data: b"",
    "header_only": lambda data: data.split(b"\n", 1)[0] + b"\n",
    "truncated_last_record": lambda data: data[: len(data) - 7],
}


def csv_records(path) -> int:
    """The data records of a CSV file, counted with Python's csv module (not Spark)."""
    text = path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
    return max(len(list(csv.reader(io.StringIO(text)))) - 1, 0)


def cases(tmp_path) -> list[tuple[str, str, str, object, int]]:
    """(kind, format, case, path, records) for every case, in a seeded order."""
    rng = random.Random(SEED)
    found = []
    for name, kind in KINDS.items():
        for case, corrupt in RECORD_CASES.items():
            made = corrupt(kind, [kind.rows(i) for i in range(RECORDS)], rng)
            if made is None:
                continue
            header, rows = made
            path = tmp_path / f"{name}-{case}.csv"
            path.write_bytes(_csv_bytes(header, rows))
            found.append((name, "csv", case, path, csv_records(path)))
            path = tmp_path / f"{name}-{case}.parquet"
            pq.write_table(pa.table({h: [r[i] for r in rows] for i, h in enumerate(header)}), path)
            found.append((name, "parquet", case, path, len(rows)))
        clean = _csv_bytes(kind.header, [kind.rows(i) for i in range(RECORDS)])
        for case, corrupt in FILE_CASES.items():
            path = tmp_path / f"{name}-{case}.csv"
            path.write_bytes(corrupt(clean))
            found.append((name, "csv", case, path, csv_records(path)))
        # pandas' own Parquet: typed columns and a nanosecond timestamp
        frame = pd.DataFrame([kind.rows(i) for i in range(RECORDS)], columns=kind.header)
        frame[kind.date] = pd.to_datetime(frame[kind.date], format="mixed")
        frame[kind.number] = frame[kind.number].astype(float)
        path = tmp_path / f"{name}-pandas.parquet"
        frame.to_parquet(path)
        found.append((name, "parquet", "pandas_nanoseconds", path, RECORDS))
    rng.shuffle(found)
    return found


def outcome(spark, kind: str, path) -> tuple[str, object]:
    """("read", the reconciliation) or ("refused", the one-line message)."""
    source = SourceConfig(kind=kind, path=str(path))
    try:
        raw = read_source(spark, source)
        counts = reconciliation.reconciliation_counts(ingest.prepare(raw, source)).collect()
        return "read", reconciliation.Reconciliation.from_counts(
            kind, counts, input_rows=raw.count()
        )
    except InputError as exc:
        return "refused", str(exc)


def outcome_of_the_job(kind: str, path, warehouse) -> tuple[str, object]:
    """
    ``customer-analytics ingest`` on the file, writing its tables (deltalake): ("read", the
    rows of ingest_reconciliation), ("refused", its one stderr line) or ("failed", stderr).
    """
    from customer_analytics import cli
    from tests.conftest import table_rows

    argv = ["ingest", "--set", f"source.kind={kind}", "--set", f"source.path={path}"]
    argv += ["--set", f"warehouse.path={warehouse}", "--set", "warehouse.delta=deltalake"]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    if code == 0:
        return "read", table_rows(warehouse, "ingest_reconciliation")
    lines = err.getvalue().strip().splitlines()
    if code == 2 and len(lines) == 1:
        return "refused", lines[0]
    return "failed", f"exit {code}: {err.getvalue()[-2000:]}"


def test_every_corrupted_input_is_read_and_reconciled_or_refused_in_one_line(spark, tmp_path):
    started = time.monotonic()
    ended = collections.Counter()
    problems = []
    for kind, fmt, case, path, records in cases(tmp_path):
        if time.monotonic() - started > SECONDS:
            break
        if THROUGH_THE_JOB:
            how, result = outcome_of_the_job(kind, path, tmp_path / f"wh-{path.stem}-{fmt}")
        else:
            how, result = outcome(spark, kind, path)
        if how == "read" and THROUGH_THE_JOB:
            ended[(kind, fmt, "read")] += 1
            if sum(r["rows"] for r in result) != records:
                problems.append(f"{kind} {fmt} {case}: {records} records, reconciled {result}")
        elif how == "read":
            excluded = sum(result.excluded.values())
            parts = result.accepted_rows + sum(result.quarantined.values()) + excluded
            ended[(kind, fmt, "read")] += 1
            if not (result.balanced and result.input_rows == records and parts == records):
                problems.append(f"{kind} {fmt} {case}: {records} records, reconciled {result}")
        elif how == "failed":
            ended[(kind, fmt, "failed")] += 1
            problems.append(f"{kind} {fmt} {case}: {result}")
        else:
            ended[(kind, fmt, "refused")] += 1
            said = ("column", "no data", "accepted none", "source.max_rejected_share")
            named = str(path) in result and any(words in result for words in said)
            if "\n" in result or not named:
                problems.append(f"{kind} {fmt} {case}: refused with {result!r}")

    tried = sum(ended.values())
    print(f"fuzz: seed {SEED}, {tried} cases in {time.monotonic() - started:.0f} s")
    for (kind, fmt, how), count in sorted(ended.items()):
        print(f"  {kind:14s} {fmt:8s} {how:8s} {count}")
    assert not problems, "\n".join(problems)
    assert tried >= 40, f"only {tried} cases in {SECONDS} s"
