"""RFM scores and groups against hand-computed examples."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers.metrics.rfm import GROUPS, group_of, groups, quintile_scores


def test_ten_distinct_values_split_into_five_pairs():
    """Ranks 0..9 of 10: score = 1 + ⌊5·rank/10⌋ → two customers per score."""
    assert quintile_scores(np.arange(10.0)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_recency_scores_the_smallest_number_of_days_highest():
    assert quintile_scores(np.array([1.0, 400.0, 30.0, 90.0, 7.0]), higher_is_better=False).tolist() == [5, 1, 3, 2, 4]


def test_ties_share_the_lowest_score_of_their_range():
    """Six customers never bought (0) and four did: the six all score 1, not 1–3."""
    values = np.array([0, 0, 0, 0, 0, 0, 10, 20, 30, 40], dtype=float)
    assert quintile_scores(values).tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_missing_values_are_not_scored_and_do_not_count():
    assert quintile_scores(np.array([np.nan, 5.0, np.nan, 1.0])).tolist() == [0, 3, 0, 1]


def test_the_grid_names_all_eleven_groups():
    names = {group_of(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert names == set(GROUPS)


@pytest.mark.parametrize("r,f,m,group", [
    (5, 5, 5, "champions"), (5, 4, 3, "champions"),   # FM = round-half-up(3.5) = 4
    (4, 5, 4, "loyal"), (3, 4, 4, "loyal"),
    (5, 2, 3, "potential_loyalist"), (5, 1, 1, "new_customer"), (4, 1, 1, "promising"),
    (3, 3, 3, "needs_attention"), (3, 2, 1, "about_to_sleep"),
    (2, 3, 4, "at_risk"), (1, 5, 5, "cannot_lose"), (2, 1, 2, "hibernating"), (1, 1, 1, "lost"),
])
def test_named_groups(r, f, m, group):
    assert groups(np.array([r]), np.array([f]), np.array([m])).tolist() == [group]


def test_an_unscored_customer_has_no_group():
    assert groups(np.array([0, 5]), np.array([3, 3]), np.array([3, 3])).tolist() == ["", "potential_loyalist"]


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=200))
def test_scores_are_monotonic_and_within_one_to_five(values):
    """A customer with a larger value never scores lower; every score is 1..5."""
    array = np.array(values)
    scores = quintile_scores(array)
    assert set(scores.tolist()) <= {1, 2, 3, 4, 5}
    order = np.argsort(array, kind="stable")
    assert (np.diff(scores[order]) >= 0).all()
