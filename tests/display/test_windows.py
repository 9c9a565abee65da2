"""Every protege window on a real X server, under each MuJoCo GL backend, driven by real X input.

Each test starts the command as a person would (a display, no SDL driver override), finds its window
by title, grabs it, and checks that the camera views are lit and change when the scene changes; then
Esc closes it with exit status 0 and nothing on stderr but the command's own lines.
"""

from __future__ import annotations

import time

import pytest
from xwindow import GL_MODES, XWindow, changed, lit

from protege.datasets import Dataset

HUD = 96  # the shared Window's heads-up display below the views


def closes_cleanly(window: XWindow, key: str = "Escape") -> None:
    window.key(key)
    code, out, err = window.finish()
    assert code == 0, err
    assert "Traceback" not in err and "rror" not in err, err


@pytest.mark.parametrize("gl", GL_MODES)
def test_sim_view(xdisplay, gl):
    window = XWindow.launch(xdisplay, gl, ["sim", "view", "--task", "lift", "--expert", "--size", "160"],
                            "protege sim view")
    try:
        first = window.grab()
        views = first[:160]
        assert lit(views[:, :160]) and lit(views[:, 160:320]), "front and wrist views are dark"
        time.sleep(1.0)
        assert changed(views, window.grab()[:160]) > 1.0, "the expert moves the arm: the views must change"
        window.key("n")  # next seed: another scene
        assert changed(views, window.grab()[:160]) > 1.0
    except BaseException:
        window.kill()
        raise
    closes_cleanly(window)


@pytest.mark.parametrize("gl", GL_MODES)
def test_record_window(xdisplay, gl, tmp_path):
    out = str(tmp_path / "demos.zarr")
    window = XWindow.launch(xdisplay, gl, ["record", "--task", "lift", "--device", "keyboard", "--out", out,
                                           "--zoom", "2"], "protege record")
    try:
        views = window.grab()[:-HUD]
        assert lit(views[:, :256]) and lit(views[:, 256:512]), "front and wrist views are dark"
        window.key("Return")  # start recording
        window.key("r", hold=1.0)  # raise the arm
        assert changed(views, window.grab()[:-HUD]) > 1.0, "the arm moved: the views must change"
    except BaseException:
        window.kill()
        raise
    closes_cleanly(window)


@pytest.mark.parametrize("gl", GL_MODES)
def test_rollout_intervene_window(xdisplay, gl, mlp_run, tmp_path):
    window = XWindow.launch(xdisplay, gl, ["rollout", "--checkpoint", mlp_run, "--intervene", "keyboard", "--episodes",
                                           "1", "--record", str(tmp_path / "fixes.zarr")], "protege rollout")
    try:
        ready = window.grab()
        view = ready[:384, :384]  # the state-only policy's scene, shown through the window's own view
        assert lit(view), "a policy without cameras must still show the scene"
        time.sleep(0.5)
        assert changed(view, window.grab()[:384, :384]) < 0.5, "before the start key the policy must not move"
        window.key("Return")  # the ready gate: start the episode
        time.sleep(1.0)
        assert changed(view, window.grab()[:384, :384]) > 1.0, "the policy moves the arm: the view must change"
    except BaseException:
        window.kill()
        raise
    closes_cleanly(window)


@pytest.mark.parametrize("gl", GL_MODES)
def test_browse_window(xdisplay, gl, lift_demos):
    window = XWindow.launch(xdisplay, gl, ["browse", lift_demos], "protege browse")
    try:
        first = window.grab()
        cameras = first[10:394, 300:940]
        assert lit(cameras), "the camera view is dark"
        window.click(300 + 560, 557)  # the timeline, near the end of the episode
        assert changed(cameras, window.grab()[10:394, 300:940]) > 1.0, "scrubbing must change the frame shown"
    except BaseException:
        window.kill()
        raise
    closes_cleanly(window)


@pytest.mark.parametrize("gl", GL_MODES)
def test_replay_window_stays_on_the_last_frame(xdisplay, gl, lift_demos):
    ds = Dataset(lift_demos)
    seconds = ds.episode_ends[0] / ds.fps
    window = XWindow.launch(xdisplay, gl, ["replay", lift_demos, "--episode", "0", "--window"], "protege replay")
    try:
        view = (slice(0, 192), slice(0, 192))  # the 64 px front camera, three times larger
        assert lit(window.grab()[view]), "the replayed camera view is dark"
        time.sleep(seconds + 1.0)  # past the episode's end: the window must stay on its last frame
        assert window.process.poll() is None, "the replay window closed by itself"
        last = window.grab()[view]
        for _ in range(10):
            window.key("Left")  # step back through the episode
        assert changed(last, window.grab()[view]) > 0.5, "stepping back must show earlier frames"
    except BaseException:
        window.kill()
        raise
    closes_cleanly(window)
