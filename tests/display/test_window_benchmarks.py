"""The recorder and the intervention window hold 20 Hz with two 128x128 cameras in a real X window."""

from __future__ import annotations

import pytest

from protege.sim import EnvSpec
from protege.teleop.bench import bench_intervention, bench_recorder


def test_the_recorder_benchmark_saves_both_scripted_takes(xdisplay, monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", xdisplay)
    figures = bench_recorder(tmp_path)
    assert figures["display"] == f"X display {xdisplay}"
    assert (figures["ticks"], figures["episodes_saved"]) == (200, 2)


def test_the_intervention_benchmark_runs_the_scene_it_is_given(xdisplay, monkeypatch):
    monkeypatch.setenv("DISPLAY", xdisplay)
    figures = bench_intervention(spec=EnvSpec.make("push", cameras=("front",), image_size=64), ticks=40)
    assert (figures["task"], figures["cameras"], figures["image_size"], figures["ticks"]) == ("push", 1, 64, 40)


@pytest.mark.slow
def test_record_and_intervene_hold_the_rate_on_a_real_display(xdisplay, monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", xdisplay)
    for figures in (bench_recorder(tmp_path), bench_intervention()):
        assert figures["display"] == f"X display {xdisplay}"
        assert figures["ticks"] == 200
        assert figures["on_time"] >= 0.99, figures
