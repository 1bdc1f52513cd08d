"""The comparison table's statistics against hand-computed values."""
import math

import numpy as np
import pytest

from diffaif.experiments.stats import cohen_d, format_table, pairwise_tests, summarise_steps, welch_test


def test_cohen_d_by_hand():
    assert cohen_d([1, 2, 3], [2, 3, 4]) == pytest.approx(-1.0)        # both variances 1
    assert cohen_d([3, 3], [2, 5]) == pytest.approx((3 - 3.5) / math.sqrt(4.5 / 2))   # one constant sample
    assert cohen_d([2, 2], [2, 2]) is None and cohen_d([3, 3], [2, 2]) is None      # zero pooled variance
    assert cohen_d([5.0], [1.0, 2.0]) is None                                        # one value: no variance estimate


def test_welch_test_by_hand():
    # means 2 and 5.5, variances 1 and 5/3: t = −3.5 / sqrt(1/3 + 5/12) = −3.5 / sqrt(0.75)
    t, p = welch_test([1, 2, 3], [4, 5, 6, 7])
    assert t == pytest.approx(-3.5 / math.sqrt(0.75))
    assert 0 < p < 0.05
    assert welch_test([4, 4], [4, 4]) == (None, None) and welch_test([4, 4], [3, 3]) == (None, None)
    assert welch_test([4], [3, 5]) == (None, None)


def test_summaries_and_pairs():
    summary = summarise_steps(np.array([10, 12, 100]), np.array([1, 1, 0]))
    assert summary == {"episodes": 3, "success_rate": pytest.approx(2 / 3), "steps_mean": pytest.approx(122 / 3),
                       "steps_median": 12.0, "steps_std": pytest.approx(np.std([10, 12, 100], ddof=1))}
    pairs = pairwise_tests({"a": np.array([1, 2, 3]), "b": np.array([2, 3, 4]), "c": np.array([9.0])})
    assert [(r["a"], r["b"]) for r in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert pairs[0]["cohen_d"] == pytest.approx(-1.0)


def test_undefined_tests_are_null_with_a_reason_strict_json_and_na_in_the_table():
    import json

    steps = {"oracle": np.array([6.0]), "random": np.array([40.0]), "qlearning": np.array([6.0, 8.0])}
    pairs = pairwise_tests(steps)
    undefined = [p for p in pairs if p.get("undefined")]
    assert [(p["a"], p["b"]) for p in undefined] == [("oracle", "random"), ("oracle", "qlearning"),
                                                     ("random", "qlearning")]
    assert all(p["t"] is None and p["p"] is None and p["cohen_d"] is None for p in undefined)
    summary = {"agents": {n: summarise_steps(s, s < 50) for n, s in steps.items()}, "tests": pairs}
    json.dumps(summary, allow_nan=False)                        # no NaN / Infinity anywhere
    table = format_table(summary)
    assert "n/a" in table and "≤ 0.001" not in table and "inf" not in table
