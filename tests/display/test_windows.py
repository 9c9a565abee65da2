"""Every protege window on a real X server, under each MuJoCo GL backend, driven by real X input.

Each test starts the command as a person would (a display, no SDL driver override), finds its window
by title, grabs it, and checks that the views are lit and change when the scene changes; then Esc
closes it with exit status 0 and nothing on stderr but the command's own lines. On the 1600x1000
Xvfb screen the main view is 960x720 at the top left and the recorded cameras' thumbnails (240 px
wide) stand to its right (in the browser, right of the episode list, and smaller).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from xwindow import GL_MODES, XWindow, changed, lit

from protege.datasets import Dataset
from protege.teleop.browser_view import HUD_HEIGHT, LIST_WIDTH, TIMELINE_HEIGHT

MAIN = (slice(0, 720), slice(0, 960))
THUMBS = (slice(0, 480), slice(960, 1200))
BROWSE_VIEW = (slice(30, 400), slice(LIST_WIDTH + 20, LIST_WIDTH + 600))  # inside the browser's main view


def closes_cleanly(window: XWindow, key: str = "Escape") -> None:
    window.key(key)
    code, out, err = window.finish()
    assert code == 0, err
    assert "Traceback" not in err and "rror" not in err, err


@pytest.mark.parametrize("gl", GL_MODES)
def test_sim_view(xdisplay, gl):
    with XWindow.launch(xdisplay, gl, ["sim", "view", "--task", "lift", "--expert"], "protege sim view") as window:
        first = window.grab()
        assert lit(first[MAIN]), "the main view is dark"
        assert lit(first[THUMBS]), "the front and wrist thumbnails are dark"
        time.sleep(1.0)
        assert changed(first[MAIN], window.grab()[MAIN]) > 1.0, "the expert moves the arm: the view must change"
        window.key("n")  # next seed: another scene
        assert changed(first[MAIN], window.grab()[MAIN]) > 1.0
    closes_cleanly(window)


@pytest.mark.parametrize("gl", GL_MODES)
def test_record_window(xdisplay, gl, tmp_path):
    out = str(tmp_path / "demos.zarr")
    args = ["record", "--task", "lift", "--device", "keyboard", "--out", out]
    with XWindow.launch(xdisplay, gl, args, "protege record") as window:
        first = window.grab()
        assert lit(first[MAIN]) and lit(first[THUMBS]), "the main view or the thumbnails are dark"
        window.key("Return")  # start recording
        window.key("r", hold=1.0)  # raise the arm
        assert changed(first[MAIN], window.grab()[MAIN]) > 1.0, "the arm moved: the view must change"
    closes_cleanly(window)


@pytest.mark.parametrize("gl", GL_MODES)
def test_rollout_intervene_window(xdisplay, gl, mlp_run, tmp_path):
    args = ["rollout", "--checkpoint", mlp_run, "--intervene", "keyboard", "--episodes", "1",
            "--record", str(tmp_path / "fixes.zarr")]
    with XWindow.launch(xdisplay, gl, args, "protege rollout") as window:
        ready = window.grab()[MAIN]
        assert lit(ready), "a policy without cameras must still show the scene"
        time.sleep(0.5)
        assert changed(ready, window.grab()[MAIN]) < 0.5, "before the start key the policy must not move"
        window.key("Return")  # the ready gate: start the episode
        time.sleep(1.0)
        assert changed(ready, window.grab()[MAIN]) > 1.0, "the policy moves the arm: the view must change"
    closes_cleanly(window)


def test_rollout_intervene_window_under_disturbances(xdisplay, mlp_run, tmp_path):
    """The window's episode runs under the evaluation's disturbances: the push is reported and recorded."""
    args = ["rollout", "--checkpoint", mlp_run, "--intervene", "keyboard", "--episodes", "1", "--no-wait",
            "--time-limit", "3", "--disturb", "object_push=0.08",
            "--record", str(tmp_path / "fixes.zarr")]
    with XWindow.launch(xdisplay, "unset", args, "protege rollout") as window:
        code, out, err = window.finish()
    assert code == 0, err
    assert "under object_push=0.08 (1 strikes)" in out, out
    data = Dataset(str(tmp_path / "fixes.zarr"))
    jumps = np.linalg.norm(np.diff(data["object_pos"][:, :2], axis=0), axis=1)
    assert jumps.max() == pytest.approx(0.08, abs=0.01), "the recorded object jumps by the push"


@pytest.mark.parametrize("gl", GL_MODES)
def test_browse_window(xdisplay, gl, lift_demos):
    with XWindow.launch(xdisplay, gl, ["browse", lift_demos], "protege browse") as window:
        first = window.grab()
        assert lit(first[BROWSE_VIEW]), "the main view is dark"
        assert lit(first[:240, -240:]), "the front camera's thumbnail is dark"
        window.click(LIST_WIDTH + 560, first.shape[0] - HUD_HEIGHT - TIMELINE_HEIGHT // 2)  # the timeline, near the end
        assert changed(first[BROWSE_VIEW], window.grab()[BROWSE_VIEW]) > 1.0, "scrubbing must change the scene shown"
    closes_cleanly(window)


@pytest.mark.parametrize("gl", GL_MODES)
def test_replay_window_stays_on_the_last_frame(xdisplay, gl, lift_demos):
    ds = Dataset(lift_demos)
    seconds = ds.episode_ends[0] / ds.fps
    with XWindow.launch(xdisplay, gl, ["replay", lift_demos, "--episode", "0", "--window"], "protege replay") as window:
        assert lit(window.grab()[MAIN]), "the replay's main view is dark"
        time.sleep(seconds + 1.0)  # past the episode's end: the window must stay on its last frame
        assert window.process.poll() is None, "the replay window closed by itself"
        last = window.grab()[MAIN]
        for _ in range(10):
            window.key("Left")  # step back through the episode
        assert changed(last, window.grab()[MAIN]) > 0.5, "stepping back must show earlier frames"
    closes_cleanly(window)
