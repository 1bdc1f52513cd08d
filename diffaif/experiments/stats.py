"""Summary statistics and pairwise tests of the comparison table (the method paper's Table I)."""
from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np
from scipy import stats


def undefined_reason(a: np.ndarray, b: np.ndarray) -> str | None:
    """Why Welch's t and Cohen's d are undefined for samples ``a`` and ``b`` (None when they are defined):
    both need a variance estimate, and a non-zero one."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if min(a.size, b.size) < 2:
        return "a sample has fewer than 2 episodes (no variance estimate)"
    if a.var() == 0 and b.var() == 0:
        return "both samples are constant (zero variance)"
    return None


def cohen_d(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's d with the average-variance pooled sd: (mean_a − mean_b) / sqrt((s_a² + s_b²) / 2);
    None when undefined (``undefined_reason``)."""
    if undefined_reason(a, b):
        return None
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float((a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))


def welch_test(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None]:
    """Welch's unequal-variance t-test (t, two-sided p); (None, None) when undefined (``undefined_reason``)."""
    if undefined_reason(a, b):
        return None, None
    with warnings.catch_warnings():  # a constant sample (the oracle's) trips scipy's precision warning
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(np.asarray(a, float), np.asarray(b, float), equal_var=False)
    return float(res.statistic), float(res.pvalue)


def summarise_steps(steps: np.ndarray, success: np.ndarray) -> dict:
    """Episodes, success rate and mean / median / std of steps (failed episodes count at the step cap)."""
    steps = np.asarray(steps, float)
    return {
        "episodes": int(steps.size),
        "success_rate": float(np.mean(success)),
        "steps_mean": float(steps.mean()),
        "steps_median": float(np.median(steps)),
        "steps_std": float(steps.std(ddof=1)) if steps.size > 1 else 0.0,
    }


def pairwise_tests(steps_by_agent: dict[str, np.ndarray]) -> list[dict]:
    """Welch's t and Cohen's d of steps for every pair of agents (a before b in the given order); where
    they are undefined t, p and cohen_d are None and ``undefined`` says why."""
    out = []
    for a, b in combinations(steps_by_agent, 2):
        t, p = welch_test(steps_by_agent[a], steps_by_agent[b])
        row = {"a": a, "b": b, "t": t, "p": p, "cohen_d": cohen_d(steps_by_agent[a], steps_by_agent[b])}
        reason = undefined_reason(steps_by_agent[a], steps_by_agent[b])
        if reason:
            row["undefined"] = reason
        out.append(row)
    return out


def format_table(summary: dict) -> str:
    """Markdown table in Table I's layout: one column per agent, test rows 'vs. <agent>'."""
    names = list(summary["agents"])
    rows = [["Metric", *names]]
    for label, key in (("Success rate", "success_rate"), ("Mean steps", "steps_mean"),
                       ("Median steps", "steps_median"), ("Standard deviation", "steps_std"),
                       ("Environment steps used", "env_steps"), ("Decision time (ms, median)", "decision_ms_median")):
        values = [summary["agents"][n].get(key) for n in names]
        rows.append([label, *("-" if v is None else f"{v:.2f}" for v in values)])
    tests = {(t["a"], t["b"]): t for t in summary["tests"]}

    def cell(row_agent: str, col_agent: str, fmt) -> str:
        for pair, sign in (((col_agent, row_agent), 1), ((row_agent, col_agent), -1)):
            if pair in tests:
                return "n/a" if tests[pair].get("undefined") else fmt(tests[pair], sign)
        return "-"

    def fmt_p(p: float) -> str:
        return "≤ 0.001" if p <= 0.001 else f"{p:.3f}"

    rows.append(["**Statistical tests (t, p)**", *[""] * len(names)])
    for other in names:
        rows.append([f"vs. {other}", *(cell(other, n, lambda t, s: f"{s * t['t']:.2f}, {fmt_p(t['p'])}")
                                        for n in names)])
    rows.append(["**Effect sizes (Cohen's d)**", *[""] * len(names)])
    for other in names:
        rows.append([f"vs. {other}", *(cell(other, n, lambda t, s: f"{s * t['cohen_d']:.2f}") for n in names)])
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"
