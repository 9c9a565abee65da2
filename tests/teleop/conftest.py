"""Teleop tests run headless: SDL's dummy video and audio drivers, set before pygame loads."""

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import pygame  # noqa: E402
import pytest  # noqa: E402

import protege.sim  # noqa: E402,F401  (headless GL before mujoco)
from protege.datasets import EpisodeWriter  # noqa: E402
from protege.sim import EnvSpec, ProtegeEnv  # noqa: E402
from protege.teleop.devices import KeyboardDevice, load_bindings  # noqa: E402
from protege.teleop.recorder import Recorder  # noqa: E402


@pytest.fixture(scope="session")
def bindings():
    pygame.init()
    return load_bindings()


@pytest.fixture
def env():
    """Lift on the built-in arm, no cameras (fast), success never ends the episode by itself."""
    env = ProtegeEnv(EnvSpec.make(task="lift", cameras=()), terminate_on_success=False)
    yield env
    env.close()


@pytest.fixture
def make_recorder(tmp_path, bindings):
    """(env, device) -> (recorder, writer) on tmp_path/demos.zarr, as fast as possible."""
    writers = []

    def make(env, device=None, **kwargs):
        device = device or KeyboardDevice(bindings.keyboard, env.action_space.high[:6])
        writer = EpisodeWriter(tmp_path / "demos.zarr", attrs=env.env_spec.to_attrs())
        writers.append(writer)
        pygame.event.clear()
        return Recorder(env, device, writer, realtime=False, **kwargs), writer

    yield make
    for writer in writers:
        writer.close()
