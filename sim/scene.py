"""Scene assembly: a table with lights and cameras, the robot attached at the origin, task objects.

World frame: origin at the robot base on the table top, z up, the robot reaching along +x.
The robot's own names are prefixed with ``robot/`` in the scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from protege.sim.robot import RobotSpec, ee_frame, load_scene_robot, set_physics_options
from protege.sim.tasks.base import Task

ROBOT_PREFIX = "robot/"
CAMERAS = ("front", "wrist", "side", "top")
USERDATA_SIZE = 16
TABLE_HALF = (0.45, 0.55)  # x, y half extents of the table top
TABLE_CENTER_X = 0.3
WINDOW_VIEW_MAX = (1280, 960)  # the largest view a window renders offscreen (pixels)


@dataclass(frozen=True)
class SceneOptions:
    render_width: int = 128
    render_height: int = 128
    shadows: bool = False
    multisample: bool = False


def build_scene(robot: RobotSpec, task: Task, options: SceneOptions = SceneOptions()) -> mujoco.MjSpec:
    """An MjSpec holding table, robot (attached at the origin), cameras and the task's objects."""
    scene = mujoco.MjSpec()
    scene.modelname = f"{task.name}_{robot.name}"
    scene.nuserdata = USERDATA_SIZE  # controller state lives here, so mj_getState saves it
    set_physics_options(scene.option)
    scene.visual.global_.offwidth = max(WINDOW_VIEW_MAX[0], options.render_width)  # room for a window's main view
    scene.visual.global_.offheight = max(WINDOW_VIEW_MAX[1], options.render_height)
    scene.visual.quality.shadowsize = 2048 if options.shadows else 0
    scene.visual.quality.offsamples = 4 if options.multisample else 0
    scene.visual.headlight.ambient = [0.35, 0.35, 0.35]
    scene.visual.headlight.diffuse = [0.45, 0.45, 0.45]

    world = scene.worldbody
    world.add_light(pos=[0.3, -0.4, 1.5], dir=[0, 0.25, -1], diffuse=[0.6, 0.6, 0.6], castshadow=options.shadows)
    world.add_geom(
        name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.05], pos=[0, 0, -0.75],
        rgba=[0.35, 0.37, 0.4, 1], contype=0, conaffinity=0,
    )
    world.add_geom(
        name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[TABLE_HALF[0], TABLE_HALF[1], 0.02],
        pos=[TABLE_CENTER_X, 0, -0.02], rgba=[0.62, 0.5, 0.38, 1], friction=[0.6, 0.005, 0.0001],
    )
    cx, cy = robot.workspace.center
    world.add_camera(name="front", pos=[cx + 0.62, cy, 0.52], xyaxes=[0, 1, 0, -0.62, 0, 0.78], fovy=55)
    world.add_camera(name="side", pos=[cx, cy - 0.75, 0.42], xyaxes=[1, 0, 0, 0, 0.5, 0.86], fovy=55)
    world.add_camera(name="top", pos=[cx, cy, 0.9], xyaxes=[0, -1, 0, 1, 0, 0], fovy=50)

    attach_robot(scene, robot)
    task.build(scene, robot)
    return scene


def build_robot_only(robot: RobotSpec) -> mujoco.MjModel:
    """The robot alone at the origin, with its `ee` site: the model differential IK works on."""
    spec = mujoco.MjSpec()
    set_physics_options(spec.option)
    attach_robot(spec, robot)
    return spec.compile()


def attach_robot(scene: mujoco.MjSpec, robot: RobotSpec) -> None:
    """Attach the robot at the world origin with the `ee` site and the `wrist` camera."""
    robot_spec = load_scene_robot(robot)  # the scene's physics options: no attach conflicts
    scene.attach(robot_spec, prefix=ROBOT_PREFIX, frame=scene.worldbody.add_frame(pos=[0, 0, 0]))
    _add_ee_site_and_wrist_camera(scene, robot)


def _add_ee_site_and_wrist_camera(scene: mujoco.MjSpec, robot: RobotSpec) -> None:
    """Add the site `ee` (the end-effector frame) and the `wrist` camera, posed in that frame."""
    body, ee_pos, ee_quat = ee_frame(robot)
    parent = scene.body(ROBOT_PREFIX + body)
    parent.add_site(name="ee", pos=ee_pos, quat=ee_quat, size=[0.005, 0.005, 0.005], group=4, rgba=[1, 0.2, 0.2, 0.5])
    cam = robot.wrist_camera
    x = np.asarray(cam.xyaxes[:3], float)
    y = np.asarray(cam.xyaxes[3:], float)
    x /= np.linalg.norm(x)
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    rot_cam_in_ee = np.column_stack([x, y, np.cross(x, y)])
    rot_ee = np.zeros(9)
    mujoco.mju_quat2Mat(rot_ee, ee_quat)
    rot_ee = rot_ee.reshape(3, 3)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, (rot_ee @ rot_cam_in_ee).ravel())
    parent.add_camera(name="wrist", pos=ee_pos + rot_ee @ np.asarray(cam.pos), quat=quat, fovy=cam.fovy)
