"""`protege sim view`: a task scene in a window, still or driven by the scripted expert.

Keys: R resets the scene, N draws the next seed, Esc or Q quits; the mouse and the number keys move
the main view. The HUD names the task, seed, tick and whether the task's success holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pygame

from protege.teleop.runtime.loop import Clock
from protege.teleop.window import GREEN, GREY, WHITE, Window

if TYPE_CHECKING:
    from protege.sim.env import ProtegeEnv

KEYS = "R reset  N next seed  Esc quit"


def view_scene(env: ProtegeEnv, expert: Any = None, seed: int = 0, frames: int = 0,
               screenshot: str | Path | None = None) -> int:
    """Show ``env`` at its control rate until the person quits (or ``frames`` frames, if positive);
    ``expert`` drives if given, else the arm holds still. Saves the last frame to ``screenshot``;
    returns the number of frames shown."""
    window = Window(env, f"protege sim view: {env.task.name} on {env.robot.name}", what="sim view")
    clock = Clock(env.control_hz)
    obs = _reset(env, expert, seed)
    tick = shown = 0
    running = True
    while running:
        for event in pygame.event.get():
            if window.handle(event):
                continue
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN
                                             and event.key in (pygame.K_q, pygame.K_ESCAPE)):
                running = False
            elif event.type == pygame.KEYDOWN and event.key in (pygame.K_r, pygame.K_n):
                seed += event.key == pygame.K_n
                obs, tick = _reset(env, expert, seed), 0
        action = np.array(expert.act(obs), dtype=np.float64) if expert is not None else np.zeros(env.action_space.shape)
        if env.controller.name == "ee_delta":
            action[:3] += window.view.take_drag(env.action_space.high[:3] - np.abs(action[:3]))
        obs, _, _, truncated, info = env.step(action)
        tick += 1
        if truncated and expert is not None:  # the expert's episode is over; a still or dragged arm has no time limit
            obs, tick = _reset(env, expert, seed), 0
        window.draw_views(obs)
        success = bool(info["success"])
        window.line(0, [(f"{env.task.name} on {env.robot.name}", WHITE), (f"seed {seed}", WHITE),
                        (f"tick {tick}", WHITE), (f"success {'yes' if success else 'no'}", GREEN if success else GREY)])
        window.line(1, [("the scripted expert drives" if expert is not None
                         else "the arm holds still (Ctrl-drag moves it)", GREY)])
        window.line(2, [(KEYS, WHITE)])
        window.flip()
        clock.tick()
        shown += 1
        running = running and not (frames and shown >= frames)
    if screenshot:
        window.screenshot(screenshot)
    window.close()
    return shown


def _reset(env: ProtegeEnv, expert: Any, seed: int) -> dict[str, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    if expert is not None:
        expert.reset()
    return obs
