"""Errors raised by the simulation package for bad user input."""


class SimError(Exception):
    """Bad sim input (unknown task or robot, malformed spec, missing file): one line for the user."""


class IncompatibleEnvError(SimError):
    """An env differs from the one a policy was trained in or a dataset was recorded in
    (:func:`protege.sim.spec.check_compatible`)."""


class UnsuitableRobotError(SimError):
    """An arm cannot serve a task (a gripper too wide for an opening the task needs, a workspace out of
    reach) or its scripted expert: said in one line, before any episode; ``reason`` is the why alone."""

    def __init__(self, robot: str, task: str, reason: str) -> None:
        super().__init__(f"robot {robot} cannot do {task}: {reason}")
        self.robot, self.task, self.reason = robot, task, reason

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return type(self), (self.robot, self.task, self.reason)
