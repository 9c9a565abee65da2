"""The episode browser's pygame view, and rewind-and-correct from inside it.

Left: the episode list (source, success, length; a correction names its parent). Right: the main view
of every window (:class:`~protege.teleop.window.SceneView`: orbit, pan, zoom, drop line, height),
showing the scene in the recorded state of the current frame, with the recorded cameras as thumbnails
beside it; below it a plot of the episode's actions (motion axes divided by the action scale) and
gripper (command and measured), and the timeline with the frames where someone took over from a policy
within the episode in orange. Below: a heads-up display. Press C (with the device) or X (with the
scripted expert) on a frame to restore the sim there and drive on, watching the scene live in the main
view while the timeline's cursor follows the take (a device's take, and its time limit, start at its
first input); Enter hands back to the policy (``--checkpoint``) or ends the take, Y saves it as a new
episode, N or Esc drops it. A dataset without ``sim_state`` (or whose env cannot be built) shows its
recorded cameras in place of the scene.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pygame

from protege.datasets import DatasetError
from protege.sim import SimError
from protege.teleop.browser import BrowserModel
from protege.teleop.correct import CorrectionSession, Rewinder, make_corrector, open_writer, write_takes
from protege.teleop.devices import Command, Device
from protege.teleop.display import desktop_size, open_window, require_display
from protege.teleop.errors import TeleopError
from protege.teleop.runtime.loop import Clock, person_time_limit
from protege.teleop.window import (
    BACKGROUND,
    BLUE,
    FONT_SIZE,
    GREEN,
    GREY,
    MAIN_VIEW,
    ORANGE,
    RED,
    THUMB_WIDTH,
    WHITE,
    YELLOW,
    Colour,
    SceneView,
    blit_image,
    draw_parts,
    draw_text,
    fit_view,
)

LIST_WIDTH = 300
ROW_HEIGHT = 18
PLOT_HEIGHT = 150
TIMELINE_HEIGHT = 26
HUD_HEIGHT = 78
MARGIN = 10
BELOW_VIEW = MARGIN + PLOT_HEIGHT + TIMELINE_HEIGHT + HUD_HEIGHT  # the plot, timeline and HUD under the main view
BROWSE_HZ = 30.0  # display rate while browsing; a correction runs at the dataset's rate
SOURCE_COLOURS: dict[str, Colour] = {"human": BLUE, "expert": GREEN, "policy": WHITE, "intervention": ORANGE}
AXIS_COLOURS: tuple[Colour, ...] = ((230, 90, 90), (90, 200, 90), (90, 140, 240), (220, 140, 220), (90, 210, 210),
                                    (200, 200, 120), (170, 120, 80), (150, 150, 230))
PANEL: Colour = (38, 38, 44)
SHADE: Colour = (80, 55, 30)
KEYS_HELP = "space play  <- -> step  shift x10  up/down episode  +/- speed  C correct  X expert  Esc quit"
CORRECT_HELP = "device keys drive  Enter hand back / stop  Y save as new episode  N or Esc discard"


def _scale_series(action: np.ndarray, scale: list[float] | None) -> np.ndarray:
    """Motion axes of ``action`` divided by the action scale (or their largest magnitude)."""
    motion = action[:, :-1].astype(np.float64)
    if scale is not None and len(scale) == action.shape[1]:
        divisor = np.abs(np.asarray(scale[:-1], dtype=np.float64))
    else:
        divisor = np.abs(motion).max(axis=0)
    return motion / np.where(divisor > 0, divisor, 1.0)


@dataclass
class RewindOptions:
    """How to correct from the browser: the device a person drives, an optional policy that resumes
    after the correction, the dataset the takes go to (None: the browsed one), a robot spec, the
    person's time limit per take in seconds (0: none; None: :func:`~protege.teleop.runtime.loop.person_time_limit`)."""

    device: str = "keyboard"
    policy: Any = None
    out: str | None = None
    robot: str | None = None
    bindings: Any = None
    success_hold: int = 10
    time_limit: float | None = None


