"""Headless defaults for every test: pygame's dummy video/audio drivers; sim picks EGL/OSMesa itself."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import protege.sim  # noqa: E402,F401  (chooses the GL backend before anything imports mujoco)
