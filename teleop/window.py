"""The pygame window the recorder, the intervention view, replay and the scene viewer share: camera
views side by side on top, a heads-up display of three text lines below, and a key map drawn over the
views on request.

The views show the env's recorded cameras. An env that records none (a state-only policy) is shown
through a view of its own, rendered for the window alone and never part of an observation or a dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pygame

from protege.teleop.display import open_window
from protege.teleop.loop import Clock

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
VIEW_CAMERA = "front"  # what the window shows of an env that records no camera
VIEW_SIZE = 384  # pixels, within the scene's offscreen buffer


def recent_rate(clock: Clock) -> float:
    """The loop rate over the last few ticks (Hz), 0 until there are two."""
    starts = clock.starts[-_RATE_WINDOW:]
    return (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 and starts[-1] > starts[0] else 0.0


class Window:
    """A window for ``env``'s cameras, each shown ``zoom`` times its rendered size, and a HUD.

    Draw a frame with :meth:`draw_cameras`, then HUD :meth:`line` calls (and :meth:`key_map`), then
    :meth:`flip`. ``title`` starts with the command's name (``protege record: ...``) so that automation
    finds the window; ``what`` names the window in the error raised when none can be opened.
    """

    def __init__(self, env: Any, title: str, zoom: int = 3, what: str = "protege") -> None:
        self.cameras = tuple(env.cameras)
        self._view: SceneView | None = None
        if self.cameras:
            height, width = env.observation_space[f"image_{self.cameras[0]}"].shape[:2]
            self.view_size = (width * zoom, height * zoom)
        else:
            self._view = SceneView(env, VIEW_CAMERA, VIEW_SIZE)
            self.view_size = (self._view.size, self._view.size)
        size = (max(self.view_size[0] * max(1, len(self.cameras)), 640), self.view_size[1] + HUD_HEIGHT)
        self.screen = open_window(size, title, what)
        self.font = pygame.font.Font(None, FONT_SIZE)

    @property
    def width(self) -> int:
        return self.screen.get_width()

    def draw_cameras(self, obs: Mapping[str, np.ndarray], border: Colour | None = None) -> None:
        """Clear the window and draw each camera's image from ``obs`` (or the window's own view of the
        scene, for an env without cameras), labelled, framed in ``border``."""
        self.screen.fill(BACKGROUND)
        if self._view is not None:
            images = {f"{VIEW_CAMERA} (view only, not recorded)": self._view.render()}
        else:
            images = {camera: obs[f"image_{camera}"] for camera in self.cameras}
        for i, (label, image) in enumerate(images.items()):
            image = np.ascontiguousarray(image)
            view = pygame.image.frombuffer(image.data, (image.shape[1], image.shape[0]), "RGB")
            if view.get_size() != self.view_size:
                view = pygame.transform.scale(view, self.view_size)
            self.screen.blit(view, (i * self.view_size[0], 0))
            self.text(label, (i * self.view_size[0] + 6, 4), GREY)
        if border is not None:
            width = self.view_size[0] * max(1, len(self.cameras))
            pygame.draw.rect(self.screen, border, (0, 0, width, self.view_size[1]), 4)

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

    def text(self, text: str, pos: tuple[int, int], colour: Colour = WHITE) -> int:
        """Draw ``text`` at ``pos``; return the x where it ends."""
        surface = self.font.render(text, True, colour)
        self.screen.blit(surface, pos)
        return pos[0] + surface.get_width()

    def flip(self) -> None:
        pygame.display.flip()

    def close(self) -> None:
        """Release the window's own view (the window itself closes with pygame)."""
        if self._view is not None:
            self._view.close()
            self._view = None

    def screenshot(self, path: str | Path) -> None:
        pygame.image.save(self.screen, str(path))


class SceneView:
    """A square view of ``env``'s scene from one of its cameras, rendered for a window only."""

    def __init__(self, env: Any, camera: str, size: int) -> None:
        from protege.sim.render import CameraRenderer

        self.size = size
        self._data = env.data
        self._renderer = CameraRenderer(env.model, (camera,), size, size)
        self._camera = camera

    def render(self) -> np.ndarray:
        return self._renderer.render(self._data)[self._camera]

    def close(self) -> None:
        self._renderer.close()
