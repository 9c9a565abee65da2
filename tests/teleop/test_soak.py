"""Soak of the recorder loop: scripted takes with two 128x128 cameras, saved as episodes, in real time.

Resident memory (from /proc/self/statm) may grow less than 5% from the end of the warm-up (the first
fifth of the run) to the end, and at least 99% of the ticks must be on time. The run lasts
``PROTEGE_SOAK_MINUTES`` (default 20); SDL's dummy video driver stands in for the display.
"""

from __future__ import annotations

import os
import time

import pytest

from protege.datasets import Dataset, EpisodeWriter
from protege.sim import EnvSpec, ProtegeEnv
from protege.teleop.devices import KeyboardDevice
from protege.teleop.recorder import Recorder
from protege.teleop.scripted_input import ScriptedInput

MINUTES = float(os.environ.get("PROTEGE_SOAK_MINUTES", "20"))
TAKE_TICKS = 40  # start, drive for 30 ticks, stop and save: one episode per take


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def take() -> ScriptedInput:
    return ScriptedInput().key(0, "return").key(1, "w", hold=10).key(12, "d", hold=10).key(24, "s", hold=8).key(
        34, "return").key(36, "y")


@pytest.mark.slow
def test_recorder_soak_keeps_memory_flat_and_ticks_on_time(tmp_path, bindings):
    env = ProtegeEnv(EnvSpec.make(task="lift", cameras=("front", "wrist"), image_size=128), terminate_on_success=False)
    writer = EpisodeWriter(tmp_path / "soak.zarr", attrs=env.env_spec.to_attrs(), background=True)  # as `record`
    recorder = Recorder(env, KeyboardDevice(bindings.keyboard, env.action_space.high[:6]), writer, success_hold=0)
    duration = MINUTES * 60.0
    start = time.monotonic()
    warm_rss = None
    ticks = late = 0
    try:
        while time.monotonic() - start < duration:
            timing = recorder.run(max_ticks=TAKE_TICKS, script=take())["timing"]
            ticks, late = ticks + timing["ticks"], late + timing["late_ticks"]
            if warm_rss is None and time.monotonic() - start >= duration / 5:
                warm_rss = resident_bytes()
        end_rss = resident_bytes()
        writer.flush()
        episodes = Dataset(writer.path).num_episodes
    finally:
        writer.close()
        env.close()
    growth = end_rss / warm_rss - 1.0
    on_time = 1.0 - late / ticks
    print(f"\nsoak {MINUTES:g} min: {ticks} ticks, {on_time:.2%} on time, {episodes} episodes, "
          f"RSS {warm_rss / 2**20:.1f} MiB after warm-up -> {end_rss / 2**20:.1f} MiB ({growth:+.2%})")
    assert episodes >= ticks // TAKE_TICKS - 1
    assert growth < 0.05, f"resident memory grew {growth:.2%} after warm-up"
    assert on_time >= 0.99, f"only {on_time:.2%} of {ticks} ticks on time"
