"""Pick an OpenGL backend for offscreen rendering before mujoco is imported.

MuJoCo reads ``MUJOCO_GL`` once, at import. With a display we leave it alone (GLFW); without one
we choose EGL when libEGL is present and OSMesa otherwise, so headless machines render out of
the box. A user's own ``MUJOCO_GL`` always wins.
"""

from __future__ import annotations

import ctypes.util
import os


def choose_gl_backend() -> str | None:
    if "MUJOCO_GL" in os.environ:
        return os.environ["MUJOCO_GL"]
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    backend = "egl" if ctypes.util.find_library("EGL") else "osmesa"
    os.environ["MUJOCO_GL"] = backend
    os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend
