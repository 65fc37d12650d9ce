"""pass@k against hand-computed values."""

from __future__ import annotations

from math import comb

import pytest

from tuningtax.scoring.passk import pass_at_k, pass_at_k_table


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (1, 1, 1, 1.0),
    (1, 0, 1, 0.0),
    (10, 3, 1, 0.3),                       # c / n
    (5, 2, 2, 1 - (3 * 2) / (5 * 4)),      # 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    (10, 8, 3, 1.0),                       # n - c < k: every draw of 3 holds a pass
    (4, 1, 4, 1.0),
    (20, 0, 10, 0.0),
])
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_binomial_formula():
    for n in range(1, 15):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)


def test_table_per_task_and_aggregate():
    results = [{"task_id": "a", "sample": i, "passed": i < 2} for i in range(4)] + \
              [{"task_id": "b", "sample": i, "passed": False} for i in range(4)]
    rows, agg = pass_at_k_table(results, [1, 2, 10])
    assert [(r["task_id"], r["n"], r["c"]) for r in rows] == [("a", 4, 2), ("b", 4, 0)]
    assert rows[0]["pass@2"] == pytest.approx(1 - 1 / 6)  # 1 - C(2,2)/C(4,2)
    assert agg == {"pass@1": pytest.approx(0.25), "pass@2": pytest.approx((1 - 1 / 6) / 2)}  # k=10 > n dropped
