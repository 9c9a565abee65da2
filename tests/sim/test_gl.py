"""Render failures name the backend in use and suggest only what is not already set."""

from __future__ import annotations

import ctypes.util

import pytest

from protege.sim.gl import render_failure


class EGLError(Exception):
    """Stands for PyOpenGL's error type, whose message is in its repr."""

    __module__ = "OpenGL.raw.EGL._errors"

    def __repr__(self) -> str:
        return "EGLError( err=EGL_BAD_ACCESS (EGL_BAD_ACCESS), baseOperation = eglMakeCurrent )"


@pytest.mark.parametrize("backend, others", [("egl", ["osmesa"]), ("osmesa", ["egl"]), ("glx", ["egl", "osmesa"])])
def test_the_advice_never_repeats_the_backend_in_use(monkeypatch, backend, others):
    monkeypatch.setenv("MUJOCO_GL", backend)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so")
    line = render_failure(EGLError())
    assert f"with MUJOCO_GL={backend}:" in line and "EGL_BAD_ACCESS" in line and "eglMakeCurrent" in line
    assert line.split("; ")[-1] == "try " + " or ".join(f"MUJOCO_GL={name}" for name in others)
    assert "\n" not in line


def test_a_missing_library_names_the_package(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert render_failure(RuntimeError("cannot load OSMesa")).endswith(
        "libOSMesa is not installed (apt-get install libosmesa6)")


def test_the_default_backend_is_named_with_its_display(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setenv("DISPLAY", ":7")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so")
    line = render_failure(RuntimeError("Failed to initialize GLFW\nmore"))
    assert ("MUJOCO_GL unset (GLFW on DISPLAY=:7): Failed to initialize GLFW; "
            "try MUJOCO_GL=egl or MUJOCO_GL=osmesa") in line
