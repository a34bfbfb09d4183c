"""Segment migration between two dates and its printed matrix."""

from __future__ import annotations

from datetime import date

import pytest
from chispa import assert_approx_df_equality, assert_df_equality

from customer_analytics import columns as C
from customer_analytics.migration import (
    format_matrix,
    segment_migration,
)

H1 = date(2022, 6, 30)
H2 = date(2022, 12, 31)
SEGMENTS = "customer_id string, as_of date, cluster int, segment_name string"
MIGRATION = (
    "from_as_of date, to_as_of date, from_segment string, to_segment string, customers long, "
    "share double"
)


def _segments(spark, rows):
    return spark.createDataFrame(rows, SEGMENTS)


@pytest.fixture(scope="module")
def before(spark):
    # c1 stays in A, c2 moves A -> B, c3 lapses from B, c5 and c6 stay in B
    return _segments(
        spark,
        [
            ("c1", H1, 0, "A"),
            ("c2", H1, 0, "A"),
            ("c3", H1, 1, "B"),
            ("c5", H1, 1, "B"),
            ("c6", H1, 1, "B"),
        ],
    )


@pytest.fixture(scope="module")
def after(spark):
    # c4 is new (in A)
    return _segments(
        spark,
        [
            ("c1", H2, 0, "A"),
            ("c2", H2, 1, "B"),
            ("c4", H2, 0, "A"),
            ("c5", H2, 1, "B"),
            ("c6", H2, 1, "B"),
        ],
    )


def test_segment_migration_counts_stayers_movers_joiners_and_lapsed_customers(spark, before, after):
    expected = spark.createDataFrame(  # by hand: A has 2 customers, B 3, (new) 1
        [
            (H1, H2, "A", "A", 1, 1 / 2),  # c1
            (H1, H2, "A", "B", 1, 1 / 2),  # c2
            (H1, H2, "B", "B", 2, 2 / 3),  # c5, c6
            (H1, H2, "B", "(lapsed)", 1, 1 / 3),  # c3
            (H1, H2, "(new)", "A", 1, 1.0),  # c4
        ],
        MIGRATION,
    )
    actual = segment_migration(before, after)
    assert_approx_df_equality(actual, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_segment_migration_shares_of_each_from_segment_sum_to_one(before, after):
    rows = segment_migration(before, after).groupBy(C.FROM_SEGMENT).sum(C.SHARE).collect()
    assert sorted((r[0], round(r[1], 9)) for r in rows) == [
        ("(new)", 1.0),
        ("A", 1.0),
        ("B", 1.0),
    ]


def test_segment_migration_keeps_a_null_segment_name_apart_from_new_and_lapsed(spark):
    before = _segments(spark, [("c1", H1, 0, "A"), ("c2", H1, 0, "A")])
    after = _segments(spark, [("c1", H2, None, None), ("c2", H2, 0, "A")])
    expected = spark.createDataFrame(
        [(H1, H2, "A", None, 1, 0.5), (H1, H2, "A", "A", 1, 0.5)], MIGRATION
    )
    assert_df_equality(
        segment_migration(before, after), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_segment_migration_refuses_two_frames_of_the_same_as_of(spark, before):
    with pytest.raises(ValueError, match=r"same as_of \(2022-06-30\)"):
        segment_migration(before, before)


@pytest.mark.parametrize("side", ["before", "after"])
def test_segment_migration_refuses_a_frame_with_more_than_one_as_of(spark, side):
    one = _segments(spark, [("c1", H1, 0, "A")])
    two = _segments(spark, [("c1", H2, 0, "A"), ("c2", date(2023, 6, 30), 0, "A")])
    frames = {"before": two, "after": one} if side == "before" else {"before": one, "after": two}
    with pytest.raises(ValueError, match=rf"^{side} must hold one as_of"):
        segment_migration(**frames)


def test_segment_migration_refuses_an_empty_frame(spark, before):
    empty = _segments(spark, [])
    with pytest.raises(ValueError, match="after has no rows"):
        segment_migration(before, empty)


def test_segment_migration_refuses_before_later_than_after(before, after):
    with pytest.raises(ValueError, match="later than after's"):
        segment_migration(after, before)


def test_segment_migration_names_the_missing_columns(spark, before):
    no_names = spark.createDataFrame([("c1", 0)], "customer_id string, cluster int")
    with pytest.raises(ValueError, match="after lacks column\\(s\\) as_of, segment_name"):
        segment_migration(before, no_names)


def _row(source, target, customers, share):
    return {
        C.FROM_AS_OF: H1,
        C.TO_AS_OF: H2,
        C.FROM_SEGMENT: source,
        C.TO_SEGMENT: target,
        C.CUSTOMERS: customers,
        C.SHARE: share,
    }


def test_format_matrix_prints_two_segments_sorted_with_new_last_row_and_lapsed_last_column():
    rows = [  # Loyal has 4 customers, Bargain 3, (new) 2; given in no particular order
        _row("Loyal", "(lapsed)", 1, 1 / 4),
        _row("(new)", "Bargain", 2, 1.0),
        _row("Bargain", "Loyal", 2, 2 / 3),
        _row("Loyal", "Loyal", 3, 3 / 4),
        _row("Bargain", "Bargain", 1, 1 / 3),
    ]
    assert format_matrix(rows) == [
        "Segment migration 2022-06-30 → 2022-12-31: customers (share of the from-segment)",
        "from \\ to     Bargain      Loyal   (lapsed)",
        "Bargain     1 (33.3%)  2 (66.7%)          -",
        "Loyal               -  3 (75.0%)  1 (25.0%)",
        "(new)      2 (100.0%)          -          -",
    ]


def test_format_matrix_refuses_empty_rows():
    with pytest.raises(ValueError, match="rows is empty"):
        format_matrix([])


def test_format_matrix_refuses_rows_of_two_migrations():
    other = {**_row("A", "A", 1, 1.0), C.TO_AS_OF: date(2023, 6, 30)}
    with pytest.raises(ValueError, match="rows mix dates"):
        format_matrix([_row("B", "B", 1, 1.0), other])
