"""Teleop benchmarks: `protege bench record` (how well the recorder holds its rate, and scripted
collection throughput), `protege bench intervene` (the take-over window's rate) and `protege bench
replay` (replay and relook throughput, the browser's drawing time).

The recorder and the take-over window run 200 ticks at 20 Hz on the built-in arm with two 128x128
cameras (front, wrist) and the 960x720 main view, in a real X window (``DISPLAY``, else a fresh Xvfb
server), driven by scripted key presses; the recorder saves an episode mid-run so the background save
overlaps the next take. Collection runs the lift expert with 1 and 2 workers.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from protege.sim.spec import EnvSpec

RECORD_TICKS = 200
COLLECT_EPISODES = 48


def _script() -> Any:
    from protege.teleop.scripted_input import ScriptedInput

    script = ScriptedInput().key(2, "return")
    script.key(4, "w", hold=25).key(10, "r", hold=15).key(30, "space").key(35, "d", hold=20).key(60, "q", hold=10)
    script.key(80, "y")  # save: committed in the background while the next take records
    script.key(82, "return").key(84, "s", hold=30).key(90, "f", hold=20).key(120, "space").key(130, "a", hold=30)
    return script.key(185, "y")


def bench_recorder(directory: Path) -> dict[str, Any]:
    import protege.sim  # noqa: F401
    from protege.datasets import EpisodeWriter
    from protege.sim import EnvSpec, ProtegeEnv
    from protege.teleop.devices import KeyboardDevice, load_bindings
    from protege.teleop.display import display_for_bench
    from protege.teleop.recorder import Recorder

    spec = EnvSpec.make(task="lift", cameras=("front", "wrist"), image_size=128)
    env = ProtegeEnv(spec, terminate_on_success=False)
    with display_for_bench() as display:
        device = KeyboardDevice(load_bindings().keyboard, env.action_space.high[:6])
        with EpisodeWriter(directory / "record.zarr", attrs=env.env_spec.to_attrs(), background=True) as writer:
            recorder = Recorder(env, device, writer, success_hold=0)
            result = recorder.run(max_ticks=RECORD_TICKS, script=_script())
        recorder.window.close()
    env.close()
    return {**result["timing"], "episodes_saved": len(result["saved"]), "display": display}


def bench_collect(directory: Path, workers: int, ray: str | None = None) -> dict[str, Any]:
    from protege.sim import EnvSpec
    from protege.teleop.runtime.collect import collect

    result = collect(EnvSpec.make("lift", cameras=("front", "wrist")), str(directory / f"collect{workers}{ray}.zarr"),
                     COLLECT_EPISODES, noise=0.2, workers=workers, progress=False, ray=ray)
    figures = ("episodes", "workers", "seconds", "episodes_per_min", "success_rate", "frames")
    return {**{k: result[k] for k in figures}, "ray": ray}


def run_bench(json: bool, ray: str | None = None) -> dict[str, Any]:
    """Recorder loop timing at 20 Hz and collection episodes/min with 1 and 2 workers (and with ``ray``,
    2 Ray actors)."""
    with tempfile.TemporaryDirectory(prefix="protege-bench-record-") as tmp:
        directory = Path(tmp)
        record = bench_recorder(directory)
        if not json:
            tick, period = record["tick_ms"], record["period_ms"]
            print(f"recorder window on {record['display']}: {record['ticks']} ticks at {record['target_hz']:g} Hz, "
                  f"achieved {record['achieved_hz']} Hz, late {record['late_ticks']} "
                  f"({100 * record['on_time']:.1f}% on time); tick work ms p50 {tick['p50']} "
                  f"p90 {tick['p90']} p99 {tick['p99']} max {tick['max']}; "
                  f"period ms p99 {period['p99']} max {period['max']}",
                  flush=True)
        runs = ((1, None), (2, None), *(((2, ray),) if ray else ()))
        collect = [bench_collect(directory, workers, on) for workers, on in runs]
        if not json:
            for c in collect:
                who = f"{c['workers']} Ray actor(s) at {c['ray']}" if c["ray"] else f"{c['workers']} worker(s)"
                print(f"scripted collection: {c['episodes']} lift episodes, {who}: {c['seconds']} s, "
                      f"{c['episodes_per_min']} episodes/min (success {c['success_rate']:.0%}, {c['frames']} frames)",
                      flush=True)
    return {"record": record, "collect": collect, "cpus": os.cpu_count()}


def bench_replay(episodes: int = 2, browser_frames: int = 120) -> dict[str, Any]:
    """Replay throughput (frames/s, states and actions mode, lift without cameras), ``dataset relook``'s frames
    rendered per second (two 128x128 cameras, two looks) beside scripted collection's on the same episodes, and
    the browser's drawing time per displayed frame (SDL dummy driver)."""
    from protege.datasets import Dataset
    from protege.sim import EnvSpec
    from protege.sim.disturbances import parse_disturbances
    from protege.teleop.relook import relook
    from protege.teleop.replay import MODES, make_replay_env, replay_episode
    from protege.teleop.runtime.collect import collect

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.zarr")
        collected = collect(EnvSpec.make("lift", cameras=("front", "wrist")), path, episodes, noise=0.2,
                            progress=False)
        started = time.perf_counter()
        relooked = relook(path, str(Path(tmp) / "relooked.zarr"), 2, parse_disturbances("visual"), progress=False)
        ds = Dataset(path)
        env = make_replay_env(ds.attrs, cameras=())
        result: dict[str, Any] = {
            "episode_frames": int(ds.episode_ends[0]),
            "collect_frames_per_s": round(collected["frames"] / collected["seconds"], 1),
            "relook_frames_per_s": round(relooked["frames"] / (time.perf_counter() - started), 1),
        }
        for mode in MODES:
            replayed = replay_episode(ds, 0, mode, env=env)
            result[f"replay_{mode}_frames_per_s"] = round(replayed.frames / replayed.seconds, 1)
            result[f"replay_{mode}_max_deviation"] = replayed.max_deviation
        env.close()
        result.update(bench_browser(ds, browser_frames))
    return result


