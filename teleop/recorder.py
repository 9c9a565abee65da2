"""The recorder a person uses to collect demonstrations: camera views, a heads-up display, episode keys.

Episode states: idle (scene reset, arm still) -> recording (every tick is a frame) -> stopped
(waiting for save or discard). Save keeps the take and draws a new scene; discard drops it and
keeps the scene; re-record drops it and records the same scene again at once; reset draws a new
scene. When the task's success has held ``success_hold`` ticks the take is saved by itself.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import pygame

from protege.datasets import EpisodeWriter
from protege.teleop.devices import Command, Device
from protege.teleop.loop import ControlLoop
from protege.teleop.scripted_input import ScriptedInput
from protege.teleop.window import GREEN, GREY, RED, WHITE, YELLOW, Window, recent_rate


class Phase(enum.Enum):
    IDLE = "idle"
    RECORDING = "recording"
    STOPPED = "stopped"


class Recorder:
    """Teleoperate ``env`` with ``device`` and save takes to ``writer``, in a pygame window.

    ``seed`` is the first scene's seed; each new scene takes the next one. Run it with
    :meth:`run`; a :class:`ScriptedInput` replaces the person in tests and benchmarks.
    """

    def __init__(
        self,
        env: Any,
        device: Device,
        writer: EpisodeWriter,
        seed: int = 0,
        success_hold: int = 10,
        rate_hz: float | None = None,
        realtime: bool = True,
    ) -> None:
        self.env = env
        self.device = device
        self.writer = writer
        self.loop = ControlLoop(env, [device], writer=writer, rate_hz=rate_hz, realtime=realtime,
                                success_hold=success_hold)
        self.phase = Phase.IDLE
        self.seed = seed
        self.saved: list[int] = []
        self.discarded = 0
        self.message = "press start to record"
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
            if self.phase is Phase.RECORDING:
                self._record_tick()
            self._draw()
            clock.tick()
            tick += 1
        return {"saved": list(self.saved), "discarded": self.discarded, "timing": clock.stats()}

    def _handle_events(self) -> None:
        for event in pygame.event.get():
            if self.window.handle(event):
                continue
            command = Command.QUIT if event.type == pygame.QUIT else self.device.handle(event)
            if command is not None:
                self.command(command)

    def _record_tick(self) -> None:
        self.loop.step()
        if not self.loop.ended:
            return
        if self.loop.success:
            self._save("success held")
        else:
            self.phase = Phase.STOPPED
            self.message = "time limit: save, discard or re-record"

    # -- episode state machine ----------------------------------------------------------------

    def command(self, command: Command) -> None:
        """Apply one episode command to the state machine."""
        if command is Command.START_STOP:
            if self.phase is Phase.IDLE:
                self._start()
            elif self.phase is Phase.RECORDING:
                self.phase = Phase.STOPPED
                self.message = "stopped: save, discard or re-record"
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
        elif command is Command.HELP:
            self.show_help = not self.show_help

    def _start(self) -> None:
        self.phase = Phase.RECORDING
        self._late_at_start = self.loop.clock.late
        self.message = "recording"

    def _save(self, why: str) -> None:
        index = self.loop.save(late_ticks=self.loop.clock.late - self._late_at_start)
        self.saved.append(index)
        self.message = f"{why}: episode {index} ({'success' if self.loop.success else 'no success'})"
        self._new_scene(self.seed + 1)

    def _drop(self, why: str, new_scene: bool) -> None:
        if self.phase is not Phase.IDLE and self.loop.ticks:
            self.discarded += 1
        self.writer.discard_episode()
        self.message = why
        self._new_scene(self.seed + 1 if new_scene else self.seed)

    def _new_scene(self, seed: int) -> None:
        self.seed = seed
        self.loop.reset(seed)
        self.phase = Phase.IDLE

    # -- drawing -------------------------------------------------------------------------------

    def _draw(self) -> None:
        window = self.window
        window.draw_views(self.loop.obs)
        clock = self.loop.clock
        state_colour = {Phase.IDLE: GREY, Phase.RECORDING: RED, Phase.STOPPED: YELLOW}[self.phase]
        elapsed = 0.0 if self.phase is Phase.IDLE else self.loop.timestamp
        success = self.loop.info.get("success", False)
        held = f" {self.loop.success_ticks}/{self.loop.success_hold}" if success and self.loop.success_hold else ""
        x = window.line(0, [(f"episode {self.writer.num_episodes}", WHITE)]) + 18
        if self.phase is Phase.RECORDING:
            x = window.dot(0, x, RED)
        window.line(0, [
            (self.phase.value.upper(), state_colour),
            (f"{elapsed:5.1f} s  {self.loop.ticks} ticks", WHITE),
            (f"{recent_rate(clock):4.1f}/{clock.rate_hz:g} Hz  late {clock.late}", YELLOW if clock.late else WHITE),
            (f"success {'yes' if success else 'no'}{held}", GREEN if success else GREY),
        ], x)
        window.line(1, [(f"seed {self.seed}   saved {len(self.saved)}   discarded {self.discarded}   "
                         f"{self.device.status()}", GREY)])
        window.footer(self.message, self.device.input_for(Command.HELP.value),
                      self.device.describe() if self.show_help else None)
        window.flip()
