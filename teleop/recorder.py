"""The recorder a person uses to collect demonstrations: camera views, a heads-up display, episode keys.

Episode states: idle (scene reset, arm still) -> recording (every tick is a frame) -> stopped
(frozen on the last frame, waiting for save or discard). Save keeps the take and draws a new scene;
discard drops it and keeps the scene; re-record drops it and records the same scene again at once;
reset draws a new scene; pause freezes a recording (the pause is left out of the timestamps). When
the task's success has held ``success_hold`` ticks, or the time limit is up, the take stops for
review with its outcome shown (with ``auto_save``, a success is saved at once instead).
"""

from __future__ import annotations

import enum
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protege.datasets import EpisodeWriter
from protege.teleop.devices import Command, Device
from protege.teleop.runtime.loop import ControlLoop
from protege.teleop.scripted_input import ScriptedInput
from protege.teleop.window import BLUE, GREEN, GREY, RED, WHITE, YELLOW, Window, recent_rate

if TYPE_CHECKING:
    from protege.sim.env import ProtegeEnv


class Phase(enum.Enum):
    IDLE = "idle"
    RECORDING = "recording"
    STOPPED = "stopped"


class Recorder:
    """Teleoperate ``env`` with ``device`` and save takes to ``writer``, in a pygame window.

    ``seed`` is the first scene's seed; each new scene takes the next one. ``time_limit`` is the
    person's limit per take in seconds (0: none; None: the task's). Run it with :meth:`run`; a
    :class:`ScriptedInput` replaces the person in tests and benchmarks.
    """

    def __init__(
        self,
        env: ProtegeEnv,
        device: Device,
        writer: EpisodeWriter,
        seed: int = 0,
        success_hold: int = 10,
        rate_hz: float | None = None,
        realtime: bool = True,
        time_limit: float | None = None,
        auto_save: bool = False,
    ) -> None:
        self.env = env
        self.device = device
        self.writer = writer
        self.loop = ControlLoop(env, [device], writer=writer, rate_hz=rate_hz, realtime=realtime,
                                success_hold=success_hold, time_limit=time_limit)
        self.auto_save = auto_save
        self.phase = Phase.IDLE
        self.paused = False
        self._paused_at = 0.0
        self.outcome = ""  # why the take stopped, shown while it waits for a decision
        self.seed = seed
        self.saved: list[int] = []
        self.discarded = 0
        self.message = self._prompt_start()
        self.show_help = False
        self.running = False
        self._late_at_start = 0
        self.window = Window(env, f"protege record: {env.task.name} on {env.robot.name}", what="record")
        self.loop.reset(self.seed)

    def screenshot(self, path: str | Path) -> None:
        self.window.screenshot(path)

    # -- running -------------------------------------------------------------------------------

    def run(self, max_ticks: int | None = None, script: ScriptedInput | None = None) -> dict[str, Any]:
        """Tick until quit (or ``max_ticks``, leaving any take open for the next call); return the
        episodes saved so far and how well the rate held in this call."""
        self.running = True
        clock = self.loop.clock
        clock.start()
        tick = 0
        while self.running and (max_ticks is None or tick < max_ticks):
            if script is not None:
                script.post(tick)
            self._handle_events()
            if self.phase is Phase.RECORDING and not self.paused:
                self._record_tick()
            self._draw()
            clock.tick()
            tick += 1
        return {"saved": list(self.saved), "discarded": self.discarded, "timing": clock.stats()}

    def _handle_events(self) -> None:
        for command in self.window.commands(self.device):
            self.command(command)

    def key(self, command: Command) -> str:
        """The name of the input that gives ``command`` (the command's name if none does)."""
        return self.device.key_for(command) or command.value

    def _prompt_start(self) -> str:
        return f"press {self.key(Command.START_STOP)} to record"

    def _stop(self, outcome: str) -> None:
        """Freeze the take on its last frame and ask what to do with it."""
        self.phase = Phase.STOPPED
        self.paused = False
        self.outcome = outcome
        self.message = (f"{outcome}: {self.key(Command.SAVE)} save, {self.key(Command.DISCARD)} discard, "
                        f"{self.key(Command.RERECORD)} re-record")

    def _record_tick(self) -> None:
        self.window.steer(self.device, self.env.action_space.high[:3])
        self.loop.step()
        if not self.loop.ended:
            return
        if self.loop.success and self.auto_save:
            self._save("success held")
        else:
            self._stop("success held" if self.loop.success
                       else "the object left the table" if self.loop.info.get("object_lost") else "time is up")

    # -- episode state machine ----------------------------------------------------------------

    def command(self, command: Command) -> None:
        """Apply one episode command to the state machine."""
        if command is Command.START_STOP:
            if self.phase is Phase.IDLE:
                self._start()
            elif self.phase is Phase.RECORDING:
                self._stop("stopped")
        elif command is Command.SAVE:
            if self.phase is Phase.IDLE or self.loop.ticks == 0:
                self.message = "nothing recorded to save"
            else:
                self._save("saved")
        elif command is Command.DISCARD:
            self._drop("discarded", new_scene=False)
        elif command is Command.RERECORD:
            self._drop("re-recording", new_scene=False)
            self._start()
        elif command is Command.RESET:
            self._drop("new scene", new_scene=True)
        elif command is Command.QUIT:
            self._drop("quit", new_scene=False)
            self.running = False
        elif command is Command.PAUSE:
            self._toggle_pause()
        elif command is Command.HELP:
            self.show_help = not self.show_help

    def _toggle_pause(self) -> None:
        """Freeze a recording or let it run on; the pause is left out of the take's timestamps."""
        if self.phase is not Phase.RECORDING:
            self.message = f"nothing to pause; {self._prompt_start()}" if self.phase is Phase.IDLE else self.message
            return
        self.paused = not self.paused
        if self.paused:
            self._paused_at = time.perf_counter()
            self.message = f"paused: {self.key(Command.PAUSE)} goes on"
        else:
            self.loop.skip_time(time.perf_counter() - self._paused_at)
            self.message = "recording"

    def _start(self) -> None:
        self.phase = Phase.RECORDING
        self.paused = False
        self._late_at_start = self.loop.clock.late
        self.message = f"recording: {self.key(Command.START_STOP)} stops"

    def _save(self, why: str) -> None:
        index = self.loop.save(late_ticks=self.loop.clock.late - self._late_at_start)
        self.saved.append(index)
        self._new_scene(self.seed + 1)
        self.message = (f"{why}: episode {index} ({'success' if self.loop.success else 'no success'}); "
                        f"{self._prompt_start()}")

    def _drop(self, why: str, new_scene: bool) -> None:
        if self.phase is not Phase.IDLE and self.loop.ticks:
            self.discarded += 1
        self.writer.discard_episode()
        self._new_scene(self.seed + 1 if new_scene else self.seed)
        self.message = f"{why}; {self._prompt_start()}"

    def _new_scene(self, seed: int) -> None:
        self.seed = seed
        self.loop.reset(seed)
        self.phase = Phase.IDLE
        self.paused = False

    # -- drawing -------------------------------------------------------------------------------

    def _draw(self) -> None:
        window = self.window
        window.draw_views(self.loop.obs)
        loop, clock, device = self.loop, self.loop.clock, self.device
        elapsed = 0.0 if self.phase is Phase.IDLE else loop.timestamp
        success = loop.info.get("success", False)
        held = f" {loop.success_ticks}/{loop.success_hold}" if success and loop.success_hold else ""
        x = window.line(0, [(f"episode {self.writer.num_episodes}", WHITE)]) + 18
        if self.phase is Phase.RECORDING and not self.paused:
            x = window.dot(0, x, RED)
        if self.phase is Phase.STOPPED:
            x = window.badge(0, self.outcome.upper(), GREEN if success else YELLOW, x)
        else:
            x = window.badge(0, "PAUSED" if self.paused else self.phase.value.upper(),
                             YELLOW if self.paused else RED if self.phase is Phase.RECORDING else GREY, x)
        left = loop.time_left
        window.line(0, [
            (f"{elapsed:5.1f} s  {loop.ticks} ticks", WHITE),
            ("no time limit" if left is None else f"{left:5.1f} s left",
             WHITE if left is None or left >= 5 else YELLOW),
            (f"success {'yes' if success else 'no'}{held}", GREEN if success else GREY),
            (f"{recent_rate(clock):4.1f}/{clock.rate_hz:g} Hz  late {clock.late}", YELLOW if clock.late else GREY),
        ], x)
        closed = device.gripper >= 0.5
        x = window.badge(1, "GRIPPER CLOSED" if closed else "GRIPPER OPEN", BLUE if closed else GREY)
        window.line(1, [(device.status(), WHITE), (f"seed {self.seed}   saved {len(self.saved)}   "
                                                   f"discarded {self.discarded}", GREY)], x)
        window.footer(self.message, device.key_for(Command.HELP), device.describe() if self.show_help else None)
        window.flip()
