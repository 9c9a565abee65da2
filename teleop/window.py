"""The pygame window the recorder, the intervention view, replay and the scene viewer share: the main
view on the left (a free camera the person moves with the mouse, never recorded; see
:mod:`protege.teleop.main_view`), the recorded cameras as live thumbnails on the right, a heads-up
display of three text lines below, and a key map drawn over the view on request. The scene part (main
view and thumbnails, :class:`SceneView`) and the text helpers also serve the episode browser's window.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pygame

from protege.teleop.devices import Command, Device
from protege.teleop.display import desktop_size, open_window, require_display
from protege.teleop.main_view import MainView
from protege.teleop.runtime.loop import Clock

if TYPE_CHECKING:
    from protege.sim.env import ProtegeEnv

Colour = tuple[int, int, int]

HUD_HEIGHT = 96
FONT_SIZE = 20
BACKGROUND: Colour = (25, 25, 28)
WHITE: Colour = (235, 235, 235)
GREY: Colour = (150, 150, 150)
RED: Colour = (230, 60, 50)
YELLOW: Colour = (240, 200, 60)
GREEN: Colour = (90, 210, 90)
ORANGE: Colour = (250, 140, 30)
BLUE: Colour = (80, 150, 240)
GAP = 18  # pixels between the parts of a HUD line
_LINE_Y = (8, 33, 58)  # HUD lines, from the HUD's top
_RATE_WINDOW = 20  # ticks over which the displayed loop rate is measured
MAIN_VIEW = (960, 720)  # the main view's size where the desktop has room (pixels)
THUMB_WIDTH = 240  # the recorded cameras' column
VIEW_BUDGET = 0.4  # of a tick, the most the main view's render may take before its resolution drops
VIEW_HELP = "mouse: drag orbit, right-drag pan, wheel zoom, Ctrl-drag moves the gripper   0: reset view   1-9: cameras"
_DESKTOP_MARGIN = (40, 100)  # left for the desktop's panels and the window frame


def recent_rate(clock: Clock) -> float:
    """The loop rate over the last few ticks (Hz), 0 until there are two."""
    starts = clock.starts[-_RATE_WINDOW:]
    return (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 and starts[-1] > starts[0] else 0.0


def fit_view(size: tuple[int, int], desktop: tuple[int, int] | None, extra: tuple[int, int]) -> tuple[int, int]:
    """``size`` shrunk (keeping its aspect) so that it and ``extra`` pixels fit on ``desktop``."""
    if desktop is None:
        return size
    room = ((desktop[0] - _DESKTOP_MARGIN[0] - extra[0]) / size[0],
            (desktop[1] - _DESKTOP_MARGIN[1] - extra[1]) / size[1])
    scale = min(1.0, *room)
    return max(320, round(size[0] * scale)), max(240, round(size[1] * scale))


def draw_text(surface: pygame.Surface, font: pygame.font.Font, text: str, pos: tuple[int, int],
              colour: Colour = WHITE) -> int:
    """Draw ``text`` at ``pos``; return the x where it ends."""
    rendered = font.render(text, True, colour)
    surface.blit(rendered, pos)
    return pos[0] + rendered.get_width()


def draw_parts(surface: pygame.Surface, font: pygame.font.Font, parts: Sequence[tuple[str, Colour]],
               pos: tuple[int, int], right: int) -> int:
    """Draw text parts left to right from ``pos``, GAP apart, within ``right``: the first part that does
    not fit is shortened to end in "..." and the rest are left out. Returns where the text ends."""
    x, y = pos
    for i, (text, colour) in enumerate(parts):
        x += GAP if i else 0
        if x + font.size(text)[0] > right:
            while text and x + font.size(text + "...")[0] > right:
                text = text[:-1]
            return draw_text(surface, font, text + "...", (x, y), colour) if text else x
        x = draw_text(surface, font, text, (x, y), colour)
    return x


def blit_image(surface: pygame.Surface, image: np.ndarray, pos: tuple[int, int], size: tuple[int, int] | None = None,
               smooth: bool = True) -> None:
    """Draw an RGB ``image`` at ``pos``, scaled to ``size`` if given."""
    image = np.ascontiguousarray(image)
    rendered = pygame.image.frombuffer(image.data, (image.shape[1], image.shape[0]), "RGB")
    if size is not None and rendered.get_size() != size:
        rendered = (pygame.transform.smoothscale if smooth else pygame.transform.scale)(rendered, size)
    surface.blit(rendered, pos)


class SceneView:
    """What a window shows of the scene: the main view on ``env`` (``size`` pixels, its top left at
    ``origin`` in the window) with the gripper's height and the mouse help over it, and the recorded
    cameras as labelled thumbnails in a column to its right (THUMB_WIDTH wide, or narrower where they
    would not fit the view's height)."""

    def __init__(self, env: ProtegeEnv, size: tuple[int, int], origin: tuple[int, int] = (0, 0)) -> None:
        self.cameras = tuple(env.cameras)
        self.rect = pygame.Rect(origin, size)
        self.view = MainView(env, size, budget_s=VIEW_BUDGET / env.control_hz)
        self.view.render()  # the first frame (GL set-up) before any control loop starts its clock
        pygame.font.init()
        self.font = pygame.font.Font(None, FONT_SIZE)

    def handle(self, event: pygame.event.Event) -> bool:
        """Let the main view take a mouse or view-key event; True if it did."""
        return self.view.handle(event, self.rect)

    def steer(self, device: Any, max_step: np.ndarray) -> None:
        """Hand ``device`` what the view knows before a tick: its heading (for view-relative motion) and
        this tick's share of the gripper drag, at most ``max_step`` metres per axis."""
        device.view_yaw = self.view.yaw
        motion = self.view.take_drag(max_step)
        if motion.any():
            device.nudge(motion)

    def draw(self, screen: pygame.Surface, obs: Mapping[str, np.ndarray], border: Colour | None = None) -> None:
        """Draw the main view (framed in ``border``) and each recorded camera's image from ``obs``
        (``image_<camera>`` keys) as a thumbnail."""
        left, top = self.rect.topleft
        blit_image(screen, self.view.render(), (left, top), self.rect.size, smooth=False)
        height, _ = self.view.height_above_surface()
        reduced = f"   (view at {self.view.scale:.0%}: the machine is busy)" if self.view.scale < 1 else ""
        self._overlay(screen, f"gripper {100 * height:4.1f} cm above the surface{reduced}", (left + 8, top + 6))
        self._overlay(screen, VIEW_HELP, (left + 8, self.rect.bottom - 24), GREY)
        y = top
        room = (self.rect.height - 4 * (len(self.cameras) - 1)) // max(1, len(self.cameras))  # height per thumbnail
        for i, camera in enumerate(self.cameras):
            image = obs[f"image_{camera}"]
            aspect = image.shape[1] / image.shape[0]
            height = min(round(THUMB_WIDTH / aspect), room)
            size = (round(height * aspect), height)
            blit_image(screen, image, (self.rect.right, y), size)
            draw_text(screen, self.font, f"{i + 1} {camera}", (self.rect.right + 6, y + 4), GREY)
            y += size[1] + 4
        if border is not None:
            pygame.draw.rect(screen, border, self.rect, 4)

    def _overlay(self, screen: pygame.Surface, text: str, pos: tuple[int, int], colour: Colour = WHITE) -> None:
        """``text`` on a dark band, readable over the main view, cut at the view's right edge."""
        width = min(self.font.size(text)[0], self.rect.right - 4 - pos[0])
        band = pygame.Surface((width + 8, self.font.get_height() + 4), pygame.SRCALPHA)
        band.fill((0, 0, 0, 150))
        screen.blit(band, (pos[0] - 4, pos[1] - 2))
        draw_parts(screen, self.font, [(text, colour)], pos, self.rect.right - 4)

    def close(self) -> None:
        """Release the main view's renderers."""
        self.view.close()


class Window:
    """A window on ``env``: the main view, the recorded cameras' thumbnails and a HUD.

    Pass every event to :meth:`handle` first (the view takes its mouse and view keys). Draw a frame with
    :meth:`draw_views`, then HUD :meth:`line` calls (and :meth:`key_map`), then :meth:`flip`. ``title``
    starts with the command's name (``protege record: ...``) so that automation finds the window;
    ``what`` names the window in the error raised when none can be opened.
    """

    def __init__(self, env: ProtegeEnv, title: str, what: str = "protege",
                 main_size: tuple[int, int] = MAIN_VIEW) -> None:
        self.cameras = tuple(env.cameras)
        thumbs = THUMB_WIDTH if self.cameras else 0
        require_display(what)
        self.view_size = fit_view(main_size, desktop_size(), (thumbs, HUD_HEIGHT))
        self.scene = SceneView(env, self.view_size)
        self.view = self.scene.view
        self.screen = open_window((max(self.view_size[0] + thumbs, 640), self.view_size[1] + HUD_HEIGHT), title, what)
        self.font = pygame.font.Font(None, FONT_SIZE)

    @property
    def width(self) -> int:
        return self.screen.get_width()

    def handle(self, event: pygame.event.Event) -> bool:
        """Let the main view take a mouse or view-key event; True if it did."""
        return self.scene.handle(event)

    def commands(self, device: Device) -> Iterator[Command]:
        """This tick's commands: each pending event the main view does not take, as ``device`` reads it
        (closing the window is QUIT)."""
        for event in pygame.event.get():
            if self.handle(event):
                continue
            command = Command.QUIT if event.type == pygame.QUIT else device.handle(event)
            if command is not None:
                yield command

    def steer(self, device: Any, max_step: np.ndarray) -> None:
        """Hand ``device`` the view's heading and this tick's share of the gripper drag (:meth:`SceneView.steer`)."""
        self.scene.steer(device, max_step)

    def draw_views(self, obs: Mapping[str, np.ndarray], border: Colour | None = None) -> None:
        """Clear the window, draw the main view (framed in ``border``) and each recorded camera's image
        from ``obs`` as a labelled thumbnail."""
        self.screen.fill(BACKGROUND)
        self.scene.draw(self.screen, obs, border)

    def line(self, row: int, parts: Sequence[tuple[str, Colour]], x: int = 10) -> int:
        """Draw text parts left to right on HUD line ``row`` (0-2) from ``x``, within the window (see
        :func:`draw_parts`); return where they end."""
        return draw_parts(self.screen, self.font, parts, (x, self.view_size[1] + _LINE_Y[row]), self.width - 10)

    def line_right(self, row: int, text: str, colour: Colour = GREY) -> None:
        """Draw ``text`` at the right end of HUD line ``row``."""
        surface = self.font.render(text, True, colour)
        self.screen.blit(surface, (self.width - surface.get_width() - 10, self.view_size[1] + _LINE_Y[row]))

    def badge(self, row: int, text: str, colour: Colour, x: int = 10) -> int:
        """A filled label (e.g. who drives) on HUD line ``row``; return where it ends plus a gap."""
        surface = self.font.render(text, True, BACKGROUND)
        y = self.view_size[1] + _LINE_Y[row]
        box = pygame.Rect(x, y - 3, surface.get_width() + 12, surface.get_height() + 6)
        pygame.draw.rect(self.screen, colour, box, border_radius=4)
        self.screen.blit(surface, (x + 6, y))
        return box.right + GAP

    def dot(self, row: int, x: int, colour: Colour) -> int:
        """A filled circle on HUD line ``row`` (a recording light); return where it ends plus a gap."""
        pygame.draw.circle(self.screen, colour, (x + 6, self.view_size[1] + _LINE_Y[row] + 7), 6)
        return x + 12 + GAP

    def key_map(self, rows: Sequence[tuple[str, str]]) -> None:
        """(input, what it does) rows in two columns on a dark panel over the camera views."""
        line = FONT_SIZE - 3
        per_column = (len(rows) + 1) // 2
        panel = pygame.Surface((440, per_column * line + 16), pygame.SRCALPHA)
        panel.fill((0, 0, 0, 200))
        self.screen.blit(panel, (10, 24))
        for i, (name, what) in enumerate(rows):
            x, y = 20 + 215 * (i // per_column), 32 + line * (i % per_column)
            self.text(f"{name:>10}", (x, y), YELLOW)
            self.text(what, (x + 100, y))

    def footer(self, message: str, help_key: str | None, key_map: Sequence[tuple[str, str]] | None) -> None:
        """HUD line 2: ``message``, with the input that shows the key map (if any) at its right end;
        ``key_map`` rows over the views when given."""
        self.line(2, [(message, WHITE)])
        if help_key:
            self.line_right(2, f"{help_key}: key map")
        if key_map is not None:
            self.key_map(key_map)

    def text(self, text: str, pos: tuple[int, int], colour: Colour = WHITE) -> int:
        """Draw ``text`` at ``pos``; return the x where it ends."""
        return draw_text(self.screen, self.font, text, pos, colour)

    def flip(self) -> None:
        pygame.display.flip()

    def close(self) -> None:
        """Release the main view's renderers (the window itself closes with pygame)."""
        self.scene.close()

    def screenshot(self, path: str | Path) -> None:
        pygame.image.save(self.screen, str(path))

