"""The tuning lab's trajectory table and plots, from synthetic per-sample data with known pass rates."""

from __future__ import annotations

import pandas as pd
import pytest

from tuningtax.analysis.trajectory import loss_summary, trajectory_plot, trajectory_rows, write_tables

TUNING = {"start": "m0", "method": "lora", "seed": 0, "save_steps": [5, 10],
          "arms": {"chat": {"fim_share": 0.0}, "fim": {"fim_share": 0.5}},
          "evaluate": {"flow": {"benchmark": "sl", "format": "fim-psm", "level": "first-line"},
                       "command": {"benchmark": "cmd", "format": "command-chat", "level": "code-extract"}}}
# passes per model on 10 tasks of each mode; the rest fail
FLOW = {"m0": 8, "chat-step5": 6, "chat-step10": 2, "fim-step5": 8, "fim-step10": 7}
COMMAND = {"m0": 5, "chat-step5": 6, "chat-step10": 7, "fim-step5": 5, "fim-step10": 6}


def samples() -> pd.DataFrame:
    rows = []
    for mode, bench, fmt, level, passes in (("flow", "sl", "fim-psm", "first-line", FLOW),
                                            ("command", "cmd", "command-chat", "code-extract", COMMAND)):
        for model, k in passes.items():
            for i in range(10):
                rows.append({"model": model, "benchmark": bench, "format": fmt, "level": level,
                             "task_id": f"{bench}/{i}", "passed": i < k})
                # another level of the same run must be ignored
                rows.append({"model": model, "benchmark": bench, "format": fmt, "level": "raw",
                             "task_id": f"{bench}/{i}", "passed": False})
    return pd.DataFrame(rows)


def test_rows_hold_each_checkpoint_against_step_zero():
    table = trajectory_rows(samples(), TUNING, seed=0, n_resamples=200)
    assert len(table) == 2 * 2 * 2  # modes x arms x steps
    flow = table[(table["mode"] == "flow") & (table["arm"] == "chat")].set_index("step")
    assert flow.loc[5, "pass1_start"] == 80.0 and flow.loc[5, "pass1_checkpoint"] == 60.0
    assert flow.loc[10, "delta_pts"] == -60.0 and flow.loc[10, "only_start"] == 6
    assert flow.loc[10, "mcnemar_p"] == pytest.approx(2 * 0.5 ** 6)
    # Holm over the four checkpoints of a mode: the smallest p is multiplied by 4
    assert flow.loc[10, "p_holm"] == pytest.approx(min(1.0, 4 * 2 * 0.5 ** 6))
    command = table[(table["mode"] == "command") & (table["arm"] == "fim")].set_index("step")
    assert command.loc[10, "delta_pts"] == 10.0


def test_a_missing_checkpoint_is_named():
    data = samples()
    with pytest.raises(Exception, match="fim-step10"):
        trajectory_rows(data[data["model"] != "fim-step10"], TUNING, seed=0, n_resamples=200)


def test_files_are_written_and_identical_on_rerun(tmp_path):
    table = trajectory_rows(samples(), TUNING, seed=0, n_resamples=200)
    loss = pd.DataFrame([{"arm": arm, "step": s, "loss": 1.0 / s, "response_tokens": 10}
                         for arm in ("chat", "fim") for s in range(1, 11)])
    outputs = {}
    for run in ("a", "b"):
        out = tmp_path / run
        write_tables(table, loss, TUNING, out)
        trajectory_plot(table, out / "trajectory")
        outputs[run] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert set(outputs["a"]) == {"trajectory.md", "trajectory.csv", "loss.csv", "trajectory.png", "trajectory.svg"}
    assert outputs["a"] == outputs["b"]
    summary = loss_summary(loss, [5, 10])
    assert summary["steps"].tolist() == ["1-5", "6-10", "1-5", "6-10"]
    assert summary["mean_loss"].iloc[0] == pytest.approx(sum(1 / s for s in range(1, 6)) / 5)
