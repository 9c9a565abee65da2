"""The pygame window the recorder, the intervention view, replay and the scene viewer share: the main
view on the left (a free camera the person moves with the mouse, never recorded; see
:mod:`protege.teleop.main_view`), the recorded cameras as live thumbnails on the right, a heads-up
display of three text lines below, and a key map drawn over the view on request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pygame

from protege.teleop.display import desktop_size, open_window, require_display
from protege.teleop.runtime.loop import Clock
from protege.teleop.main_view import MainView

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
    room = ((desktop[0] - _DESKTOP_MARGIN[0] - extra[0]) / size[0], (desktop[1] - _DESKTOP_MARGIN[1] - extra[1]) / size[1])
    scale = min(1.0, *room)
    return max(320, round(size[0] * scale)), max(240, round(size[1] * scale))


class Window:
    """A window on ``env``: the main view, the recorded cameras' thumbnails and a HUD.

    Pass every event to :meth:`handle` first (the view takes its mouse and view keys). Draw a frame with
    :meth:`draw_views`, then HUD :meth:`line` calls (and :meth:`key_map`), then :meth:`flip`. ``title``
    starts with the command's name (``protege record: ...``) so that automation finds the window;
    ``what`` names the window in the error raised when none can be opened.
    """

    def __init__(self, env: Any, title: str, what: str = "protege", main_size: tuple[int, int] = MAIN_VIEW) -> None:
        self.cameras = tuple(env.cameras)
        thumbs = THUMB_WIDTH if self.cameras else 0
        require_display(what)
        self.view_size = fit_view(main_size, desktop_size(), (thumbs, HUD_HEIGHT))
        self.view_rect = pygame.Rect((0, 0), self.view_size)
        self.view = MainView(env, self.view_size, budget_s=VIEW_BUDGET / env.control_hz)
        self.view.render()  # the first frame (GL set-up) before any control loop starts its clock
        self.screen = open_window((max(self.view_size[0] + thumbs, 640), self.view_size[1] + HUD_HEIGHT), title, what)
        self.font = pygame.font.Font(None, FONT_SIZE)

    @property
    def width(self) -> int:
        return self.screen.get_width()

    def handle(self, event: pygame.event.Event) -> bool:
        """Let the main view take a mouse or view-key event; True if it did."""
        return self.view.handle(event, self.view_rect)

    def steer(self, device: Any, max_step: np.ndarray) -> None:
        """Hand ``device`` what the window knows before a tick: the view's heading (for view-relative
        motion) and this tick's share of the gripper drag, at most ``max_step`` metres per axis."""
        device.view_yaw = self.view.yaw
        motion = self.view.take_drag(max_step)
        if motion.any():
            device.nudge(motion)

    def draw_views(self, obs: Mapping[str, np.ndarray], border: Colour | None = None) -> None:
        """Clear the window, draw the main view (framed in ``border``) and each recorded camera's image
        from ``obs`` as a labelled thumbnail."""
        self.screen.fill(BACKGROUND)
        self._blit(self.view.render(), self.view_rect.topleft, self.view_size, smooth=False)
        height, _ = self.view.height_above_surface()
        reduced = f"   (view at {self.view.scale:.0%}: the machine is busy)" if self.view.scale < 1 else ""
        self.overlay(f"gripper {100 * height:4.1f} cm above the surface{reduced}", (8, 6))
        self.overlay(VIEW_HELP, (8, self.view_size[1] - 24), GREY)
        y = 0
        for i, camera in enumerate(self.cameras):
            image = obs[f"image_{camera}"]
            size = (THUMB_WIDTH, round(THUMB_WIDTH * image.shape[0] / image.shape[1]))
            self._blit(image, (self.view_size[0], y), size)
            self.text(f"{i + 1} {camera}", (self.view_size[0] + 6, y + 4), GREY)
            y += size[1] + 4
        if border is not None:
            pygame.draw.rect(self.screen, border, self.view_rect, 4)

    def _blit(self, image: np.ndarray, pos: tuple[int, int], size: tuple[int, int] | None = None,
              smooth: bool = True) -> None:
        image = np.ascontiguousarray(image)
        surface = pygame.image.frombuffer(image.data, (image.shape[1], image.shape[0]), "RGB")
        if size is not None and surface.get_size() != size:
            surface = (pygame.transform.smoothscale if smooth else pygame.transform.scale)(surface, size)
        self.screen.blit(surface, pos)

    def line(self, row: int, parts: Sequence[tuple[str, Colour]], x: int = 10) -> int:
        """Draw text parts left to right on HUD line ``row`` (0-2) from ``x``; return where they end."""
        y = self.view_size[1] + _LINE_Y[row]
        for i, (text, colour) in enumerate(parts):
            x = self.text(text, (x + (GAP if i else 0), y), colour)
        return x

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

    def overlay(self, text: str, pos: tuple[int, int], colour: Colour = WHITE) -> None:
        """``text`` on a dark band, readable over the main view."""
        surface = self.font.render(text, True, colour)
        band = pygame.Surface((surface.get_width() + 8, surface.get_height() + 4), pygame.SRCALPHA)
        band.fill((0, 0, 0, 150))
        self.screen.blit(band, (pos[0] - 4, pos[1] - 2))
        self.screen.blit(surface, pos)

    def text(self, text: str, pos: tuple[int, int], colour: Colour = WHITE) -> int:
        """Draw ``text`` at ``pos``; return the x where it ends."""
        surface = self.font.render(text, True, colour)
        self.screen.blit(surface, pos)
        return pos[0] + surface.get_width()

    def flip(self) -> None:
        pygame.display.flip()

    def close(self) -> None:
        """Release the main view's renderer (the window itself closes with pygame)."""
        self.view.close()

    def screenshot(self, path: str | Path) -> None:
        pygame.image.save(self.screen, str(path))