def bench_browser(ds: Any, frames: int = 120) -> dict[str, Any]:
    """Milliseconds to draw one browser frame (list, cameras, plot, timeline, HUD) while playing
    through an episode, offscreen; the first frame (which renders the static plot) is timed apart."""
    import pygame

    from protege.teleop.browser import BrowserModel
    from protege.teleop.browser_view import BrowserView

    model = BrowserModel(ds.path)
    pygame.font.init()
    view = BrowserView(model, pygame.Surface(BrowserView.window_size(model)))
    started = time.perf_counter()
    view.draw()
    first = time.perf_counter() - started
    times = []
    for i in range(frames):
        model.scrub(i % model.length)
        started = time.perf_counter()
        view.draw()
        times.append(time.perf_counter() - started)
    return {"browser_frame_ms": round(1e3 * float(np.median(times)), 2),
            "browser_frame_mean_ms": round(1e3 * float(np.mean(times)), 2),
            "browser_frame_p90_ms": round(1e3 * float(np.percentile(times, 90)), 2),
            "browser_first_frame_ms": round(1e3 * first, 2),
            "browser_cameras": len(model.cameras)}


def _intervention_script() -> Any:
    """Two take-overs with motion and a gripper toggle, the policy driving in between."""
    from protege.teleop.scripted_input import ScriptedInput

    script = ScriptedInput().key(30, "left shift", hold=50).key(35, "w", hold=20).key(50, "r", hold=15)
    script.key(60, "space").key(65, "d", hold=10)
    return script.key(120, "left shift", hold=40).key(125, "s", hold=25).key(140, "space")


def bench_intervention(policy: Any = None, spec: EnvSpec | None = None, ticks: int = RECORD_TICKS) -> dict[str, Any]:
    """Loop timing of a realtime intervention run: ``spec`` (default: lift on the built-in arm, two 128x128
    cameras, 20 Hz), the keyboard in a real X window (``DISPLAY``, else a fresh Xvfb server), frames written in
    the background. ``policy`` defaults to the scripted expert (pass a trained policy to include its
    inference)."""
    import protege.sim  # noqa: F401  (headless GL before mujoco)
    from protege.datasets import EpisodeWriter
    from protege.sim import EnvSpec, ProtegeEnv
    from protege.sim.experts import make_expert
    from protege.teleop.devices import KeyboardDevice, load_bindings
    from protege.teleop.display import display_for_bench
    from protege.teleop.intervene import run_intervention

    spec = spec or EnvSpec.make(task="lift", cameras=("front", "wrist"), image_size=128)
    env = ProtegeEnv(spec, terminate_on_success=False)
    try:
        with display_for_bench() as display, tempfile.TemporaryDirectory(prefix="protege-bench-intervene-") as tmp:
            device = KeyboardDevice(load_bindings().keyboard, env.action_space.high[:6])
            with EpisodeWriter(Path(tmp) / "intervene.zarr", attrs=env.env_spec.to_attrs(), background=True) as writer:
                result = run_intervention(env, policy or make_expert(env), device, writer, episodes=1_000, seed=0,
                                          script=_intervention_script(), success_hold=0, max_ticks=ticks)
    finally:
        env.close()
    return {**result["timing"], "task": spec.task, "cameras": len(spec.cameras), "image_size": spec.image_size[0],
            "display": display}
