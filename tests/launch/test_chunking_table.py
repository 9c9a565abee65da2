"""`protege bench chunking`: every strategy at every delay, a table and a plot, resumed where it stopped."""

from __future__ import annotations

import json

from protege.launch import cli


def test_the_table_measures_every_strategy_at_every_delay_and_resumes(tmp_path, capsys):
    out = tmp_path / "table"
    argv = ["bench", "chunking", "--out", str(out), "--tasks", "lift", "--policies", "diffusion", "--demos", "2",
            "--episodes", "1", "--steps", "3", "--delays", "0,2", "--json"]
    assert cli.main(argv) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert [(r["strategy"], r["delay"]) for r in results] == [
        (s, d) for s in ("sync", "naive", "ensemble", "rtc") for d in (0, 2)]
    assert all(r["episodes"] == 1 and r["within_change"] > 0 for r in results)
    table = (out / "table.md").read_text()
    assert "| lift | diffusion | rtc |" in table and (out / "chunking.png").stat().st_size > 0
    sync = out / "results" / "lift-diffusion-sync-0.json"
    written = sync.stat().st_mtime_ns
    assert cli.main([*argv[:-2], "4", "--json"]) == 0  # another delay: the cells done are kept, and shown
    assert sync.stat().st_mtime_ns == written and (out / "results" / "lift-diffusion-rtc-4.json").exists()
    settings = json.loads((out / "settings.json").read_text())
    assert settings["delays"] == [0, 2, 4]
    assert settings["noise"] == 0.0  # noise-free demos: a training chunk is the expert's plan (the learning table: 0.5)
    assert "| D=0 | D=2 | D=4 |" in (out / "table.md").read_text()
