"""Headless defaults for every test: pygame's dummy video/audio drivers; sim picks EGL/OSMesa itself."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import protege.sim  # noqa: E402,F401  (chooses the GL backend before anything imports mujoco)


@pytest.fixture(scope="session")
def copy_arm():
    """``copy_arm(folder, name="protege_arm", mjcf_edit=None)``: a copy of the built-in arm's spec file
    and MJCF in ``folder`` under ``name`` (the same arm, the same hash for the same name), or another
    arm if ``mjcf_edit`` rewrites the MJCF text; returns the spec file's path."""
    from protege.sim.robot import builtin_spec_path

    def copy(folder: Path, name: str = "protege_arm", mjcf_edit=None) -> Path:
        source = builtin_spec_path("protege_arm")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / source.name).write_text(source.read_text().replace("name: protege_arm", f"name: {name}"))
        mjcf = source.with_suffix(".xml").read_text()
        (folder / "protege_arm.xml").write_text(mjcf_edit(mjcf) if mjcf_edit else mjcf)
        return folder / source.name

    return copy
