"""Drive a protege window on a real X server as a person would: start the command, find its window
by title, press keys and click with XTEST (xdotool), and grab what the window shows (ImageMagick)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import IO

import cv2
import numpy as np

TOOLS = ("Xvfb", "xdotool", "import")
GL_MODES = ("unset", "egl", "osmesa", "glx")


def window_env(display: str, gl: str) -> dict[str, str]:
    """The environment of a person's desktop session: a display, no SDL driver override, ``MUJOCO_GL``
    as given (``unset``: the default)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "MUJOCO_GL", "PYOPENGL_PLATFORM")}
    env.update(DISPLAY=display, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    if gl != "unset":
        env["MUJOCO_GL"] = gl
    return env


@dataclass
class XWindow:
    """A protege command running in a window on ``display``."""

    display: str
    process: subprocess.Popen
    stdout: IO[str]
    stderr: IO[str]
    wid: str = ""

    @classmethod
    def launch(cls, display: str, gl: str, args: list[str], title: str, timeout: float = 60.0) -> XWindow:
        """Start ``protege ARGS`` and wait until a window whose title starts with ``title`` is shown."""
        # Output goes to files, not pipes: a pipe nobody reads until the end can fill and stall the command.
        stdout, stderr = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        process = subprocess.Popen([sys.executable, "-m", "protege.launch.cli", *args], env=window_env(display, gl),
                                   stdout=stdout, stderr=stderr, text=True)
        window = cls(display, process, stdout, stderr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if window.process.poll() is not None:
                code, out, err = window.finish()
                raise AssertionError(f"protege {' '.join(args)} exited with {code} before its window showed:\n"
                                     f"{out}\n{err}")
            found = window.xdotool("search", "--onlyvisible", "--name", f"^{title}", check=False).split()
            if found:
                window.wid = found[0]
                window.xdotool("mousemove", "--window", window.wid, "5", "5")  # focus follows the pointer
                time.sleep(0.5)  # a few frames drawn
                return window
            time.sleep(0.2)
        window.process.send_signal(signal.SIGABRT)  # faulthandler prints where every thread is
        _, _, err = window.finish()
        raise AssertionError(f"no window titled {title!r} within {timeout} s; the command's stderr:\n{err[-6000:]}")

    def __enter__(self) -> XWindow:
        return self

    def __exit__(self, error: type[BaseException] | None, *_: object) -> None:
        if error is not None:
            self.kill()  # a failing test leaves no window behind

    def xdotool(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": self.display},
                                capture_output=True, text=True, timeout=30)
        if check and result.returncode:
            raise AssertionError(f"xdotool {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def grab(self) -> np.ndarray:
        """What the window shows, as an RGB array."""
        png = subprocess.run(["import", "-display", self.display, "-window", self.wid, "png:-"],
                             capture_output=True, timeout=30, check=True).stdout
        return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]

    def key(self, name: str, hold: float = 0.0) -> None:
        """Press and release the X key ``name`` (keysym, e.g. ``Return``, ``w``), holding it ``hold`` seconds."""
        self.xdotool("keydown", name)
        time.sleep(hold or 0.12)  # at least two ticks at 20 Hz, so the loop sees the key down
        self.xdotool("keyup", name)
        time.sleep(0.1)

    def tap(self, name: str, seconds: float = 0.01) -> None:
        """Press and release the X key ``name`` ``seconds`` apart, timed inside one xdotool call (a tap)."""
        self.xdotool("keydown", name, "sleep", str(seconds), "keyup", name)
        time.sleep(0.1)

    def click(self, x: int, y: int) -> None:
        self.xdotool("mousemove", "--window", self.wid, str(x), str(y), "click", "1")
        time.sleep(0.1)

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        """Wait for the command to exit; its status, stdout and stderr."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the window did not close within {timeout} s") from None
        return self.process.returncode, self._read(self.stdout), self._read(self.stderr)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @staticmethod
    def _read(file: IO[str]) -> str:
        file.seek(0)
        return file.read()


def lit(region: np.ndarray) -> bool:
    """Whether a camera view shows a scene: bright enough and not a flat colour (a black or blank
    window fails both)."""
    return float(region.mean()) > 40 and float(region.std()) > 15


def changed(before: np.ndarray, after: np.ndarray) -> float:
    """Mean absolute difference of two grabs (grey levels)."""
    return float(np.abs(before.astype(np.int16) - after.astype(np.int16)).mean())
