"""Pick an OpenGL backend for offscreen rendering before mujoco is imported, and explain failures.

MuJoCo reads ``MUJOCO_GL`` once, at import. With an X display we leave it alone (GLFW over GLX);
without one (a headless machine, or Wayland without XWayland) we choose EGL when libEGL is present
and OSMesa otherwise, so cameras render out of the box. A user's own ``MUJOCO_GL`` always wins.
"""

from __future__ import annotations

import ctypes.util
import os

_LIBRARIES = {"egl": ("EGL", "libegl1"), "osmesa": ("OSMesa", "libosmesa6"), "glx": ("GL", "libgl1")}


def choose_gl_backend() -> str | None:
    """The backend MuJoCo will use (None: its default, GLFW on the X display). The chosen one is written to
    ``os.environ``, on purpose: MuJoCo and PyOpenGL read the environment at import and offer no other way in."""
    if "MUJOCO_GL" in os.environ:
        return os.environ["MUJOCO_GL"]
    if os.environ.get("DISPLAY"):
        return None
    backend = "egl" if ctypes.util.find_library("EGL") else "osmesa"
    os.environ["MUJOCO_GL"] = backend
    os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


def render_failure(exc: Exception) -> str:
    """One line on why MuJoCo could not render offscreen, and what to try that is not already set."""
    chosen = os.environ.get("MUJOCO_GL", "").lower()
    backend = {"": "glx", "glfw": "glx"}.get(chosen, chosen)
    detail = (repr(exc) if type(exc).__module__.startswith("OpenGL") else str(exc)).strip().splitlines()
    setting = f"MUJOCO_GL={chosen}" if chosen else f"MUJOCO_GL unset (GLFW on DISPLAY={os.environ.get('DISPLAY', '')})"
    library, package = _LIBRARIES.get(backend, (None, None))
    if library is not None and ctypes.util.find_library(library) is None:
        advice = f"lib{library} is not installed (apt-get install {package})"
    else:
        others = [name for name in ("egl", "osmesa") if name != backend]
        advice = "try " + " or ".join(f"MUJOCO_GL={name}" for name in others)
    return f"offscreen rendering failed with {setting}: {detail[0] if detail else type(exc).__name__}; {advice}"
