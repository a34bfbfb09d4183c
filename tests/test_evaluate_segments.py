"""The adjusted Rand index of scripts/evaluate_segments.py, on contingency tables by hand."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location(
    "evaluate_segments", REPO / "scripts" / "evaluate_segments.py"
)
evaluate_segments = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(evaluate_segments)


def test_identical_partitions_up_to_relabelling_score_1():
    cells = {("Champions", "champions"): 3, ("Lapsed", "lapsed_low_value"): 4}
    assert evaluate_segments.adjusted_rand_index(cells) == pytest.approx(1.0)


def test_partial_agreement_matches_the_hand_computation():
    # n = 5; agreeing pairs 1 + 1 = 2; row pairs C(3,2) + C(2,2) = 4; column pairs
    # C(2,2) + C(3,2) = 4; expected 4 * 4 / C(5,2) = 1.6; ARI = (2 - 1.6) / (4 - 1.6) = 1/6
    cells = {("a", "x"): 2, ("a", "y"): 1, ("b", "y"): 2}
    assert evaluate_segments.adjusted_rand_index(cells) == pytest.approx(1 / 6)
