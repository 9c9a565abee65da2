"""Tabletop tasks, by name."""

from protege.sim.tasks.base import Task
from protege.sim.tasks.lift import Lift
from protege.sim.tasks.push import Push
from protege.sim.tasks.reach import Reach
from protege.sim.tasks.slot_push import SlotPush
from protege.sim.tasks.stack import Stack

TASKS: dict[str, type[Task]] = {t.name: t for t in (Reach, Push, Lift, Stack, SlotPush)}

__all__ = ["TASKS", "Task"]
