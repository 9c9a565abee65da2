"""Live intervention (HG-DAgger): a policy drives while a person watches; holding the take-over key
or button hands control to the person at once, letting go hands it back.

Every frame records who drove (``intervention`` = 1 where the person did) and the executed action.
The policy is asked every tick, also while the person drives, so a policy with history sees every
observation. What the policy proposed on the person's frames is not stored: every frame of a dataset
has the same keys, and these episodes are meant to be appended to datasets of demonstrations, which
have no policy. The hand-over is smooth: when the person takes over, the arm's command is re-anchored
at its measured pose (``env.hold_pose()``) and the device's gripper starts from the gripper command in
effect, so no input holds the arm still and a held object stays held.

Keys (from the device's bindings): hold take-over; start (``start_stop``, with ``wait``: each episode
waits for it, so the person is ready before the policy moves); pause (``pause`` or ``start_stop``: the
sim freezes, the window stays live); reset (discard the episode in progress, draw the next seed);
quit / Esc (abort: the episode in progress is discarded, saved ones stay); help (key map). With
``wait``, the window stays open on a summary after the last episode until Esc or start.

A policy that knows its doubt (an ensemble's spread, :attr:`PolicyPilot.doubt
<protege.teleop.runtime.pilots.PolicyPilot.doubt>`) shows it as a meter in the HUD. With
``request_help`` the policy asks for help (ThriftyDAgger): when its doubt passes that threshold the
sim pauses and the window says why, until the person takes over (the take-over input) or lets it go
on (pause); it asks again only after its doubt has fallen below the threshold.

Disturbances (:mod:`protege.sim.disturbances`, as ``protege rollout --disturb``) strike the scene on
the same seeded schedule as in headless evaluation; the HUD says what was struck, so the person can
practise taking over to recover and the recovery is recorded.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pygame

from protege.sim.disturbances import Disturbance, Disturber
from protege.teleop.devices import Command, Device
from protege.teleop.devices.base import TAKEOVER, TAKEOVER_ROW
from protege.teleop.devices.bindings import target_label
from protege.teleop.errors import TeleopError
from protege.teleop.runtime.gate import GateConfig
from protege.teleop.runtime.loop import ControlLoop, FrameSink
from protege.teleop.runtime.pilots import PolicyPilot
from protege.teleop.scripted_input import ScriptedInput
from protege.teleop.window import BLUE, GREEN, GREY, ORANGE, WHITE, YELLOW, Window, recent_rate

if TYPE_CHECKING:
    from protege.sim.env import ProtegeEnv

_KEY_MAP_LABELS = {
    TAKEOVER: TAKEOVER_ROW,
    Command.START_STOP: "start / pause",
    Command.RESET: "discard, next seed",
    Command.QUIT: "abort and quit",
}
_UNUSED_COMMANDS = {Command.SAVE, Command.DISCARD, Command.RERECORD}
_STRUCK = {"object_push": "the object was pushed", "arm_shove": "the arm was shoved"}


class TakeoverPilot:
    """A device as a pilot that drives only while its take-over input is held (kind ``human``).

    Put it before the policy's pilot: the arbiter then lets the person drive whenever they hold the
    input. Tell it each executed action (:meth:`executed`) so a take-over keeps the gripper as it is.
    """

    kind = "human"

    def __init__(self, device: Device, env: ProtegeEnv) -> None:
        device.enable_takeover()
        self.device = device
        self.env = env
        self.driving = False
        self.gripper_in_effect = 0.0

    def reset(self, seed: int | None = None) -> None:
        self.device.reset(seed)
        self.driving = False
        self.gripper_in_effect = 0.0  # episodes start with the gripper open

    def executed(self, action: np.ndarray) -> None:
        """The action the env just stepped with, whoever proposed it."""
        self.gripper_in_effect = float(action[-1])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray | None:
        if not self.device.taking_over:
            self.driving = False
            return None
        if not self.driving:  # the hand-over: hold the arm where it is, keep the gripper as it is
            self.env.hold_pose()
            self.device.gripper = self.gripper_in_effect
            self.driving = True
        return self.device.act(obs)


class Intervention:
    """The intervention window: ``policy`` drives ``env``, the person holds ``device``'s take-over input
    to drive instead; finished episodes go to ``writer``.

    Episode k of the session starts from the next unused seed (``seed``, ``seed + 1``, ...; a reset
    skips one). An episode ends when the env ends it, when success has held ``success_hold`` ticks,
    or at ``time_limit`` (seconds of episode time, 0: none; None: the task's limit). With ``wait``,
    each episode starts when the person presses start and the window ends on a summary. Run it with
    :meth:`run`; a :class:`ScriptedInput` replaces the person in tests and benchmarks.
    """

    def __init__(
        self,
        env: ProtegeEnv,
        policy: Any,
        device: Device,
        writer: FrameSink,
        seed: int = 0,
        realtime: bool = True,
        success_hold: int = 10,
        time_limit: float | None = None,
        wait: bool = False,
        disturb: tuple[Disturbance, ...] = (),
        request_help: float | None = None,
    ) -> None:
        if env.controller.name != "ee_delta":
            raise TeleopError(f"live intervention drives ee_delta actions; this env's action space is "
                              f"{env.controller.name!r}")
        if request_help is not None and not request_help > 0:
            raise TeleopError(f"--request-help takes a doubt threshold > 0, got {request_help:g}")
        self.env = env
        self.device = device
        self.writer = writer
        self.takeover = TakeoverPilot(device, env)
        self.policy = PolicyPilot(policy)
        self.request_help = request_help
        self.asking = False  # paused: the policy asked for help
        self._may_ask = True  # its doubt fell below the threshold since it last asked
        self.loop = ControlLoop(env, [self.takeover, self.policy], writer=writer, realtime=realtime,
                                success_hold=success_hold, time_limit=time_limit,
                                disturber=Disturber(disturb) if disturb else None)
        self.wait = wait
        self.waiting = wait  # for the person to start the episode
        self.episodes = 0  # to save in this run
        self.seed = seed
        self.results: list[dict[str, Any]] = []
        self.discarded = 0
        self.aborted = False
        self.paused = False
        self._paused_at = 0.0
        self.show_help = False
        self.running = False
        self.intervened = 0  # frames of the episode in progress the person drove
        self._late_at_start = 0
        self._takeover_name = device.key_for(TAKEOVER) or "take-over"
        self._start_name = device.key_for(Command.START_STOP) or "start"
        self.message = self._episode_prompt()
        self.window = Window(env, f"protege rollout: {env.task.name} on {env.robot.name}", what="rollout")
        self.loop.reset(seed)

    def screenshot(self, path: str | Path) -> None:
        self.window.screenshot(path)

    # -- running -------------------------------------------------------------------------------

    def run(self, episodes: int, max_ticks: int | None = None, script: ScriptedInput | None = None) -> dict[str, Any]:
        """Tick until ``episodes`` episodes are saved in all, the person aborts, or ``max_ticks`` (the
        episode in progress stays open for the next call); return what was saved and the loop timing."""
        self.running = True
        self.episodes = episodes
        clock = self.loop.clock
        clock.start()
        self._late_at_start = 0  # late ticks restart with the clock
        tick = 0
        while self.running and (max_ticks is None or tick < max_ticks):
            if script is not None:
                script.post(tick)
            self._handle_events()
            if self.asking and self.device.taking_over:  # the person answers by taking over
                self._resume(f"you drive: let go of {self._takeover_name} to hand back")
            if self.finished:
                if not self.wait:
                    break
            elif self.running and not (self.paused or self.waiting):
                self._step()
            self._draw()
            clock.tick()
            tick += 1
        return {
            "episodes": list(self.results),
            "saved": len(self.results),
            "discarded": self.discarded,
            "aborted": self.aborted,
            "intervened_frames": sum(r["intervened_frames"] for r in self.results),
            "frames": sum(r["ticks"] for r in self.results),
            "timing": clock.stats(),
        }

    @property
    def finished(self) -> bool:
        """Whether this run's episodes are all saved."""
        return len(self.results) >= self.episodes

    def close(self) -> None:
        """Drop the frames of an unfinished episode (an episode is never saved half-way)."""
        self.writer.discard_episode()
        self.window.close()

    def _episode_prompt(self) -> str:
        if self.waiting:
            return f"press {self._start_name} to start; hold {self._takeover_name} to take over"
        return f"the policy drives: hold {self._takeover_name} to take over"

    def _handle_events(self) -> None:
        for command in self.window.commands(self.device):
            self.command(command)

    def _step(self) -> None:
        was_driving = self.takeover.driving
        self.window.steer(self.device, self.env.action_space.high[:3])
        struck = len(self.loop.struck)
        step = self.loop.step()
        self.takeover.executed(step.action)
        if self.loop.pilots[step.driver] is self.takeover:
            self.intervened += 1
        if self.loop.pilots[step.driver] is self.policy:
            self._ask_for_help()
        if len(self.loop.struck) > struck:
            what = self.loop.struck[-1]
            self.message = (f"{_STRUCK[what.name]} {100 * what.magnitude:g} cm"
                            + ("" if self.takeover.driving else f"; hold {self._takeover_name} to recover"))
        elif self.takeover.driving != was_driving:
            self.message = (f"you drive: let go of {self._takeover_name} to hand back" if self.takeover.driving
                            else f"the policy drives again: hold {self._takeover_name} to take over")
        if self.loop.ended:
            self._save()

    def _ask_for_help(self) -> None:
        """With ``request_help``: pause and ask the person when the policy's doubt passes the threshold."""
        doubt = self.policy.doubt
        if self.request_help is None or doubt is None:
            return
        if doubt <= self.request_help:
            self._may_ask = True
        elif self._may_ask and not self.loop.ended:
            self.asking, self._may_ask = True, False
            self._pause()
            self.message = (f"the policy asks for help (doubt {doubt:.3f} > {self.request_help:g}): hold "
                            f"{self._takeover_name} to take over, {self.device.key_for(Command.PAUSE) or 'pause'} "
                            "lets it go on")

    def _pause(self) -> None:
        self.paused, self._paused_at = True, time.perf_counter()

    def _resume(self, message: str) -> None:
        """End a pause; the pause is not part of the episode's timestamps."""
        self.paused = self.asking = False
        self.loop.skip_time(time.perf_counter() - self._paused_at)
        self.message = message

    # -- episodes ------------------------------------------------------------------------------

    def command(self, command: Command) -> None:
        """Apply one command from the device."""
        if self.finished and command in (Command.START_STOP, Command.QUIT):
            self.running = False
        elif self.waiting and command is Command.START_STOP:
            self.waiting = False
            self.message = self._episode_prompt()
        elif command in (Command.PAUSE, Command.START_STOP):
            if self.paused:
                self._resume("running")
            else:
                self._pause()
                self.message = f"paused: the sim is frozen; {self.device.key_for(Command.PAUSE) or 'pause'} goes on"
        elif command is Command.RESET:
            self._drop()
            self._new_episode()
            self.message = f"discarded; next seed {self.seed}" + (f"; {self._episode_prompt()}" if self.wait else "")
        elif command is Command.QUIT:
            self._drop()
            self.aborted = True
            self.running = False
            self.message = "aborted"
        elif command is Command.HELP:
            self.show_help = not self.show_help
        elif command in _UNUSED_COMMANDS:
            self.message = f"{command.value}: not used while intervening (episodes save when they end)"

    def _save(self) -> None:
        loop = self.loop
        late = loop.clock.late - self._late_at_start
        index = loop.save(late_ticks=late)
        self.results.append({
            "index": index,
            "seed": loop.seed,
            "ticks": loop.ticks,
            "success": loop.success,
            "source": loop.source.name.lower(),
            "intervened_frames": self.intervened,
            "strikes": len(loop.struck),
            "late_ticks": late,
        })
        lost = loop.info.get("object_lost")
        outcome = "success" if loop.success else "the object left the table" if lost else "no success"
        self.message = (f"saved episode {index} ({outcome}, "
                        f"{self.intervened}/{loop.ticks} frames by you)")
        if self.finished:
            successes = sum(r["success"] for r in self.results)
            self.message = (f"done: {len(self.results)} saved, {successes} successful, you drove "
                            f"{sum(r['intervened_frames'] for r in self.results)}/"
                            f"{sum(r['ticks'] for r in self.results)} frames; {self._start_name} or Esc closes")
        else:
            self._new_episode()
            if self.wait:
                self.message += f"; {self._episode_prompt()}"

    def _drop(self) -> None:
        """Discard the frames of the episode in progress."""
        if self.loop.ticks:
            self.discarded += 1
        self.writer.discard_episode()

    def _new_episode(self) -> None:
        self.seed += 1
        self.loop.reset(self.seed)
        self.intervened = 0
        self.waiting = self.wait
        self._late_at_start = self.loop.clock.late

    # -- drawing -------------------------------------------------------------------------------

    def key_map(self) -> list[tuple[str, str]]:
        """The device's key map as it works here: relabelled, without the recorder-only commands."""
        return [(name, _KEY_MAP_LABELS.get(target) or target_label(target)) for name, target in self.device.inputs()
                if target not in _UNUSED_COMMANDS]

    def _doubt_meter(self) -> list[tuple[str, tuple[int, int, int]]]:
        """The policy's doubt as a ten-cell meter scaled to twice the help threshold (or the doubt gate's
        default), coloured by how near it is to asking; nothing for a policy without doubt."""
        doubt = self.policy.doubt
        if doubt is None:
            return []
        threshold = self.request_help or GateConfig.doubt
        cells = min(10, round(10 * doubt / (2 * threshold)))
        near = doubt > threshold
        colour = ORANGE if near else YELLOW if cells >= 3 else GREY
        return [(f"doubt [{'#' * cells}{'.' * (10 - cells)}] {doubt:.3f}", colour)]

    def _draw(self) -> None:
        window, loop, clock = self.window, self.loop, self.loop.clock
        human = self.device.taking_over
        window.draw_views(loop.obs, border=ORANGE if human else None)
        x = window.badge(0, "HUMAN" if human else "POLICY", ORANGE if human else BLUE)
        if self.finished:
            x = window.badge(0, "DONE", GREEN, x)
        elif self.asking:
            x = window.badge(0, "HELP?", ORANGE, x)
        elif self.paused or self.waiting:
            x = window.badge(0, "PAUSED" if self.paused else "READY?", YELLOW, x)
        success = bool(loop.info.get("success", False))
        held = f" {loop.success_ticks}/{loop.success_hold}" if success and loop.success_hold else ""
        window.line(0, [
            (f"episode {min(len(self.results) + 1, self.episodes)} of {self.episodes}", WHITE),
            (f"seed {loop.seed}", WHITE),
            (f"tick {loop.ticks}", WHITE),
            ("no time limit" if loop.time_left is None else f"{loop.time_left:5.1f} s left", WHITE),
            (f"success {'yes' if success else 'no'}{held}", GREEN if success else GREY),
            (f"{recent_rate(clock):4.1f}/{clock.rate_hz:g} Hz  late {clock.late}", YELLOW if clock.late else WHITE),
        ], x)
        closed = (self.device.gripper if human else self.takeover.gripper_in_effect) >= 0.5
        x = window.badge(1, "GRIPPER CLOSED" if closed else "GRIPPER OPEN", BLUE if closed else GREY)
        counts = (f"you drove {self.intervened}/{loop.ticks} frames   saved {len(self.results)}   "
                  f"discarded {self.discarded}")
        window.line(1, [*self._doubt_meter(), (self.device.status(), WHITE), (counts, GREY)], x)
        window.footer(self.message, self.device.key_for(Command.HELP),
                      self.key_map() if self.show_help else None)
        window.flip()


def run_intervention(
    env: ProtegeEnv,
    policy: Any,
    device: Device,
    writer: FrameSink,
    episodes: int,
    seed: int,
    realtime: bool = True,
    script: ScriptedInput | None = None,
    success_hold: int = 10,
    time_limit: float | None = None,
    max_ticks: int | None = None,
    wait: bool = False,
    disturb: tuple[Disturbance, ...] = (),
    request_help: float | None = None,
) -> dict[str, Any]:
    """Run ``policy`` on ``env`` with a person ready to take over through ``device``, until ``episodes``
    episodes are saved to ``writer`` (source ``intervention`` where the person drove any frame, else
    ``policy``), the person aborts, or ``max_ticks`` loop ticks pass; an unfinished episode is dropped.
    With ``wait`` each episode starts on the person's start input and the window ends on a summary.
    ``disturb`` strikes each episode on its seeded schedule. ``request_help`` (a doubt threshold) lets
    the policy pause and ask the person to take over (:class:`Intervention`).

    Returns ``episodes`` (per saved episode: index, seed, ticks, success, source, intervened_frames,
    strikes, late_ticks), ``saved``, ``discarded``, ``aborted``, ``intervened_frames``, ``frames`` and the loop
    ``timing`` (ticks, late_ticks, achieved_hz, tick and period percentiles in ms).
    """
    if episodes < 1:
        raise TeleopError(f"episodes must be at least 1, got {episodes}")
    pygame.event.clear()
    session = Intervention(env, policy, device, writer, seed=seed, realtime=realtime,
                           success_hold=success_hold, time_limit=time_limit, wait=wait, disturb=disturb,
                           request_help=request_help)
    try:
        return session.run(episodes, max_ticks=max_ticks, script=script)
    finally:
        session.close()
