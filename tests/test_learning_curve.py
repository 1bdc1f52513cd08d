"""The learning-efficiency benchmark: one fresh model per time budget, evaluated, written with a plot."""
from __future__ import annotations

import json

from diffaif.cli import main


def test_bench_learning_curve_writes_one_point_per_budget(tmp_path):
    out = tmp_path / "curve.json"
    assert main(["bench", "--learning-curve", "--env", "grid4x4", "--model-preset", "tiny", "--out", str(out),
                 "interactions=300", "budgets_s=[0.5,1.5]", "eval_episodes=3", "per_episode=2", "horizon=2",
                 "world_model.model.width=16", "world_model.model.depth=1", "world_model.model.heads=2",
                 "world_model.train.batch_size=16"]) == 0
    result = json.loads(out.read_text())
    points = result["points"]
    assert [p["budget_s"] for p in points] == [0.5, 1.5] and result["interactions"] >= 300
    assert points[0]["train_steps"] < points[1]["train_steps"]          # a longer budget trains longer
    for point in points:
        assert len(point["obs_accuracy"]) == 2 and all(0 <= a <= 1 for a in point["obs_accuracy"])
        assert 0 < point["train_cpu_s"] < point["budget_s"] + 5
    assert out.with_suffix(".png").stat().st_size > 1000


def test_bench_learning_curve_refuses_planner_flags(tmp_path, capsys):
    assert main(["bench", "--learning-curve", "--decisions", "5", "--out", str(tmp_path / "c.json")]) == 2
    assert "--learning-curve takes" in capsys.readouterr().err and not (tmp_path / "c.json").exists()
