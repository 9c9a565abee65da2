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

import numpy as np
import pygame

from protege.datasets import EpisodeWriter
from protege.teleop.devices import Command, Device
from protege.teleop.errors import TeleopError
from protege.teleop.loop import ControlLoop
from protege.teleop.scripted_input import ScriptedInput

HUD_HEIGHT = 96
_FONT_SIZE = 20
_WHITE, _GREY, _RED, _YELLOW, _GREEN = (235, 235, 235), (150, 150, 150), (230, 60, 50), (240, 200, 60), (90, 210, 90)
_RATE_WINDOW = 20  # ticks over which the displayed loop rate is measured


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
        zoom: int = 3,
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
        self._zoom = zoom
        self._view_size = self._image_size(env)
        self._screen = self._open_window()
        self._font = pygame.font.Font(None, _FONT_SIZE)
        self.loop.reset(self.seed)

    # -- window --------------------------------------------------------------------------------

    def _image_size(self, env: Any) -> tuple[int, int]:
        key = f"image_{env.cameras[0]}" if env.cameras else None
        height, width = env.observation_space[key].shape[:2] if key else (128, 128)
        return width * self._zoom, height * self._zoom

    def _open_window(self) -> pygame.Surface:
        pygame.display.init()
        pygame.font.init()
        width = self._view_size[0] * max(1, len(self.env.cameras))
        try:
            screen = pygame.display.set_mode((max(width, 640), self._view_size[1] + HUD_HEIGHT))
        except pygame.error as exc:
            raise TeleopError(f"cannot open the recorder window ({exc}); set DISPLAY or run under xvfb-run") from None
        pygame.display.set_caption(f"protege record: {self.env.task.name} on {self.env.robot.name}")
        return screen

    def screenshot(self, path: str | Path) -> None:
        pygame.image.save(self._screen, str(path))

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
        screen = self._screen
        screen.fill((25, 25, 28))
        for i, camera in enumerate(self.env.cameras):
            image = np.ascontiguousarray(self.loop.obs[f"image_{camera}"])
            view = pygame.image.frombuffer(image.data, (image.shape[1], image.shape[0]), "RGB")
            screen.blit(pygame.transform.scale(view, self._view_size), (i * self._view_size[0], 0))
            self._text(camera, (i * self._view_size[0] + 6, 4), _GREY)
        self._draw_hud(self._view_size[1])
        if self.show_help:
            self._draw_key_map()
        pygame.display.flip()

    def _draw_hud(self, top: int) -> None:
        clock = self.loop.clock
        starts = clock.starts[-_RATE_WINDOW:]
        rate = (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 and starts[-1] > starts[0] else 0.0
        state_colour = {Phase.IDLE: _GREY, Phase.RECORDING: _RED, Phase.STOPPED: _YELLOW}[self.phase]
        elapsed = 0.0 if self.phase is Phase.IDLE else self.loop.timestamp
        success = self.loop.info.get("success", False)
        x = 10
        x = self._text(f"episode {self.writer.num_episodes}", (x, top + 8)) + 18
        if self.phase is Phase.RECORDING:
            pygame.draw.circle(self._screen, _RED, (x + 6, top + 15), 6)
            x += 18
        x = self._text(self.phase.value.upper(), (x, top + 8), state_colour) + 18
        x = self._text(f"{elapsed:5.1f} s  {self.loop.ticks} ticks", (x, top + 8)) + 18
        x = self._text(f"{rate:4.1f}/{clock.rate_hz:g} Hz  late {clock.late}", (x, top + 8),
                       _YELLOW if clock.late else _WHITE) + 18
        held = f" {self.loop.success_ticks}/{self.loop.success_hold}" if success and self.loop.success_hold else ""
        self._text(f"success {'yes' if success else 'no'}{held}", (x, top + 8), _GREEN if success else _GREY)
        self._text(f"seed {self.seed}   saved {len(self.saved)}   discarded {self.discarded}   {self.device.status()}",
                   (10, top + 34), _GREY)
        self._text(self.message, (10, top + 58))
        help_key = next((name for name, what in self.device.describe() if what == Command.HELP.value), None)
        if help_key:
            self._text(f"{help_key}: key map", (self._screen.get_width() - 110, top + 58), _GREY)

    def _draw_key_map(self) -> None:
        rows = self.device.describe()
        line = _FONT_SIZE - 3
        per_column = (len(rows) + 1) // 2
        panel = pygame.Surface((440, per_column * line + 16), pygame.SRCALPHA)
        panel.fill((0, 0, 0, 200))
        self._screen.blit(panel, (10, 24))
        for i, (name, what) in enumerate(rows):
            x, y = 20 + 215 * (i // per_column), 32 + line * (i % per_column)
            self._text(f"{name:>10}", (x, y), _YELLOW)
            self._text(what, (x + 100, y))

    def _text(self, text: str, pos: tuple[int, int], colour: tuple[int, int, int] = _WHITE) -> int:
        """Draw ``text`` at ``pos``; return the x where it ends."""
        surface = self._font.render(text, True, colour)
        self._screen.blit(surface, pos)
        return pos[0] + surface.get_width()
