"""A lift episode recorded by real key presses on an X display, checked in the saved dataset."""

from __future__ import annotations

import time

import numpy as np
from xwindow import XWindow

from protege.datasets import Dataset


def test_keys_held_on_a_real_display_become_the_recorded_actions(xdisplay, tmp_path):
    out = str(tmp_path / "demos.zarr")
    args = ["record", "--task", "lift", "--device", "keyboard", "--out", out]
    with XWindow.launch(xdisplay, "unset", args, "protege record") as window:
        window.key("Return")  # start
        started = time.monotonic()
        time.sleep(0.5)
        window.key("w", hold=1.0)  # forward (-x in the default view) for one second: about 20 ticks at 20 Hz
        time.sleep(0.5)
        window.key("Return")  # stop
        recorded = time.monotonic() - started
        window.key("y")  # save
        window.key("Escape")
        code, _, err = window.finish()
    assert code == 0, err
    ds = Dataset(out)
    assert ds.num_episodes == 1
    episode = ds.episode(0).data
    frames = len(episode["action"])
    assert abs(frames - recorded * ds.fps) <= 6, (frames, recorded)
    action = episode["action"]
    forward = int((action[:, 0] < 0).sum())
    assert 15 <= forward <= 26, f"{forward} frames with -x while W was held about one second"
    assert not np.any(action[:, 1:6]), "no other motion key was pressed"
    steps = np.diff(episode["timestamp"])
    assert abs(float(np.median(steps)) - 0.05) < 0.003, steps
    assert float(np.mean(np.abs(steps - 0.05) < 0.01)) >= 0.95, steps