class BrowserView:
    """Draws a :class:`BrowserModel` on ``surface`` (a window, or an offscreen surface): the scene through
    ``scene`` where there is one (at its place in the window), else the recorded cameras, with
    ``no_scene`` saying why."""

    def __init__(self, model: BrowserModel, surface: pygame.Surface, scene: SceneView | None = None,
                 no_scene: str = "") -> None:
        pygame.font.init()
        self.model = model
        self.surface = surface
        self.scene = scene
        self.no_scene = no_scene
        self.font = pygame.font.Font(None, FONT_SIZE)
        self.small = pygame.font.Font(None, FONT_SIZE - 3)
        self._layout()
        self._static_key: tuple[Any, ...] | None = None

    # -- layout --------------------------------------------------------------------------------

    @staticmethod
    def window_size(model: BrowserModel, view: tuple[int, int] = MAIN_VIEW) -> tuple[int, int]:
        """The window around a main view of ``view`` pixels and, where the dataset has cameras, the
        thumbnails' column (without a scene, the recorded cameras fill both)."""
        return LIST_WIDTH + view[0] + (THUMB_WIDTH if model.cameras else 0), view[1] + BELOW_VIEW

    def _layout(self) -> None:
        width, height = self.surface.get_size()
        self.view_rect = self.scene.rect if self.scene else pygame.Rect(LIST_WIDTH, 0, width - LIST_WIDTH,
                                                                        height - BELOW_VIEW)
        right = width - LIST_WIDTH - MARGIN
        self.plot_rect = pygame.Rect(LIST_WIDTH, self.view_rect.bottom + MARGIN, right, PLOT_HEIGHT)
        self.timeline_rect = pygame.Rect(LIST_WIDTH, self.plot_rect.bottom + 4, right, TIMELINE_HEIGHT - 8)
        self.list_rect = pygame.Rect(MARGIN, MARGIN + 2 * ROW_HEIGHT, LIST_WIDTH - 2 * MARGIN,
                                     self.timeline_rect.bottom - MARGIN - 2 * ROW_HEIGHT)
        self.hud_top = self.timeline_rect.bottom + 8

    # -- input helpers -------------------------------------------------------------------------

    def episode_at(self, pos: tuple[int, int]) -> int | None:
        """The episode whose list row is at ``pos``, if any."""
        if not self.list_rect.collidepoint(pos):
            return None
        row = (pos[1] - self.list_rect.top) // ROW_HEIGHT + self._first_row()
        return row if 0 <= row < len(self.model.episodes) else None

    def fraction_at(self, pos: tuple[int, int]) -> float | None:
        """Where on the timeline (0..1) ``pos`` is, if on the timeline or the plot."""
        if not (self.timeline_rect.collidepoint(pos) or self.plot_rect.collidepoint(pos)):
            return None
        return (pos[0] - self.timeline_rect.left) / max(1, self.timeline_rect.width - 1)

    def _first_row(self) -> int:
        visible = self.list_rect.height // ROW_HEIGHT
        return int(np.clip(self.model.episode - visible // 2, 0, max(0, len(self.model.episodes) - visible)))

    # -- drawing -------------------------------------------------------------------------------

    def draw(self, images: dict[str, np.ndarray] | None = None, hud: list[tuple[str, Colour]] | None = None,
             border: Colour | None = None, cursor: int | None = None) -> None:
        """One frame: the model's current frame, or the ``images``, ``hud`` and timeline ``cursor`` (a
        frame) of a correction in progress. The scene shows whatever state its env is in."""
        self.surface.fill(BACKGROUND)
        self._draw_list()
        images = self.model.images() if images is None else images
        if self.scene is not None:
            self.scene.draw(self.surface, {f"image_{camera}": image for camera, image in images.items()}, border)
        else:
            self._draw_cameras(images, border)
        self._draw_static()
        self._draw_cursor(self.model.frame if cursor is None else cursor, WHITE if cursor is None else ORANGE)
        self._draw_hud(hud)

    def _text(self, text: str, pos: tuple[int, int], colour: Colour = WHITE,
              font: pygame.font.Font | None = None) -> int:
        return draw_text(self.surface, font or self.font, text, pos, colour)

    def _draw_list(self) -> None:
        model = self.model
        counts = "  ".join(f"{name} {n}" for name, n in model.sources.items())
        self._text(f"{len(model.episodes)} episodes", (MARGIN, MARGIN))
        draw_parts(self.surface, self.small, [(counts, GREY)], (MARGIN, MARGIN + ROW_HEIGHT), LIST_WIDTH - MARGIN)
        first = self._first_row()
        visible = self.list_rect.height // ROW_HEIGHT
        for row, entry in enumerate(model.episodes[first:first + visible]):
            y = self.list_rect.top + row * ROW_HEIGHT
            if entry.index == model.episode:
                pygame.draw.rect(self.surface, PANEL, (MARGIN - 4, y - 1, LIST_WIDTH - 2 * MARGIN + 8, ROW_HEIGHT))
            colour = SOURCE_COLOURS.get(entry.source, GREY)
            self._text(f"{entry.index:>4}", (MARGIN, y), GREY, self.small)
            self._text(entry.source, (MARGIN + 40, y), colour, self.small)
            self._text("ok" if entry.success else "fail", (MARGIN + 140, y), GREEN if entry.success else RED,
                       self.small)
            self._text(f"{entry.length:>5}", (MARGIN + 175, y), WHITE, self.small)
            if entry.parent is not None:
                self._text(f"<{entry.parent[0]}@{entry.parent[1]}", (MARGIN + 225, y), ORANGE, self.small)

    def _draw_cameras(self, images: dict[str, np.ndarray], border: Colour | None) -> None:
        """The recorded cameras side by side in place of the scene, and why there is no scene."""
        rect = self.view_rect
        if images:
            widths = [image.shape[1] / image.shape[0] for image in images.values()]
            height = min(rect.height - 4, int((rect.width - 4 * len(images)) / sum(widths)))
            x = rect.left
            for (camera, image), aspect in zip(images.items(), widths, strict=True):
                size = (round(aspect * height), height)
                blit_image(self.surface, image, (x, rect.top), size)
                self._text(camera, (x + 6, rect.top + 4), GREY, self.small)
                if border is not None:
                    pygame.draw.rect(self.surface, border, (x, rect.top, *size), 3)
                x += size[0] + 4
        if self.no_scene:
            draw_parts(self.surface, self.small, [(f"no scene to show: {self.no_scene}", GREY)],
                       (rect.left + 6, rect.bottom - 20), rect.right - MARGIN)

    def _x(self, frame: float) -> int:
        rect = self.timeline_rect
        return rect.left + round(frame / max(1, self.model.length - 1) * (rect.width - 1))

    def _draw_static(self) -> None:
        """Plot and timeline of the current episode, drawn once per episode and then blitted."""
        key = (self.model.ds.path, self.model.ds.num_episodes, self.model.episode, self.surface.get_size())
        if key != self._static_key:
            self._static = self._render_static()
            self._static_key = key
        self.surface.blit(self._static, self.plot_rect.topleft)

    def _render_static(self) -> pygame.Surface:
        model = self.model
        plot, timeline = self.plot_rect, self.timeline_rect
        surface = pygame.Surface((plot.width, timeline.bottom - plot.top))
        surface.fill(BACKGROUND)
        origin = np.array(plot.topleft)
        motion_box = pygame.Rect(0, 4, plot.width, round(plot.height * 0.6) - 8)
        grip_box = pygame.Rect(0, motion_box.bottom + 6, plot.width, plot.height - motion_box.bottom - 10)
        for box in (motion_box, grip_box):
            pygame.draw.rect(surface, PANEL, box)
        for start, end in model.intervention_segments():
            left, right = self._x(start) - plot.left, self._x(end - 1) - plot.left
            for box in (motion_box, grip_box):
                pygame.draw.rect(surface, SHADE, (left, box.top, max(2, right - left), box.height))
        n = model.length
        xs = np.array([self._x(i) for i in range(n)]) - plot.left

        def polyline(values: np.ndarray, box: pygame.Rect, low: float, high: float, colour: Colour,
                     width: int = 1) -> None:
            if n < 2:
                return
            ys = box.bottom - 1 - (np.clip(values, low, high) - low) / (high - low) * (box.height - 2)
            pygame.draw.lines(surface, colour, False, np.column_stack([xs, ys]).tolist(), width)

        pygame.draw.line(surface, GREY, (0, motion_box.centery), (plot.width, motion_box.centery))
        if "action" in model.series:
            action = model.series["action"]
            motion = _scale_series(action, model.ds.attrs.get("action_scale"))
            for axis in range(motion.shape[1]):
                polyline(motion[:, axis], motion_box, -1.0, 1.0, AXIS_COLOURS[axis % len(AXIS_COLOURS)])
            polyline(action[:, -1], grip_box, 0.0, 1.0, YELLOW, 2)
        if "gripper" in model.series:
            polyline(model.series["gripper"][:, 0], grip_box, 0.0, 1.0, ORANGE)
        for text, box in (("actions / scale (x y z roll pitch yaw ...)", motion_box),
                          ("gripper: command (yellow), measured (orange)", grip_box)):
            label = self.small.render(text, True, GREY)
            pygame.draw.rect(surface, BACKGROUND,
                             (box.left + 2, box.top + 1, label.get_width() + 8, label.get_height() + 2))
            surface.blit(label, (box.left + 6, box.top + 2))
        bar = timeline.move(-origin[0], -origin[1])
        pygame.draw.rect(surface, PANEL, bar)
        for start, end in model.intervention_segments():
            left, right = self._x(start) - plot.left, self._x(end - 1) - plot.left
            pygame.draw.rect(surface, ORANGE, (left, bar.top, max(2, right - left), bar.height))
        return surface

    def _draw_cursor(self, frame: int, colour: Colour) -> None:
        x = self._x(frame)
        pygame.draw.line(self.surface, colour, (x, self.plot_rect.top + 4), (x, self.timeline_rect.bottom), 2)

    def _draw_hud(self, hud: list[tuple[str, Colour]] | None) -> None:
        """Three lines, each cut to the window's width: the episode (and, browsing, the frame and
        playback); a correction's ``hud`` (or the model's message); the keys."""
        model, entry = self.model, self.model.entry
        right = self.surface.get_width() - MARGIN
        status = [(f"episode {entry.index}", WHITE), (entry.source, SOURCE_COLOURS.get(entry.source, GREY)),
                  ("success" if entry.success else "no success", GREEN if entry.success else RED),
                  (f"seed {entry.seed}" + ("" if entry.look_seed is None else f", look {entry.look_seed}"), GREY)]
        if hud is None:
            state = "playing" if model.playing else "paused"
            status += [(f"frame {model.frame}/{model.length - 1}   {model.timestamp:6.2f} s", WHITE),
                       (f"{state} {model.speed:g}x", YELLOW if model.playing else GREY)]
        segments = model.intervention_segments()
        if segments:
            status.append((f"interventions {', '.join(f'{a}-{b - 1}' for a, b in segments[:4])}"
                           + (" ..." if len(segments) > 4 else ""), ORANGE))
        y = self.hud_top
        draw_parts(self.surface, self.font, status, (MARGIN, y), right)
        draw_parts(self.surface, self.font, hud or [(model.message, WHITE)], (MARGIN, y + 22), right)
        help_line = KEYS_HELP if model.can_rewind else KEYS_HELP.replace("  C correct  X expert", "")
        draw_parts(self.surface, self.small, [(CORRECT_HELP if hud else help_line, GREY)], (MARGIN, y + 44), right)


class BrowserApp:
    """The browser window: browsing with the scene in the main view, and rewind-and-correct when
    ``rewind`` options are given. ``view_size`` is the main view's (default: 960x720, or less to fit
    the desktop)."""

    def __init__(self, model: BrowserModel, rewind: RewindOptions | None = None,
                 view_size: tuple[int, int] | None = None) -> None:
        self.model = model
        self.rewind = rewind
        require_display("browse")
        self.rewinder, no_scene = self._open_env()
        size = view_size or fit_view(MAIN_VIEW, desktop_size(),
                                     (LIST_WIDTH + (THUMB_WIDTH if model.cameras else 0), BELOW_VIEW))
        self.scene = SceneView(self.rewinder.env, size, (LIST_WIDTH, 0)) if self.rewinder is not None else None
        screen = open_window(BrowserView.window_size(model, size), f"protege browse: {Path(model.path).name}",
                             "browse")
        self.view = BrowserView(model, screen, self.scene, no_scene)
        self.session: CorrectionSession | None = None
        self.saved: list[int] = []
        self.running = False
        self._dragging = False
        self._shown: tuple[int, int] | None = None  # (episode, frame) the scene's env is in, None: unknown

    def _open_env(self) -> tuple[Rewinder | None, str]:
        """The env that shows the scene and runs corrections, or None and why there is none."""
        if not self.model.can_rewind:
            return None, "the dataset was recorded without sim_state"
        try:
            return Rewinder(self.model.ds, robot=self.rewind.robot if self.rewind else None), ""
        except (TeleopError, SimError, DatasetError) as exc:
            self.model.message = str(exc)
            return None, str(exc)

    def close(self) -> None:
        """Release the scene's renderers and env."""
        if self.scene is not None:
            self.scene.close()
        if self.rewinder is not None:
            self.rewinder.close()

    # -- main loop -----------------------------------------------------------------------------

    def run(self, max_frames: int | None = None) -> dict[str, Any]:
        """Show the window until quit (or ``max_frames`` frames); return the corrections saved."""
        self.running = True
        clock = Clock(BROWSE_HZ)
        last = time.perf_counter()
        frames = 0
        while self.running and (max_frames is None or frames < max_frames):
            for event in pygame.event.get():
                self.handle(event)
            now = time.perf_counter()
            if self.session is None:
                self.model.advance(now - last)
            elif not self.session.ended:
                self.step_correction()
            last = now
            self.draw()
            pygame.display.flip()
            if self.session is not None and clock.rate_hz != self.model.fps:
                clock = Clock(self.model.fps)
            elif self.session is None and clock.rate_hz != BROWSE_HZ:
                clock = Clock(BROWSE_HZ)
            clock.tick()
            frames += 1
        self.close()
        return {"saved": list(self.saved)}

    def step_correction(self) -> None:
        """One tick of the correction; a device is first told the view's heading and the gripper drag."""
        assert self.session is not None and self.rewinder is not None
        corrector = self.session.hand_over.pilot
        if self.scene is not None and isinstance(corrector, Device):
            self.scene.steer(corrector, self.rewinder.env.action_space.high[:3])
        self.session.step()

    def draw(self) -> None:
        if self.session is None:
            self._show_frame()
            self.view.draw()
            return
        session = self.session
        loop = session.loop
        images = {c: loop.obs[f"image_{c}"] for c in session.rewinder.env.cameras}
        corrector = session.hand_over.pilot
        if session.ended:
            status = "ended: Y save, N discard"
        elif session.waiting:
            status = "move to start: the clock starts at your first input"
        else:
            status = f"{session.driver} drives"
        left = loop.time_left
        hud = [(f"CORRECTING from episode {session.episode} frame {session.frame}", ORANGE),
               (status, YELLOW if session.ended or session.waiting else GREEN), (f"{loop.ticks} ticks", WHITE),
               ("no time limit" if left is None else f"{left:.1f} s left", WHITE),
               ("success" if loop.success else "no success", GREEN if loop.success else GREY)]
        if isinstance(corrector, Device):
            hud += [("gripper closed" if corrector.gripper >= 0.5 else "gripper open", WHITE),
                    (corrector.status(), GREY)]
        if session.hand_over.active:
            hud.append(("Enter: hand back", GREY))
        cursor = min(session.frame + loop.ticks, self.model.length - 1)
        self.view.draw(images=images, hud=hud, border=ORANGE, cursor=cursor)

    def _show_frame(self) -> None:
        """Put the scene's env in the recorded state of the current frame (restoring the episode, seed
        first, when the episode changed)."""
        model = self.model
        if self.rewinder is None or self._shown == (model.episode, model.frame):
            return
        if self._shown is not None and self._shown[0] == model.episode:
            self.rewinder.env.set_state(model.sim_state)
        else:
            self.rewinder.restore(model.episode, model.frame)
        self._shown = (model.episode, model.frame)

    def screenshot(self, path: str | Path) -> None:
        pygame.image.save(self.view.surface, str(path))

    # -- events --------------------------------------------------------------------------------

    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.QUIT:
            self._end_correction("quit")
            self.running = False
        elif self.scene is not None and self.scene.handle(event):
            return
        elif self.session is not None:
            self._handle_correcting(event)
        elif event.type == pygame.KEYDOWN:
            self._handle_key(event)
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            episode = self.view.episode_at(event.pos)
            if episode is not None:
                self.model.select(episode)
            fraction = self.view.fraction_at(event.pos)
            if fraction is not None:
                self._dragging = True
                self.model.scrub_fraction(fraction)
        elif event.type == pygame.MOUSEBUTTONUP:
            self._dragging = False
        elif event.type == pygame.MOUSEMOTION and self._dragging:
            fraction = self.view.fraction_at(event.pos)
            if fraction is not None:
                self.model.scrub_fraction(fraction)
        elif event.type == pygame.MOUSEWHEEL:
            self.model.next_episode(-event.y)

    def _handle_key(self, event: pygame.event.Event) -> None:
        model = self.model
        big = 10 if event.mod & pygame.KMOD_SHIFT else 1
        actions = {
            pygame.K_SPACE: model.toggle_play,
            pygame.K_RIGHT: lambda: model.step(big),
            pygame.K_LEFT: lambda: model.step(-big),
            pygame.K_DOWN: lambda: model.next_episode(1),
            pygame.K_UP: lambda: model.next_episode(-1),
            pygame.K_PAGEDOWN: lambda: model.next_episode(10),
            pygame.K_PAGEUP: lambda: model.next_episode(-10),
            pygame.K_HOME: lambda: model.scrub(0),
            pygame.K_END: lambda: model.scrub(model.length - 1),
            pygame.K_PLUS: model.faster, pygame.K_EQUALS: model.faster, pygame.K_KP_PLUS: model.faster,
            pygame.K_MINUS: model.slower, pygame.K_KP_MINUS: model.slower,
            pygame.K_c: lambda: self.start_correction(self.rewind.device if self.rewind else "keyboard"),
            pygame.K_x: lambda: self.start_correction("expert"),
            pygame.K_ESCAPE: self._quit,
            pygame.K_q: self._quit,
        }
        action = actions.get(event.key)
        if action is not None:
            action()

    def _quit(self) -> None:
        self.running = False

    # -- rewind and correct --------------------------------------------------------------------

    def start_correction(self, source: str) -> bool:
        """Restore the current frame and let ``source`` drive; on bad input say why and keep browsing."""
        model = self.model
        if self.rewind is None:
            model.message = "rewind is off in this browser"
            return False
        if not model.can_rewind:
            model.message = "rewind needs sim_state: this dataset was recorded without it"
            return False
        if self.rewinder is None:
            model.message = f"cannot correct: {self.view.no_scene}"
            return False
        model.playing = False
        try:
            corrector = make_corrector(source, self.rewinder.env, self.rewind.bindings)
            self.session = CorrectionSession(self.rewinder, model.episode, model.frame, corrector,
                                             policy=self.rewind.policy, success_hold=self.rewind.success_hold,
                                             realtime=True, wait_for_input=True,
                                             time_limit=person_time_limit(self.rewinder.env, self.rewind.time_limit))
        except (TeleopError, SimError, DatasetError) as exc:
            model.message = str(exc)
            return False
        if self.scene is not None:
            self.scene.view.drop_drag()  # a Ctrl-drag made while browsing moves nothing
        self._shown = None
        pygame.event.clear()
        return True

    def _handle_correcting(self, event: pygame.event.Event) -> None:
        assert self.session is not None
        session = self.session
        corrector = session.hand_over.pilot
        command = corrector.handle(event) if isinstance(corrector, Device) else None
        if command is None and event.type == pygame.KEYDOWN:
            command = {pygame.K_RETURN: Command.START_STOP, pygame.K_y: Command.SAVE, pygame.K_n: Command.DISCARD,
                       pygame.K_ESCAPE: Command.QUIT}.get(event.key)
        if command is Command.START_STOP:
            if session.hand_over.active:
                session.hand_back()
            else:
                session.stopped = True
        elif command is Command.SAVE:
            self.save_correction()
        elif command in (Command.DISCARD, Command.QUIT, Command.RESET):
            self._end_correction("correction discarded")

    def save_correction(self) -> int | None:
        """Write the take as a new episode; show it when it went to the browsed dataset."""
        assert self.session is not None
        try:
            take = self.session.take()
            with open_writer(self.model.ds, self.rewind.out if self.rewind else None) as writer:
                index = write_takes([take], writer)[0]
        except (TeleopError, DatasetError) as exc:
            self.model.message = str(exc)
            return None
        self.saved.append(index)
        parent = (self.session.episode, self.session.frame)
        if self.rewind is None or self.rewind.out is None:
            self.model.reload()
            if self.rewinder is not None:
                self.rewinder.ds = self.model.ds  # corrections of the new episode rewind into it
            self.model.select(index)
            self._end_correction(f"saved correction of episode {parent[0]} at frame {parent[1]} as episode {index}")
        else:
            self._end_correction(f"saved correction as episode {index} of {self.rewind.out}")
        return index

    def _end_correction(self, why: str) -> None:
        """Back to browsing (if correcting), saying ``why``; the scene shows the recorded frame again."""
        if self.session is not None:
            self.session = None
            self._shown = None
            self.model.message = why
