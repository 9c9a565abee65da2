"""Without any display a window command fails at once, in one line (SDL would hang on an invisible window)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("args", [["sim", "view", "--frames", "5"], ["record", "--task", "lift", "--device", "keyboard", "--out", "x.zarr"]])
def test_a_window_without_a_display_is_one_line(tmp_path, args):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    result = subprocess.run([sys.executable, "-m", "protege.launch.cli", *args], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display (DISPLAY is not set)" in lines[0] and "xvfb-run" in lines[0], result.stderr
    assert not (tmp_path / "x.zarr").exists(), "nothing is written when the window cannot open"
