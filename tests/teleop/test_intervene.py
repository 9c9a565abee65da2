"""Live intervention driven by posted events: who drives each frame, smooth hand-over, pause, reset, abort."""

import numpy as np
import pygame
import pytest

from protege.datasets import Dataset, EpisodeBuffer, EpisodeWriter, Source
from protege.sim import EnvSpec, ProtegeEnv
from protege.teleop.devices import Command, GamepadDevice, KeyboardDevice, load_bindings
from protege.teleop.errors import TeleopError
from protege.teleop.intervene import Intervention, run_intervention
from protege.teleop.scripted_input import ScriptedInput

POLICY_ACTION = np.array([0.0, 0.005, 0.0, 0.0, 0.0, 0.0, 0.0])
HUMAN_ACTION = np.array([-0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # "w" (forward: -x in the front view), 1 cm


class FixedPolicy:
    """Proposes one action every tick and counts how often it was asked."""

    def __init__(self, action=POLICY_ACTION):
        self.action, self.calls, self.resets = np.asarray(action, dtype=float), 0, 0

    def reset(self, seed=None):
        self.resets += 1

    def act(self, obs):
        self.calls += 1
        return self.action


@pytest.fixture
def keyboard(env, bindings):
    return KeyboardDevice(bindings.keyboard, env.action_space.high[:6])


def intervene(env, device, script, policy=None, writer=None, episodes=1, max_steps=25, **kwargs):
    """Run an intervention whose episodes end after ``max_steps`` ticks (the person's time limit)."""
    writer = writer if writer is not None else EpisodeBuffer()
    policy = policy or FixedPolicy()
    kwargs = {"realtime": False, **kwargs}
    result = run_intervention(env, policy, device, writer, episodes=episodes, seed=0, script=script,
                              success_hold=0, time_limit=max_steps / env.control_hz, **kwargs)
    return result, writer


def test_held_takeover_flags_exactly_its_frames_with_the_device_action(env, keyboard):
    policy = FixedPolicy()
    script = ScriptedInput().key(3, "w", hold=20).key(5, "left shift", hold=10)
    result, buffer = intervene(env, keyboard, script, policy)
    data = buffer.episodes[0].data
    human = np.zeros(25, dtype=bool)
    human[5:15] = True
    assert data["intervention"].tolist() == human.astype(int).tolist()
    np.testing.assert_array_equal(data["action"][human], np.tile(HUMAN_ACTION, (10, 1)))
    np.testing.assert_array_equal(data["action"][~human], np.tile(POLICY_ACTION, (15, 1)))
    assert policy.calls == 25  # asked every tick, also while the person drove
    assert result["episodes"][0]["intervened_frames"] == 10 and buffer.episodes[0].source is Source.INTERVENTION


def test_release_hands_back_and_a_second_takeover_works(env, keyboard):
    script = ScriptedInput().key(2, "left shift", hold=3).key(10, "left shift", hold=2)
    _, buffer = intervene(env, keyboard, script, max_steps=15)
    assert np.flatnonzero(buffer.episodes[0].data["intervention"]).tolist() == [2, 3, 4, 10, 11]


def test_episode_without_takeover_is_a_policy_episode(env, keyboard):
    result, buffer = intervene(env, keyboard, ScriptedInput().key(3, "w", hold=5), episodes=2, max_steps=6)
    assert [e.source for e in buffer.episodes] == [Source.POLICY] * 2
    assert [e["seed"] for e in result["episodes"]] == [0, 1] and result["intervened_frames"] == 0
    assert not any(e.data["intervention"].any() for e in buffer.episodes)


def test_hold_pose_stops_the_commanded_pose_running_ahead(env):
    def coast(hold):
        env.reset(seed=0)
        for _ in range(15):
            obs, *_ = env.step(np.array([0.02, 0, 0, 0, 0, 0, 0]))  # full speed: the command leads the arm
        if hold:
            env.hold_pose()
        start = obs["ee_pos"]
        return max(np.linalg.norm(env.step(np.zeros(7))[0]["ee_pos"] - start) for _ in range(20))

    assert coast(hold=True) < 0.003 < 0.02 < coast(hold=False)


def test_takeover_with_no_input_holds_the_arm_still(env, keyboard):
    policy = FixedPolicy([0.02, 0, 0, 0, 0, 0, 0])
    _, buffer = intervene(env, keyboard, ScriptedInput().key(15, "left shift", hold=20), policy, max_steps=35)
    ee = buffer.episodes[0].data["ee_pos"]
    assert np.linalg.norm(ee[14] - ee[4]) > 0.05  # the policy was moving fast
    drift = np.linalg.norm(ee[15:] - ee[15], axis=1).max()  # ee_pos[15]: measured when the person took over
    assert drift < 0.003, drift


def test_takeover_keeps_the_gripper_closed_until_toggled(env, keyboard):
    policy = FixedPolicy([0, 0, 0, 0, 0, 0, 1.0])  # closes the gripper
    script = ScriptedInput().key(10, "left shift", hold=20).key(22, "space")
    _, buffer = intervene(env, keyboard, script, policy, max_steps=30)
    data = buffer.episodes[0].data
    assert (data["action"][10:22, 6] == 1.0).all() and (data["action"][22:, 6] == 0.0).all()
    assert data["gripper"][10:23, 0].min() > 0.8  # never opened at the hand-over


def test_pause_freezes_the_sim_and_resume_continues(env, keyboard):
    policy = FixedPolicy()
    session = Intervention(env, policy, keyboard, EpisodeBuffer(), realtime=False, success_hold=0)
    session.run(episodes=1, max_ticks=5, script=ScriptedInput().key(4, "p"))
    frozen, asked = env.get_state(), policy.calls
    session.run(episodes=1, max_ticks=10)
    assert session.paused and session.loop.ticks == 4 and policy.calls == asked
    np.testing.assert_array_equal(env.get_state(), frozen)
    session.run(episodes=1, max_ticks=3, script=ScriptedInput().key(0, "p"))
    assert not session.paused and session.loop.ticks == 7


def test_a_pause_is_left_out_of_the_recorded_timestamps(env, keyboard):
    script = ScriptedInput().key(3, "p").key(13, "p")  # ten ticks (0.5 s at 20 Hz) paused
    _, buffer = intervene(env, keyboard, script, max_steps=8, realtime=True)
    gaps = np.diff(buffer.episodes[0].data["timestamp"])
    assert gaps.max() < 0.3, f"a frame gap of {gaps.max():.3f} s spans the pause"


def test_reset_discards_the_episode_and_draws_the_next_seed(env, keyboard):
    result, buffer = intervene(env, keyboard, ScriptedInput().key(3, "backspace"), max_steps=5)
    assert result["discarded"] == 1 and [e.seed for e in buffer.episodes] == [1]
    assert len(buffer.episodes[0].data["action"]) == 5


def test_abort_discards_the_episode_in_progress_and_keeps_saved_ones(env, keyboard, tmp_path):
    with EpisodeWriter(tmp_path / "dagger.zarr", attrs=env.env_spec.to_attrs()) as writer:
        script = ScriptedInput().key(2, "left shift", hold=3).key(12, "escape")
        result, _ = intervene(env, keyboard, script, writer=writer, episodes=3, max_steps=8)
    assert result["aborted"] and result["saved"] == 1 and result["discarded"] == 1
    data = Dataset(tmp_path / "dagger.zarr")
    assert data.num_episodes == 1 and data.episode_ends.tolist() == [8]
    assert data.meta("source").tolist() == [Source.INTERVENTION]
    assert data.load("intervention").tolist() == [0, 0, 1, 1, 1, 0, 0, 0]


def test_gamepad_takeover_button_only_while_intervening(env, bindings):
    class Pad:
        def get_instance_id(self):
            return 3

        def get_name(self):
            return "Xbox 360 Controller"

    pad = GamepadDevice(bindings, env.action_space.high[:6], Pad())
    lb = pygame.event.Event(pygame.JOYBUTTONDOWN, instance_id=3, button=pad.pad.takeover)
    pad.handle(lb)
    assert not pad.taking_over and pad.velocity()[3] != 0  # recording: LB still rolls
    pad.handle(pygame.event.Event(pygame.JOYBUTTONUP, instance_id=3, button=pad.pad.takeover))
    pad.act({})  # a tick passes
    pad.enable_takeover()
    pad.handle(lb)
    assert pad.taking_over and not pad.velocity().any()
    pad.handle(pygame.event.Event(pygame.JOYDEVICEREMOVED, instance_id=3))
    assert not pad.taking_over  # unplugged: the policy drives again


def test_takeover_key_comes_from_the_bindings_file(env, tmp_path):
    path = tmp_path / "bindings.yaml"
    path.write_text("keyboard:\n  takeover: tab\n")
    device = KeyboardDevice(load_bindings(path).keyboard, env.action_space.high[:6])
    _, buffer = intervene(env, device, ScriptedInput().key(1, "tab", hold=2), max_steps=4)
    assert buffer.episodes[0].data["intervention"].tolist() == [0, 1, 1, 0]
    path.write_text("keyboard:\n  takeover: nosuchkey\n")
    with pytest.raises(TeleopError, match="takeover: unknown key name 'nosuchkey'"):
        load_bindings(path)


def test_intervention_refuses_joint_action_space(keyboard):
    env = ProtegeEnv(EnvSpec.make(task="reach", cameras=(), action_space="joint"))
    with pytest.raises(TeleopError, match="ee_delta"):
        Intervention(env, FixedPolicy(), keyboard, EpisodeBuffer(), realtime=False)
    env.close()


def test_key_map_shows_the_takeover_and_hides_recorder_commands(env, keyboard):
    session = Intervention(env, FixedPolicy(), keyboard, EpisodeBuffer(), realtime=False)
    rows = dict(session.key_map())
    assert rows["Left Shift"] == "hold: take over" and rows["Esc"] == "abort and quit"
    assert rows["Enter"] == "start / pause" and rows["W"] == "forward" and rows["Tab"] == "speed level"
    assert not {"save", "discard", "re-record"} & set(rows.values())
    session.command(Command.SAVE)
    assert "not used" in session.message


def test_with_wait_each_episode_starts_on_the_start_key_and_the_window_ends_on_a_summary(env, keyboard):
    policy = FixedPolicy()
    script = ScriptedInput().key(5, "return").key(20, "return").key(40, "escape")
    result, buffer = intervene(env, keyboard, script, policy, episodes=2, max_steps=6, wait=True, max_ticks=100)
    assert [len(e.data["action"]) for e in buffer.episodes] == [6, 6]
    assert policy.calls == 12, "the policy is not stepped while an episode waits for its start"
    assert result["timing"]["ticks"] == 41, "after the last episode the window stays until Esc"
    assert not result["aborted"]


def test_the_view_of_a_state_only_env_is_never_recorded(env, keyboard):
    result, buffer = intervene(env, keyboard, ScriptedInput(), max_steps=4)
    assert not [key for key in buffer.episodes[0].data if key.startswith("image_")]


def test_disturbances_strike_the_window_on_the_evaluation_schedule_and_the_person_recovers(env, keyboard):
    from protege.sim.disturbances import Disturber, parse_disturbances

    disturb = parse_disturbances("default")
    schedule = Disturber(disturb)
    schedule.reset(env, 0)  # what headless evaluation draws for seed 0
    ticks = {strike.name: strike.tick for strike in schedule.strikes}
    last = max(ticks.values())
    session = Intervention(env, FixedPolicy(np.zeros(7)), keyboard, EpisodeBuffer(), realtime=False, success_hold=0,
                           time_limit=(last + 10) / env.control_hz, disturb=disturb)
    session.run(episodes=1, max_ticks=last + 1)
    assert len(session.loop.struck) == 2 and session.message.endswith("hold Left Shift to recover")
    session.run(episodes=1, script=ScriptedInput().key(0, "left shift", hold=5))  # the person takes over
    data = session.writer.episodes[0].data
    jump = np.linalg.norm(np.diff(data["object_pos"][:, :2], axis=0), axis=1)
    assert jump[ticks["object_push"] - 1] == pytest.approx(0.04, abs=0.005)  # frame k holds the obs after k ticks
    assert np.delete(jump, ticks["object_push"] - 1).max() < 0.005, "the object moved only when it was pushed"
    shove = np.linalg.norm(np.diff(data["ee_pos"], axis=0), axis=1)[ticks["arm_shove"] - 1]
    assert shove == pytest.approx(0.04, abs=0.01)
    assert session.results[0]["strikes"] == 2 and data["intervention"].tolist() == [0] * (last + 1) + [1] * 5 + [0] * 4


class DoubtfulPolicy(FixedPolicy):
    """A fixed action with a doubt that jumps to 0.9 from ``tick`` on (calls counted from 1)."""

    def __init__(self, tick):
        super().__init__()
        self.tick, self.doubt = tick, None

    def act(self, obs):
        action = super().act(obs)
        self.doubt = 0.9 if self.calls >= self.tick else 0.1
        return action


def test_a_doubtful_policy_pauses_and_asks_until_the_person_takes_over(env, keyboard):
    """The policy's 6th action is doubtful: the sim stays paused while the person waits (ticks 6-14), then
    the take-over at tick 15 answers, the person drives 4 ticks, and the policy, still doubtful, drives on
    without asking again (its doubt never fell back below the threshold)."""
    policy = DoubtfulPolicy(tick=6)
    script = ScriptedInput().key(15, "left shift", hold=4)
    result, buffer = intervene(env, keyboard, script, policy, max_steps=14, request_help=0.5)
    flags = buffer.episodes[0].data["intervention"]
    assert len(flags) == 14 and np.flatnonzero(flags).tolist() == [6, 7, 8, 9]
    assert result["intervened_frames"] == 4


def test_without_request_help_doubt_only_shows(env, keyboard):
    _, buffer = intervene(env, keyboard, ScriptedInput(), DoubtfulPolicy(tick=2), max_steps=10)
    assert len(buffer.episodes[0].data["intervention"]) == 10 and not buffer.episodes[0].data["intervention"].any()


def test_a_help_threshold_that_is_not_positive_is_refused(env, keyboard):
    with pytest.raises(TeleopError, match="--request-help takes a doubt threshold > 0"):
        intervene(env, keyboard, ScriptedInput(), request_help=0.0)
