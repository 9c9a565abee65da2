"""The main view under the mouse on a real X server: orbit, pan, zoom, snap, and Ctrl-drag of the gripper."""

from __future__ import annotations

import time

from xwindow import XWindow, changed

MAIN = (slice(0, 720), slice(0, 960))


def drag(window: XWindow, start: tuple[int, int], end: tuple[int, int], button: int = 1, ctrl: bool = False) -> None:
    """Press ``button`` at ``start``, move to ``end`` in steps, release (holding Ctrl if asked)."""
    window.xdotool("mousemove", "--window", window.wid, *map(str, start))
    if ctrl:
        window.xdotool("keydown", "Control_L")
        time.sleep(0.2)  # as a person does: Ctrl is down a tick or more before the button
    window.xdotool("mousedown", str(button))
    for i in range(1, 11):
        x = start[0] + (end[0] - start[0]) * i // 10
        y = start[1] + (end[1] - start[1]) * i // 10
        window.xdotool("mousemove", "--window", window.wid, str(x), str(y))
        time.sleep(0.03)
    window.xdotool("mouseup", str(button))
    if ctrl:
        window.xdotool("keyup", "Control_L")
    time.sleep(0.5)


def test_mouse_moves_the_view_and_ctrl_drag_moves_the_gripper(xdisplay):
    with XWindow.launch(xdisplay, "unset", ["sim", "view", "--task", "lift"], "protege sim view") as window:
        still = window.grab()[MAIN]
        time.sleep(0.5)
        # below 1: on a busy machine the view may change resolution (main_view.RENDER_SCALES) meanwhile
        assert changed(still, window.grab()[MAIN]) < 1.0, "nothing moves in a still scene"
        steps = []
        for start, end, button in (((480, 360), (600, 330), 1), ((480, 360), (400, 420), 3)):  # orbit, pan
            before = window.grab()[MAIN]
            drag(window, start, end, button)
            steps.append(changed(before, window.grab()[MAIN]))
        before = window.grab()[MAIN]
        window.xdotool("click", "--repeat", "3", "4")  # wheel up: zoom in
        time.sleep(0.4)
        steps.append(changed(before, window.grab()[MAIN]))
        assert min(steps) > 2.0, f"orbit, pan and zoom must each change the view: {steps}"

        window.key("0")  # reset the view
        home = window.grab()[MAIN]
        window.key("1")  # snap to the front camera
        assert changed(home, window.grab()[MAIN]) > 2.0
        window.key("0")
        assert changed(home, window.grab()[MAIN]) < 1.0, "0 brings back the same view"

        drag(window, (480, 300), (480, 200), button=3, ctrl=True)  # Ctrl+right-drag up: raise the gripper
        time.sleep(1.0)
        assert changed(home, window.grab()[MAIN]) > 1.0, "Ctrl-drag must move the gripper"
    window.key("Escape")
    code, _, err = window.finish()
    assert code == 0, err
