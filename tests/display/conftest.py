"""The real-display tier: each test drives a protege command's window on an Xvfb server with X input.

Skipped, with the reason, only where Xvfb, xdotool or ImageMagick's ``import`` is missing or Xvfb
cannot start (``.ci/run`` installs all three).
"""

from __future__ import annotations

import shutil

import pytest
from helpers import train_tiny_mlp
from xwindow import TOOLS

from protege.teleop.display import virtual_display
from protege.teleop.errors import TeleopError


@pytest.fixture(scope="session")
def xdisplay():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"real-display tests need {', '.join(missing)} (apt-get install xvfb xdotool imagemagick)")
    try:
        with virtual_display() as name:
            yield name
    except TeleopError as exc:
        pytest.skip(f"Xvfb cannot start here: {exc}")


@pytest.fixture(scope="session")
def lift_demos(tmp_path_factory):
    """Two scripted lift episodes with the front camera (64 px): for browse and replay."""
    from protege.launch import cli

    path = str(tmp_path_factory.mktemp("display") / "demos.zarr")
    assert cli.main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "2", "--cameras", "front",
                     "--image-size", "64", "--out", path, "--no-progress"]) == 0
    return path


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory):
    """A tiny state-only mlp cloned from 4 scripted lift demos: for rollout --intervene."""
    return str(train_tiny_mlp(tmp_path_factory.mktemp("display-run")))
