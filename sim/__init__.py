"""protege.sim: robots, tabletop tasks, controllers, cameras, scripted experts and gymnasium envs.

Importing this package picks a headless OpenGL backend (see :mod:`protege.sim.gl`) and registers
the gymnasium ids ``protege/<Task>-v0``, e.g. ``gymnasium.make("protege/Lift-v0", robot="panda")``.
"""

from protege.sim.gl import choose_gl_backend

choose_gl_backend()

import gymnasium as _gym  # noqa: E402

from protege.sim.env import ProtegeEnv  # noqa: E402
from protege.sim.errors import IncompatibleEnvError, SimError  # noqa: E402
from protege.sim.robot import BUILTIN_ROBOTS, RobotSpec, load_robot_spec  # noqa: E402
from protege.sim.spec import EnvSpec  # noqa: E402
from protege.sim.tasks import TASKS  # noqa: E402

GYM_IDS = {name: "protege/" + "".join(p.capitalize() for p in name.split("_")) + "-v0" for name in TASKS}

for _task, _id in GYM_IDS.items():
    if _id not in _gym.registry:
        _gym.register(id=_id, entry_point="protege.sim.env:make", kwargs={"task": _task})

__all__ = ["BUILTIN_ROBOTS", "GYM_IDS", "EnvSpec", "IncompatibleEnvError", "ProtegeEnv", "RobotSpec", "SimError",
           "TASKS", "load_robot_spec"]
