"""`protege bench learn`: cells train and evaluate in processes of their own, the table resumes, and
bad settings get one line."""

from __future__ import annotations

import json

import pytest

from protege.launch import cli
from protege.launch.experiments.learn_table import Cell, LearnSettings, table_rows

TINY = ["--tasks", "reach", "--policies", "mlp", "--demos", "2", "--episodes", "3", "--steps", "20",
        "--disturb", "arm_shove"]


def test_a_table_runs_its_cells_writes_markdown_and_html_and_resumes(tmp_path, capsys):
    out = tmp_path / "table"
    assert cli.main(["bench", "learn", "--out", str(out), *TINY]) == 0
    result = json.loads((out / "results" / "reach-mlp.json").read_text())
    assert result["clean"]["episodes"] == 3 and result["clean"]["disturb"] == ""
    assert result["disturbed"]["disturb"] == "arm_shove=0.04" and result["disturbed"]["strikes"] >= 1
    markdown = (out / "table.md").read_text()
    assert "| task | mlp |" in markdown and "| reach | " in markdown and "arm_shove=0.04" in markdown
    assert "expert noise 0.5, DART labels" in markdown
    assert "<table>" in (out / "table.html").read_text()
    capsys.readouterr()
    stamp = (out / "results" / "reach-mlp.json").stat().st_mtime_ns
    assert cli.main(["bench", "learn", "--out", str(out), *TINY]) == 0  # resumes: nothing left to run
    assert "1 of 1 cells done, running 0" in capsys.readouterr().out
    assert (out / "results" / "reach-mlp.json").stat().st_mtime_ns == stamp
    (out / "table.html").unlink()
    assert cli.main(["report", str(out)]) == 0 and "<table>" in (out / "table.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "juggle"], "unknown task 'juggle'"),
        (["--policies", "svm"], "unknown policy 'svm'"),
        (["--episodes", "0"], "--episodes must be at least 1"),
        (["--noise", "-0.1"], "--noise must be >= 0"),
        (["--policies", "cnn", "--tasks", "stack"], "no cell to run"),
        (["--disturb", "flood"], "--disturb: unknown disturbance 'flood'"),
    ],
)
def test_bad_table_settings_are_one_line(tmp_path, capsys, args, message):
    code = cli.main(["bench", "learn", "--out", str(tmp_path / "t"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_table_grows_by_the_cells_of_a_run_that_measures_the_same_way(tmp_path):
    out = tmp_path / "table"
    assert cli.main(["bench", "learn", "--out", str(out), *TINY]) == 0
    stamp = (out / "results" / "reach-mlp.json").stat().st_mtime_ns
    assert cli.main(["bench", "learn", "--out", str(out), *TINY, "--tasks", "lift"]) == 0  # argparse: the last wins
    assert json.loads((out / "settings.json").read_text())["tasks"] == ["reach", "lift"]
    table = (out / "table.md").read_text()
    assert "| reach | " in table and "| lift | " in table
    assert (out / "results" / "reach-mlp.json").stat().st_mtime_ns == stamp


def test_a_table_is_resumed_only_with_its_own_settings(tmp_path, capsys):
    out = tmp_path / "t"
    out.mkdir()
    (out / "settings.json").write_text(json.dumps(LearnSettings(("reach",), ("mlp",)).to_json()))
    assert cli.main(["bench", "learn", "--out", str(out), "--tasks", "reach", "--policies", "mlp", "--demos", "5"]) == 2
    assert "holds a table with demos=100, not 5" in capsys.readouterr().err
    assert cli.main(["bench", "learn", "--out", str(out), "--tasks", "reach", "--policies", "mlp",
                     "--noise", "0.2"]) == 2
    assert "holds a table with noise=0.5, not 0.2" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file").write_text("x")
    assert cli.main(["bench", "learn", "--out", str(tmp_path / "other")]) == 2
    assert "is not a learning table" in capsys.readouterr().err
    assert cli.main(["bench", "sim", "--out", str(out)]) == 2
    (out / "settings.json").write_text('{"tasks": ["reach"], "policies": "mlp"}')
    assert cli.main(["bench", "learn", "--out", str(out)]) == 2
    assert "settings.json: policies: expected a list" in capsys.readouterr().err


def test_a_table_from_before_the_noise_setting_reads_as_the_noise_its_demos_had(tmp_path, capsys):
    out = tmp_path / "t"
    out.mkdir()
    old = LearnSettings(("reach",), ("mlp",), demos=2, episodes=3, steps=20, disturb="arm_shove=0.04").to_json()
    del old["noise"]
    (out / "settings.json").write_text(json.dumps(old))
    assert cli.main(["bench", "learn", "--out", str(out), *TINY]) == 2
    assert "holds a table with noise=0.2, not 0.5" in capsys.readouterr().err


def test_each_row_marks_its_best_state_policy_and_the_cnn_only_where_it_runs():
    settings = LearnSettings(("lift", "stack"), ("mlp", "act", "cnn"))
    assert Cell("stack", "cnn") not in settings.cells and Cell("lift", "cnn") in settings.cells

    def result(task, policy, rate):
        figures = {"success_rate": rate, "ci95": [rate - 0.05, rate + 0.05]}
        return {"task": task, "policy": policy, "clean": figures, "disturbed": figures}

    header, rows = table_rows(settings, [result("lift", "mlp", 0.9), result("lift", "act", 0.95),
                                         result("lift", "cnn", 0.99)])
    assert header == ["task", "mlp", "act", "cnn (cameras)"]
    assert rows[0][2].startswith("95% (90-100)*") and "*" not in rows[0][1] and "*" not in rows[0][3]
    assert rows[1] == ["stack", "pending", "pending", ""]


@pytest.mark.parametrize("table, policy", [("learn", "mlp"), ("vision", "cnn"), ("chunking", "diffusion")])
def test_every_table_refuses_settings_it_cannot_read_in_one_line(tmp_path, capsys, table, policy):
    out = tmp_path / "t"
    out.mkdir()
    (out / "settings.json").write_text("{not json")
    assert cli.main(["bench", table, "--out", str(out), "--tasks", "lift", "--policies", policy]) == 2
    err = capsys.readouterr().err
    assert f"settings.json: not a {table.replace('learn', 'learning')} table's settings" in err
    assert len(err.strip().splitlines()) == 1 and (out / "settings.json").read_text() == "{not json"


@pytest.mark.parametrize("table, policy", [("learn", "mlp"), ("vision", "cnn"), ("chunking", "diffusion")])
@pytest.mark.parametrize(("args", "message"), [
    (["--noise", "-0.1"], "--noise must be >= 0 and finite, got -0.1"),
    (["--demos", "0"], "--demos must be at least 1, got 0"),
    (["--steps", "-1"], "--steps must be >= 0"),
])
def test_every_table_refuses_bad_counts_before_writing_anything(tmp_path, capsys, table, policy, args, message):
    out = tmp_path / "t"
    assert cli.main(["bench", table, "--out", str(out), "--tasks", "push", "--policies", policy, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()
