"""Without any display a window command fails at once, in one line (SDL would hang on an invisible window)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("args", [["sim", "view", "--frames", "5"],
                                  ["record", "--task", "lift", "--device", "keyboard", "--out", "x.zarr"]])
def test_a_window_without_a_display_is_one_line(tmp_path, args):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    result = subprocess.run([sys.executable, "-m", "protege.launch.cli", *args], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display (DISPLAY is not set)" in lines[0] and "xvfb-run" in lines[0], result.stderr
    assert not (tmp_path / "x.zarr").exists(), "nothing is written when the window cannot open"


@pytest.mark.parametrize("args", [["sim", "view", "--frames", "5"],
                                  ["record", "--task", "lift", "--device", "keyboard", "--out", "x.zarr"],
                                  ["browse", "missing.zarr"]])
def test_a_display_nobody_answers_on_is_one_line_not_an_invisible_window(tmp_path, args):
    number = next(n for n in range(4321, 4400) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    env.update(DISPLAY=f":{number}", MUJOCO_GL="egl")
    result = subprocess.run([sys.executable, "-m", "protege.launch.cli", *args], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)  # SDL's offscreen fallback would run forever
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # above it at most the Wayland client library's own note
    assert f"no display server answers on DISPLAY=:{number}" in last, result.stderr
    assert not (tmp_path / "x.zarr").exists(), "nothing is written when the window cannot open"
