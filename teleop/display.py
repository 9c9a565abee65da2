"""Opening a protege window, the one way every window does it, and a virtual X display for benchmarks.

Who owns OpenGL: MuJoCo renders every camera offscreen in a GL context of its own (EGL, GLX through
GLFW, or OSMesa: whatever ``MUJOCO_GL`` says). The window is a plain software surface that SDL copies
to the screen (shared memory on X11) and never accelerates. By default SDL backs the window surface
with a GL renderer of its own on X11, and that second context collides with MuJoCo's: the window stays
black under GLX, ``eglMakeCurrent`` fails with ``EGL_BAD_ACCESS`` under EGL, and OSMesa crashes.
"""

from __future__ import annotations

import contextlib
import locale
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pygame

from protege.teleop.errors import TeleopError

_HEADLESS_DRIVERS = ("dummy", "offscreen")


def has_display() -> bool:
    """Whether a window can be shown: an X or Wayland display, or SDL's headless drivers, or not Linux."""
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    return (driver in _HEADLESS_DRIVERS or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
            or not sys.platform.startswith("linux"))


def require_display(what: str) -> None:
    """Fail at once, in one line, where the window of command ``what`` cannot be shown: no display, or a
    display no server answers on (SDL would fall back to its invisible offscreen driver and the command
    would seem to hang). Commands that set up input devices or renderers before their window call it first."""
    if not has_display():
        raise TeleopError(f"cannot open the {what} window: no display (DISPLAY is not set); run it on a desktop, "
                          f"under `xvfb-run -a protege ...`, or headless with SDL_VIDEODRIVER=dummy")
    requested = os.environ.get("SDL_VIDEODRIVER", "")
    try:
        pygame.display.init()
    except pygame.error as exc:
        raise TeleopError(f"cannot open the {what} window ({exc})") from None
    driver = pygame.display.get_driver()
    if driver in _HEADLESS_DRIVERS and driver != requested:
        pygame.display.quit()
        where = ", ".join(f"{name}={os.environ[name]}" for name in ("DISPLAY", "WAYLAND_DISPLAY")
                          if os.environ.get(name))
        raise TeleopError(f"cannot open the {what} window: no display server answers on {where}; check that the "
                          f"desktop session is running (or use `xvfb-run -a protege ...`)")


def open_window(size: tuple[int, int], title: str, what: str) -> pygame.Surface:
    """Open the window of command ``what`` (e.g. ``"record"``) at ``size``, titled ``title``."""
    # Written on purpose: SDL reads this hint from the environment when it creates the window surface (see above),
    # and pygame has no other way to give it.
    os.environ["SDL_FRAMEBUFFER_ACCELERATION"] = "0"
    require_display(what)
    pygame.font.init()
    try:
        surface = pygame.display.set_mode(size)
    except pygame.error as exc:
        raise TeleopError(f"cannot open the {what} window ({exc})") from None
    _set_title(title)
    return surface


def desktop_size() -> tuple[int, int] | None:
    """The desktop's size in pixels (None under SDL's headless drivers, where there is none)."""
    if os.environ.get("SDL_VIDEODRIVER", "") in _HEADLESS_DRIVERS:
        return None
    pygame.display.init()
    info = pygame.display.Info()
    return (info.current_w, info.current_h) if info.current_w > 0 and info.current_h > 0 else None


def _set_title(title: str) -> None:
    """Set the window title under the C locale, so that X stores WM_NAME as a plain STRING, which every X
    tool reads (under Python's UTF-8 locale it gets an encoding that ``xdotool search --name`` skips)."""
    previous = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C")
        pygame.display.set_caption(title)
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)


@contextlib.contextmanager
def virtual_display(width: int = 1600, height: int = 1000) -> Iterator[str]:
    """Start an Xvfb server on a free display number and yield its name (``":N"``); stop it on exit.

    ``-noreset``: by default the server resets whenever its last client leaves, and a client that connects
    meanwhile is refused; between two short-lived clients (a window test's xdotool calls) that refusal hit
    about one window in seven."""
    if shutil.which("Xvfb") is None:
        raise TeleopError("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-noreset", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise TeleopError(f"Xvfb did not start (exit status {server.poll()})")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextlib.contextmanager
def display_for_bench() -> Iterator[str]:
    """The display a window benchmark runs on: ``DISPLAY`` if set, else a fresh Xvfb server (set as
    ``DISPLAY`` meanwhile). Yields a description for the figures; pygame's display is closed on exit."""
    saved = {name: os.environ.get(name) for name in ("DISPLAY", "SDL_VIDEODRIVER")}
    os.environ.pop("SDL_VIDEODRIVER", None)  # a real X window, not SDL's dummy driver
    pygame.display.quit()
    try:
        if saved["DISPLAY"]:
            yield f"X display {saved['DISPLAY']}"
        else:
            with virtual_display() as name:
                os.environ["DISPLAY"] = name
                try:
                    yield f"Xvfb {name}"
                finally:
                    pygame.display.quit()  # before the server goes
    finally:
        pygame.display.quit()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
