"""Reading the source: the format from the extension (compressed too) or a folder's files."""

from __future__ import annotations

import bz2
import gzip

import pytest

from customer_analytics.config.schema import SourceConfig
from customer_analytics.core.errors import InputError
from customer_analytics.io.sources import format_of_name, read_source, source_format, source_paths

CSV = "InvoiceNo,StockCode,Quantity\n536365,85123A,6\n536366,71053,2\n"
JSON_LINES = '{"InvoiceNo": "536365", "Quantity": 6}\n{"InvoiceNo": "536366", "Quantity": 2}\n'


def rows_of(spark, path: str, **settings) -> list[tuple]:
    df = read_source(spark, SourceConfig(kind="invoice_lines", path=path, **settings))
    return sorted(tuple(row) for row in df.select("InvoiceNo", "Quantity").collect())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x/sales.CSV", "csv"),
        ("x/*.json", "json"),
        ("x/sales.jsonl.gz", "json"),
        ("x/sales.csv.bz2", "csv"),
        ("x/sales.csv.zst", "csv"),
        ("x/part-0.parquet", "parquet"),
        ("x/folder", None),
        ("x/sales.txt.gz", None),
    ],
)
def test_the_extension_names_the_format_behind_a_compression_codec(name, expected):
    assert format_of_name(name) == expected


def test_a_set_format_wins_over_the_extension(spark, tmp_path):
    source = SourceConfig(path=str(tmp_path / "a.csv"), format="parquet")

    assert source_format(spark, source, [str(tmp_path / "a.csv")]) == "parquet"


@pytest.mark.parametrize(("suffix", "opener"), [(".gz", gzip.open), (".bz2", bz2.open)])
def test_a_compressed_csv_is_read_as_csv(spark, tmp_path, suffix, opener):
    path = tmp_path / f"sales.csv{suffix}"
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write(CSV)

    assert rows_of(spark, str(path)) == [("536365", "6"), ("536366", "2")]


def test_compressed_json_lines_are_read_as_json(spark, tmp_path):
    path = tmp_path / "sales.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(JSON_LINES)

    assert rows_of(spark, str(path)) == [("536365", 6), ("536366", 2)]


def test_a_folder_of_csv_files_is_read_as_csv(spark, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "day1.csv").write_text(CSV, encoding="utf-8")
    (folder / "day2.csv").write_text(CSV.replace("536365", "536367").replace("536366", "536368"))
    (folder / "_SUCCESS").write_text("")

    assert source_format(spark, SourceConfig(path=str(folder)), [str(folder)]) == "csv"
    assert [r[0] for r in rows_of(spark, str(folder))] == ["536365", "536366", "536367", "536368"]


def test_a_folder_of_csv_and_json_files_is_refused_naming_both(spark, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "day1.csv").write_text(CSV, encoding="utf-8")
    (folder / "day2.json").write_text(JSON_LINES, encoding="utf-8")

    with pytest.raises(InputError, match=r"holds csv and json files: name one kind with a glob"):
        read_source(spark, SourceConfig(path=str(folder)))


def test_a_folder_without_known_extensions_is_read_as_parquet(spark, tmp_path):
    folder = tmp_path / "table"
    spark.createDataFrame([("536365", 6)], "InvoiceNo string, Quantity int").write.parquet(
        str(folder)
    )
    # Spark's own part files end in .parquet; a folder of files without one is Parquet too
    assert source_format(spark, SourceConfig(path=str(folder)), [str(folder)]) == "parquet"
    assert rows_of(spark, str(folder)) == [("536365", 6)]


def test_source_paths_expand_globs_and_name_a_missing_path(tmp_path):
    (tmp_path / "a.csv").write_text("x\n")
    (tmp_path / "b.csv").write_text("x\n")
    found = source_paths(SourceConfig(path=str(tmp_path / "*.csv")))

    assert [p.rsplit("/", 1)[1] for p in found] == ["a.csv", "b.csv"]
    with pytest.raises(InputError, match="source.path: nothing found at .*missing"):
        source_paths(SourceConfig(path=str(tmp_path / "missing")))


def test_a_file_read_as_parquet_that_is_not_is_refused_in_one_line(spark, tmp_path):
    path = tmp_path / "sales.parquet"
    path.write_text(CSV, encoding="utf-8")

    with pytest.raises(InputError) as refused:
        read_source(spark, SourceConfig(path=str(path)))

    assert str(refused.value) == (
        f"source.path: {path} is not Parquet (it starts with b'Invo'); name the file with its "
        "extension (.csv, .json, .csv.gz, ...) or set source.format"
    )


def test_a_csv_with_a_byte_order_mark_and_crlf_line_ends_is_read_clean(spark, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV.replace("\n", "\r\n").encode("utf-8"))

    df = read_source(spark, SourceConfig(kind="invoice_lines", path=str(path)))

    assert df.columns == ["InvoiceNo", "StockCode", "Quantity"]
    assert sorted(tuple(row) for row in df.collect()) == [
        ("536365", "85123A", "6"),
        ("536366", "71053", "2"),
    ]
