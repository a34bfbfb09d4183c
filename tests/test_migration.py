"""Segment migration between two dates, its printed matrix, and cluster matching across refits."""

from __future__ import annotations

from datetime import date

import pytest
from chispa import assert_approx_df_equality, assert_df_equality

from customer_analytics.core import columns as C
from customer_analytics.stages.migration import (
    consecutive_migrations,
    format_matrix,
    latest_runs,
    segment_dates,
    segment_migration,
)
from customer_analytics.stages.segmentation.matching import describe_matching, match_clusters

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


#: The migration of ``before`` to ``after``, by hand: A has 2 customers, B 3, (new) 1.
BEFORE_TO_AFTER = [
    (H1, H2, "A", "A", 1, 1 / 2),  # c1
    (H1, H2, "A", "B", 1, 1 / 2),  # c2
    (H1, H2, "B", "B", 2, 2 / 3),  # c5, c6
    (H1, H2, "B", "(lapsed)", 1, 1 / 3),  # c3
    (H1, H2, "(new)", "A", 1, 1.0),  # c4
]


def test_segment_migration_counts_stayers_movers_joiners_and_lapsed_customers(spark, before, after):
    expected = spark.createDataFrame(BEFORE_TO_AFTER, MIGRATION)
    actual = segment_migration(before, after, from_as_of=H1, to_as_of=H2)
    assert_approx_df_equality(actual, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_segment_migration_shares_of_each_from_segment_sum_to_one(before, after):
    rows = (
        segment_migration(before, after, from_as_of=H1, to_as_of=H2)
        .groupBy(C.FROM_SEGMENT)
        .sum(C.SHARE)
        .collect()
    )
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
        segment_migration(before, after, from_as_of=H1, to_as_of=H2),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_segment_migration_refuses_two_equal_dates(before):
    with pytest.raises(ValueError, match=r"are the same \(2022-06-30\)"):
        segment_migration(before, before, from_as_of=H1, to_as_of=H1)


def test_segment_migration_reads_each_frame_at_its_date_only(spark, before, after):
    # a row of another date on either side is not a customer of the migration
    other = date(2023, 6, 30)
    more_before = before.unionByName(_segments(spark, [("c9", other, 0, "A")]))
    more_after = after.unionByName(_segments(spark, [("c8", other, 1, "B")]))
    expected = spark.createDataFrame(BEFORE_TO_AFTER, MIGRATION)
    actual = segment_migration(more_before, more_after, from_as_of=H1, to_as_of=H2)
    assert_approx_df_equality(actual, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_segment_migration_with_no_customers_after_has_everyone_lapsed(spark, before):
    empty = _segments(spark, [])
    expected = spark.createDataFrame(  # A has c1, c2; B has c3, c5, c6
        [(H1, H2, "A", "(lapsed)", 2, 1.0), (H1, H2, "B", "(lapsed)", 3, 1.0)], MIGRATION
    )
    actual = segment_migration(before, empty, from_as_of=H1, to_as_of=H2)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_segment_migration_refuses_from_later_than_to(before, after):
    with pytest.raises(ValueError, match="later than to_as_of"):
        segment_migration(after, before, from_as_of=H2, to_as_of=H1)


def test_segment_migration_names_the_missing_columns(spark, before):
    no_names = spark.createDataFrame([("c1", 0)], "customer_id string, cluster int")
    with pytest.raises(ValueError, match="after lacks column\\(s\\) as_of, segment_name"):
        segment_migration(before, no_names, from_as_of=H1, to_as_of=H2)


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


def test_match_clusters_takes_the_optimal_assignment_where_greedy_fails():
    previous = [[0.0, 0.0], [10.0, 0.0]]
    new = [[20.0, 0.0], [6.0, 0.0]]
    # greedy (nearest pair first, or new cluster 0 first) pairs new 1 - previous 1 (4), then
    # new 0 - previous 0 (20): total 24, and {0: 0, 1: 1}. Optimal: new 0 - previous 1 (10) +
    # new 1 - previous 0 (6) = 16.
    assert match_clusters(previous, new) == {0: 1, 1: 0}


def test_describe_matching_gives_the_distance_each_matched_cluster_moved():
    matching = describe_matching([[0.0, 0.0], [10.0, 0.0]], [[20.0, 0.0], [6.0, 0.0]])
    assert matching.distances == {0: 10.0, 1: 6.0}


def test_match_clusters_undoes_a_permutation_of_slightly_moved_centres():
    previous = [[0.0, 0.0], [5.0, 5.0], [-4.0, 3.0]]
    new = [[-4.1, 3.0], [0.1, -0.1], [5.0, 5.2]]  # previous 2, 0, 1, each moved < 0.25
    assert match_clusters(previous, new) == {0: 2, 1: 0, 2: 1}


def test_match_clusters_gives_fresh_ids_after_the_largest_previous_id_when_k_grows():
    previous = [[0.0, 0.0], [10.0, 0.0]]
    new = [[10.0, 1.0], [50.0, 50.0], [0.0, 1.0], [-30.0, 0.0]]
    # new 0 -> 1 and new 2 -> 0 (1 each); new 1 and 3 are left: ids 2 and 3 in index order
    assert match_clusters(previous, new) == {0: 1, 1: 2, 2: 0, 3: 3}


def test_match_clusters_counts_fresh_ids_from_carried_over_ids():
    previous = {0: [0.0, 0.0], 4: [10.0, 0.0]}  # id 4 from an earlier refit
    new = [[0.0, 1.0], [10.0, 1.0], [30.0, 0.0]]
    assert match_clusters(previous, new) == {0: 0, 1: 4, 2: 5}


def test_match_clusters_retires_the_unmatched_previous_id_when_k_shrinks():
    previous = [[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]]
    new = [[19.0, 0.0], [1.0, 0.0]]
    matching = describe_matching(previous, new)
    assert (matching.ids, matching.retired) == ({0: 2, 1: 0}, [1])


def test_describe_matching_lines_say_which_cluster_keeps_takes_or_gets_a_new_id():
    previous = [[0.0, 0.0], [10.0, 0.0]]
    new = [[0.0, 0.08], [50.0, 50.0], [10.0, 1.0]]
    assert describe_matching(previous, new).lines == [
        "K 2 -> 3: 2 matched, 1 new, 0 retired",
        "cluster 0 keeps id 0 (moved 0.08)",
        "new cluster 1 has no match: new id 2",
        "cluster 2 takes id 1 (moved 1.00)",
    ]


def test_describe_matching_lines_name_the_retired_ids():
    previous = [[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]]
    assert describe_matching(previous, [[19.0, 0.0], [1.0, 0.0]]).lines == [
        "K 3 -> 2: 2 matched, 0 new, 1 retired",
        "cluster 0 takes id 2 (moved 1.00)",
        "cluster 1 takes id 0 (moved 1.00)",
        "previous cluster 1 has no match: id 1 retired",
    ]


@pytest.mark.parametrize(
    ("previous", "new", "message"),
    [
        ([], [[1.0]], "previous_centers is empty"),
        ([[1.0]], [], "new_centers is empty"),
        ([[1.0, 2.0]], [[1.0]], "new_centers have 1 values each, previous_centers 2"),
        ([[1.0, 2.0], [1.0]], [[1.0, 2.0]], "previous_centers must be vectors of one"),
        ([[1.0]], [[float("nan")]], "new_centers holds a value that is not finite"),
    ],
)
def test_match_clusters_refuses_malformed_centres(previous, new, message):
    with pytest.raises(ValueError, match=message):
        match_clusters(previous, new)


def test_latest_runs_keep_each_dates_last_run(spark):
    history = spark.createDataFrame(
        [
            ("c1", date(2024, 1, 31), 0, "A", "r1"),
            ("c1", date(2024, 1, 31), 1, "B", "r2"),  # January segmented again
            ("c1", date(2024, 2, 29), 0, "A", "r1"),
        ],
        "customer_id string, as_of date, cluster int, segment_name string, run_id string",
    )
    expected = spark.createDataFrame(
        [("c1", date(2024, 1, 31), 1, "B", "r2"), ("c1", date(2024, 2, 29), 0, "A", "r1")],
        history.schema,
    )
    assert_df_equality(latest_runs(history), expected, ignore_row_order=True)


def test_consecutive_migrations_pair_each_date_with_the_next(spark):
    history = spark.createDataFrame(
        [
            ("c1", date(2024, 1, 31), 0, "A", "r1"),
            ("c1", date(2024, 2, 29), 1, "B", "r1"),
            ("c2", date(2024, 2, 29), 0, "A", "r1"),
            ("c2", date(2024, 3, 31), 0, "A", "r1"),
        ],
        "customer_id string, as_of date, cluster int, segment_name string, run_id string",
    )
    jan, feb, mar = date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)
    expected = spark.createDataFrame(
        [
            (jan, feb, "A", "B", 1, 1.0),
            (jan, feb, "(new)", "A", 1, 1.0),
            (feb, mar, "A", "A", 1, 1.0),
            (feb, mar, "B", "(lapsed)", 1, 1.0),
        ],
        MIGRATION,
    )
    actual = consecutive_migrations(history, [mar, jan, feb])
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_segment_dates_lists_each_date_once_oldest_first(spark):
    history = spark.createDataFrame(
        [("c1", date(2024, 2, 29)), ("c2", date(2024, 1, 31)), ("c1", date(2024, 1, 31))],
        "customer_id string, as_of date",
    )
    assert [r[0] for r in segment_dates(history).collect()] == [
        date(2024, 1, 31),
        date(2024, 2, 29),
    ]


def test_one_date_has_no_migration(spark):
    history = spark.createDataFrame(
        [("c1", date(2024, 1, 31), 0, "A", "r1")],
        "customer_id string, as_of date, cluster int, segment_name string, run_id string",
    )
    assert consecutive_migrations(history, [date(2024, 1, 31)]) is None
