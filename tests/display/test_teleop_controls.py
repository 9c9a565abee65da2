"""What a person teleoperating relies on, by real key presses on an X display, checked in the saved
datasets: speed levels, taps, pause, review before save, a person's time limit, corrections that wait
for the first input."""

from __future__ import annotations

import time

import numpy as np
import pytest
from xwindow import XWindow, changed

from protege.datasets import Dataset

HUD = 96  # the shared Window's heads-up display below the views


def run_window(xdisplay: str, args: list[str], title: str, drive) -> None:
    """Launch ``protege ARGS``, let ``drive(window)`` press keys, close with Esc; exit status 0."""
    with XWindow.launch(xdisplay, "unset", args, title) as window:
        drive(window)
        window.key("Escape")
        code, _, err = window.finish()
    assert code == 0, err


def record(out: str, *extra: str) -> list[str]:
    return ["record", "--task", "lift", "--device", "keyboard", "--out", out, "--cameras", "front",
            "--image-size", "64", *extra]


def test_speed_levels_scale_the_step_and_a_10ms_tap_moves_one_tick(xdisplay, tmp_path):
    out = str(tmp_path / "speeds.zarr")

    def drive(window: XWindow) -> None:
        window.key("Return")
        for _ in range(3):  # W at 1x, then Tab: 0.25x, Tab: 0.5x
            window.key("w", hold=0.4)
            window.key("Tab")
        for _ in range(3):  # now 1x again: three taps of 10 ms, each well inside one 50 ms tick
            window.tap("d", 0.01)
            time.sleep(0.15)
        window.key("Return")
        window.key("y")

    run_window(xdisplay, record(out), "protege record", drive)
    action = Dataset(out).episode(0).data["action"]
    forward = -action[:, 0][action[:, 0] != 0]  # W: forward, -x in the default view
    levels = [forward[0], forward[len(forward) // 2], forward[-1]]
    assert levels == pytest.approx([0.01, 0.0025, 0.005]), forward  # 1x, 0.25x, 0.5x of the 1 cm step
    assert set(np.round(forward, 6)) == {0.01, 0.0025, 0.005}
    right = action[:, 1]
    assert int((right != 0).sum()) == 3, right  # each tap moved exactly one tick
    assert right[right != 0] == pytest.approx([0.01] * 3)


def test_p_pauses_and_a_take_at_its_time_limit_freezes_until_y_saves_it(xdisplay, tmp_path):
    out = str(tmp_path / "review.zarr")
    grabs = []

    def drive(window: XWindow) -> None:
        window.key("Return")
        window.xdotool("keydown", "r")  # raise the arm throughout: the view moves until the take freezes
        time.sleep(0.5)
        window.key("p", hold=0.05)
        time.sleep(1.0)  # paused: neither ticks nor timestamps
        window.key("p", hold=0.05)
        time.sleep(2.0)  # past the 2 s limit
        grabs.append(window.grab()[:-HUD])
        time.sleep(0.5)
        grabs.append(window.grab()[:-HUD])
        window.xdotool("keyup", "r")
        window.key("y")

    run_window(xdisplay, record(out, "--time-limit", "2"), "protege record", drive)
    assert changed(grabs[0], grabs[1]) < 0.5, "a take at its time limit must freeze on its last frame"
    ds = Dataset(out)
    assert ds.num_episodes == 1 and ds.num_frames == 40  # 2 s at 20 Hz
    timestamps = ds.episode(0).data["timestamp"]
    assert float(np.diff(timestamps).max()) < 0.3, "the 1 s pause must be left out of the timestamps"
    assert float(timestamps[-1]) < 2.3


def test_time_limit_0_lets_a_take_run_past_the_tasks_limit(xdisplay, tmp_path):
    out = str(tmp_path / "long.zarr")

    def drive(window: XWindow) -> None:
        window.key("Return")
        time.sleep(5.8)  # reach's limit is 5 s
        window.key("Return")
        window.key("y")

    args = ["record", "--task", "reach", "--device", "keyboard", "--out", out, "--cameras", "front",
            "--image-size", "64", "--time-limit", "0"]
    run_window(xdisplay, args, "protege record", drive)
    assert Dataset(out).num_frames > 100 + 5  # the task would have truncated at 100 ticks


def test_a_corrections_leading_idle_ticks_are_not_recorded(xdisplay, lift_demos, tmp_path):
    out = str(tmp_path / "fixes.zarr")

    def drive(window: XWindow) -> None:
        window.key("c")  # correct from frame 0 with the keyboard
        time.sleep(1.0)  # reading the screen: about 20 ticks that must not count
        window.key("r", hold=0.5)
        window.key("Return")  # hand back: without a policy the take ends
        window.key("y")

    run_window(xdisplay, ["browse", lift_demos, "--out", out], "protege browse", drive)
    episode = Dataset(out).episode(0).data
    action = episode["action"]
    assert action[0, 2] > 0, "the take starts with the person's first input"
    assert len(action) < 20, f"{len(action)} frames: idle ticks before the first input were recorded"
    assert float(episode["timestamp"][0]) == 0.0
