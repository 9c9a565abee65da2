"""The browser's main view on a real X server: a dataset recorded without cameras shows the scene while
scrubbing, and the arm moves in it when the person corrects with the keyboard; the HUD fits the window."""

from __future__ import annotations

import pytest
from xwindow import XWindow, changed, lit

from protege.teleop.browser_view import HUD_HEIGHT, LIST_WIDTH, MARGIN
from protege.teleop.window import BACKGROUND

VIEW = (slice(30, 400), slice(LIST_WIDTH + 20, LIST_WIDTH + 600))  # inside the main view at any desktop size


@pytest.fixture(scope="module")
def lift_without_cameras(tmp_path_factory):
    """One scripted lift episode without cameras, as the quickstart records them."""
    from protege.launch import cli

    path = str(tmp_path_factory.mktemp("browse-scene") / "demos.zarr")
    assert cli.main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "1", "--cameras", "",
                     "--out", path, "--no-progress"]) == 0
    return path


def test_browser_shows_the_scene_and_the_correction_moves_it(xdisplay, lift_without_cameras):
    with XWindow.launch(xdisplay, "unset", ["browse", lift_without_cameras], "protege browse") as window:
        first = window.grab()
        assert lit(first[VIEW]), "a dataset without cameras must still show the scene"
        window.key("End")  # scrub to the last frame: the cube has been lifted
        last = window.grab()
        assert changed(first[VIEW], last[VIEW]) > 1.0, "scrubbing must show each frame's recorded state"
        window.key("c")  # correct from here with the keyboard
        window.key("r", hold=1.0)  # raise the arm
        driven = window.grab()
        assert changed(last[VIEW], driven[VIEW]) > 1.0, "driving must move the arm in the main view"
        hud = driven[-HUD_HEIGHT:, -MARGIN:]
        assert (hud == BACKGROUND).all(), "the status lines must end inside the window"
        window.key("Escape")  # discard the correction
        window.key("Escape")  # quit
        code, out, err = window.finish()
    assert code == 0, err
    assert "saved 0 correction(s)" in out
