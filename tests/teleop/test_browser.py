"""Episode browser and rewind-and-correct: exact restore, scripted corrections, the model over mixed sources."""

import itertools
import shutil
from pathlib import Path

import numpy as np
import pygame
import pytest

from protege.datasets import Dataset, Episode, EpisodeWriter, Source
from protege.datasets.schema import user_attrs
from protege.launch.cli import main
from protege.sim import EnvSpec, IncompatibleEnvError
from protege.teleop.browser import BrowserModel, segments
from protege.teleop.browser_view import BrowserApp, BrowserView, RewindOptions
from protege.teleop.correct import Rewinder, parse_corrections, run_script
from protege.teleop.errors import TeleopError
from protege.teleop.runtime.collect import collect, make_env
from protege.teleop.runtime.loop import ControlLoop
from protege.teleop.runtime.pilots import PolicyPilot
from protege.teleop.window import BACKGROUND, ORANGE

SPEC = EnvSpec.make("lift", cameras=("front",), image_size=32)
TAKEOVER = (5, 10)  # frames a person drove in the policy episode
VIEW = (240, 180)  # the browser's main view in these tests: small, fast


class Hold:
    """A policy that holds still with the gripper open."""

    def reset(self, seed=None):
        pass

    def act(self, obs):
        return np.zeros(7)


class Takeover:
    """A person who drives (+x) during the ticks of TAKEOVER, and lets the policy drive otherwise."""

    kind = "human"

    def reset(self, seed=None):
        self.t = 0

    def act(self, obs):
        self.t += 1
        return np.array([0.01, 0, 0, 0, 0, 0, 0]) if TAKEOVER[0] < self.t <= TAKEOVER[1] else None


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Two expert demos, a policy rollout with a takeover in the middle, and a plain policy rollout."""
    path = tmp_path_factory.mktemp("browse") / "mixed.zarr"
    collect(SPEC, str(path), 2, noise=0.3, success_hold=3, seed=3, progress=False)
    env = make_env(SPEC)
    with EpisodeWriter(path, attrs=SPEC.to_attrs()) as writer:
        for pilots, seed in (([Takeover(), PolicyPilot(Hold())], 10), ([PolicyPilot(Hold())], 11)):
            loop = ControlLoop(env, pilots, writer=writer, realtime=False, success_hold=0)
            loop.run_episode(seed=seed, max_ticks=16)
            loop.save()
    env.close()
    return path


@pytest.fixture
def dataset(tmp_path, mixed):
    """A copy of ``mixed`` to write corrections into."""
    return shutil.copytree(mixed, tmp_path / "mixed.zarr")


@pytest.fixture
def nostate(tmp_path, mixed):
    ds = Dataset(mixed)
    path = tmp_path / "nostate.zarr"
    with EpisodeWriter(path, attrs=user_attrs(ds.attrs)) as writer:
        data = {key: ds[key][ds.episode_slice(0)] for key in ds.keys if key != "sim_state"}
        writer.add_episode(Episode(data, seed=3, success=True, source=Source.EXPERT))
    return path


def test_restoring_a_frame_reproduces_the_recorded_observation_exactly(mixed):
    ds = Dataset(mixed)
    rewinder = Rewinder(ds)
    for episode, frame in ((0, 0), (0, 7), (2, TAKEOVER[1]),
                           (1, ds.episode_slice(1).stop - ds.episode_slice(1).start - 1)):
        obs, _ = rewinder.restore(episode, frame)
        recorded = rewinder.recorded(episode, frame)
        for key, value in obs.items():
            np.testing.assert_array_equal(value, recorded[key], err_msg=f"{key} at episode {episode} frame {frame}")
        np.testing.assert_array_equal(rewinder.env.get_state(), recorded["sim_state"])
    rewinder.close()


def test_a_scripted_correction_writes_one_episode_that_starts_at_the_restored_state(dataset):
    before = Dataset(dataset)
    result = run_script(dataset, parse_corrections([{"episode": 2, "frame": 6, "source": "expert", "ticks": 5}]))
    ds = Dataset(dataset)
    assert ds.num_episodes == before.num_episodes + 1
    new = result["corrections"][0]["new_episode"]
    assert new == before.num_episodes and ds.meta("source")[new] == Source.INTERVENTION
    assert (ds.meta("parent_episode")[new], ds.meta("parent_frame")[new]) == (2, 6)
    assert ds.meta("parent_episode")[:new].tolist() == [-1] * new  # earlier episodes are no correction
    first = ds["sim_state"][ds.episode_slice(new).start]
    np.testing.assert_array_equal(first, before["sim_state"][before.episode_slice(2).start + 6])
    assert ds.meta("seed")[new] == before.meta("seed")[2]
    assert ds["intervention"][ds.episode_slice(new)].tolist() == [1] * 5
    for key in before.keys:  # the parent episodes are untouched
        np.testing.assert_array_equal(ds[key][: before.num_frames], before[key][:], err_msg=key)


def test_the_policy_resumes_after_the_correction(dataset):
    ds = Dataset(dataset)
    rewinder = Rewinder(ds)
    from protege.teleop.correct import CorrectionSession, make_corrector

    session = CorrectionSession(rewinder, 0, 4, make_corrector("expert", rewinder.env), policy=Hold(), ticks=3,
                                success_hold=0)
    session.run()
    take = session.take()
    flags = take.data["intervention"].tolist()
    remaining = rewinder.env.max_steps - round(ds["timestamp"][4] * ds.fps)
    assert flags[:3] == [1, 1, 1] and set(flags[3:]) == {0} and len(flags) == remaining
    np.testing.assert_array_equal(take.data["action"][3:], 0.0)  # the policy's actions after the hand-back
    rewinder.close()


def test_keyboard_correction_is_driven_by_posted_key_events(dataset):
    script = [{"episode": 0, "frame": 2, "source": "keyboard", "ticks": 6, "keys": [[1, "w", 3]]}]
    run_script(dataset, parse_corrections(script))
    ds = Dataset(dataset)
    action = ds["action"][ds.episode_slice(-1)]
    assert (action[1:4, 0] < 0).all() and (action[[0, 4, 5], 0] == 0).all()  # W: forward, -x in the front view
    assert ds.meta("source")[-1] == Source.INTERVENTION


def test_the_model_shows_every_source_with_success_length_and_segments(mixed):
    model = BrowserModel(mixed)
    assert model.sources == {"expert": 2, "intervention": 1, "policy": 1}
    assert [e.source for e in model.episodes] == ["expert", "expert", "intervention", "policy"]
    assert [e.length for e in model.episodes] == np.diff(np.concatenate([[0], Dataset(mixed).episode_ends])).tolist()
    assert model.episodes[0].success and not model.episodes[3].success
    assert model.intervention_segments(2) == [TAKEOVER]
    assert model.intervention_segments(3) == []  # the policy drove throughout
    assert model.intervention_segments(0) == []  # a scripted demo: one driver throughout, nothing changed hands
    model.select(2)
    assert model.images()["front"].shape == (32, 32, 3) and model.frame_values()["action"].shape == (7,)


def test_playback_moves_at_the_chosen_speed_and_pauses_at_the_end(mixed):
    model = BrowserModel(mixed)
    model.select(2)
    model.toggle_play()
    assert model.advance(0.25) == 5  # 20 fps
    model.faster()
    assert model.speed == 2.0 and model.advance(0.1) == 4
    model.advance(10.0)
    assert model.frame == model.length - 1 and not model.playing
    model.step(-3)
    assert model.frame == model.length - 4
    model.scrub_fraction(0.0)
    model.step(-1)
    assert model.frame == 0


def test_segments_are_half_open_ranges():
    assert segments(np.array([0, 1, 1, 0, 1])) == [(1, 3), (4, 5)]
    assert segments(np.zeros(4)) == []


def post_key(app, key):
    app.handle(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))


def test_browser_window_corrects_with_the_expert_and_shows_the_new_episode(dataset):
    model = BrowserModel(dataset)
    model.select(3)
    model.scrub(6)
    app = BrowserApp(model, RewindOptions(), view_size=VIEW)
    post_key(app, pygame.K_x)
    assert app.session is not None and app.session.driver == "expert"
    for _ in range(4):
        app.step_correction()
    app.draw()
    post_key(app, pygame.K_y)
    assert app.session is None and app.saved == [4]
    assert model.episode == 4 and model.entry.source == "intervention" and model.entry.parent == (3, 6)
    assert model.entry.length == 4
    app.draw()  # the new episode's scene
    np.testing.assert_array_equal(app.rewinder.env.get_state(), Dataset(dataset)["sim_state"][-4])
    post_key(app, pygame.K_x)  # a correction of the correction
    assert app.session is not None and app.session.episode == 4
    app.close()


def view_pixels(app):
    return pygame.surfarray.array3d(app.view.surface.subsurface(app.view.view_rect)).copy()


def test_the_main_view_shows_the_recorded_state_of_each_frame(mixed):
    ds = Dataset(mixed)
    model = BrowserModel(mixed)
    app = BrowserApp(model, RewindOptions(), view_size=VIEW)
    assert app.view.view_rect == app.scene.rect and app.scene.cameras == ("front",)
    shown = []
    for episode, frame in ((0, 0), (0, 12), (1, 12), (1, 13)):
        model.select(episode)
        model.scrub(frame)
        app.draw()
        np.testing.assert_array_equal(app.rewinder.env.get_state(),
                                      ds["sim_state"][ds.episode_slice(episode).start + frame])
        shown.append(view_pixels(app))
    assert shown[0].mean() > 40 and shown[0].std() > 15, "the main view is dark or flat"
    steps = [np.abs(a.astype(int) - b).mean() for a, b in itertools.pairwise(shown)]
    assert min(steps) > 0.5, f"every frame shows its own state: {steps}"
    app.close()


def test_the_timeline_cursor_follows_a_correction_and_the_status_fits(dataset):
    model = BrowserModel(dataset)
    model.select(3)
    model.scrub(2)
    app = BrowserApp(model, RewindOptions(), view_size=VIEW)
    post_key(app, pygame.K_c)  # the keyboard: the take waits for the first key
    before = view_pixels(app.draw() or app)
    app.session.hand_over.pilot.handle(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r, mod=0, unicode="",
                                                          scancode=0))
    for _ in range(5):
        app.step_correction()
    app.draw()
    assert app.session.loop.ticks == 5
    surface, view = app.view.surface, app.view
    assert tuple(surface.get_at((view._x(7), view.plot_rect.top + 10)))[:3] == ORANGE
    assert np.abs(view_pixels(app).astype(int) - before).mean() > 0.5, "driving moves the arm in the main view"
    hud = pygame.surfarray.array3d(surface)[-10:, view.hud_top:]  # the window's right margin, HUD rows
    assert (hud == BACKGROUND).all(), "the status lines must end inside the window"
    app.close()


@pytest.fixture
def ghost(tmp_path, mixed) -> Path:
    """One episode of ``mixed`` in a dataset whose arm no spec can be found for."""
    ds = Dataset(mixed)
    path = tmp_path / "ghost.zarr"
    attrs = {**user_attrs(ds.attrs), "robot": "ghost_arm", "robot_source": "ghost_arm"}
    with EpisodeWriter(path, attrs=attrs) as writer:
        writer.add_episode(Episode({k: ds[k][ds.episode_slice(0)] for k in ds.keys}, seed=3, success=True,
                                   source=Source.EXPERT))
    return path


def test_a_dataset_whose_env_cannot_be_built_shows_its_cameras_and_says_why(ghost):
    model = BrowserModel(ghost)
    app = BrowserApp(model, RewindOptions(), view_size=VIEW)
    assert app.scene is None and "unknown robot 'ghost_arm'" in model.message
    app.draw()
    post_key(app, pygame.K_x)
    assert app.session is None and model.message.startswith("cannot correct: ") and "ghost_arm" in model.message
    app.close()


def test_browser_window_without_sim_state_says_so_and_keeps_browsing(nostate):
    model = BrowserModel(nostate)
    app = BrowserApp(model, RewindOptions(), view_size=VIEW)
    assert app.scene is None
    app.draw()
    post_key(app, pygame.K_c)
    assert app.session is None and "rewind needs sim_state" in model.message
    post_key(app, pygame.K_RIGHT)
    assert model.frame == 1
    app.close()


def test_view_draws_state_plots_and_coloured_segments_without_images(tmp_path, mixed):
    ds = Dataset(mixed)
    path = tmp_path / "lowdim.zarr"
    attrs = {**user_attrs(ds.attrs), "cameras": [], "image_size": []}
    with EpisodeWriter(path, attrs=attrs) as writer:
        frames = ds.episode_slice(2)
        writer.add_episode(Episode({k: ds[k][frames] for k in ds.keys if not k.startswith("image_")}, seed=10,
                                   success=False, source=Source.INTERVENTION))
    model = BrowserModel(path)
    assert model.cameras == []
    view = BrowserView(model, pygame.Surface(BrowserView.window_size(model, VIEW)))
    view.draw()
    bar = view.timeline_rect
    middle = view._x((TAKEOVER[0] + TAKEOVER[1] - 1) / 2)
    assert tuple(view.surface.get_at((middle, bar.centery)))[:3] == ORANGE
    assert tuple(view.surface.get_at((view._x(1), bar.centery)))[:3] != ORANGE


def test_script_on_a_dataset_without_sim_state_writes_nothing(nostate):
    before = Dataset(nostate).num_episodes
    with pytest.raises(TeleopError, match="rewind needs sim_state"):
        run_script(nostate, parse_corrections([{"episode": 0, "frame": 1}]))
    assert Dataset(nostate).num_episodes == before


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("- {episode: 0, frame: 999}\n", "frame 999 out of range"),
        ("- {episode: 9, frame: 0}\n", "episode 9 out of range"),
        ("- {episode: 0, frame: 1, source: mouse}\n", "unknown source 'mouse'"),
        ("[]\n", "non-empty list"),
    ],
)
def test_bad_script_is_one_line_and_writes_nothing(tmp_path, dataset, capsys, script, expected):
    path = tmp_path / "fix.yaml"
    path.write_text(script)
    before = Dataset(dataset).num_episodes
    assert main(["browse", str(dataset), "--script", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert Dataset(dataset).num_episodes == before


def test_robot_not_found_is_one_line_and_writes_nothing(tmp_path, ghost, capsys):
    script = tmp_path / "fix.json"
    script.write_text('[{"episode": 0, "frame": 2, "source": "expert", "ticks": 3}]')
    assert main(["browse", str(ghost), "--script", str(script)]) == 2
    err = capsys.readouterr().err
    assert "unknown robot 'ghost_arm'" in err and err.count("\n") == 1
    assert Dataset(ghost).num_episodes == 1


def test_corrections_go_to_another_dataset_with_out(tmp_path, dataset):
    before = Dataset(dataset).num_episodes
    out = tmp_path / "fixes.zarr"
    run_script(dataset, parse_corrections([{"episode": 1, "frame": 3, "ticks": 2}]), out=str(out))
    fixes = Dataset(out)
    assert Dataset(dataset).num_episodes == before and fixes.num_episodes == 1
    assert fixes.attrs["cameras"] == ["front"] and fixes.meta("parent_episode").tolist() == [1]


def test_an_out_dataset_of_another_task_is_refused_before_any_work(tmp_path, dataset):
    out = tmp_path / "push.zarr"
    with EpisodeWriter(out, attrs={**user_attrs(Dataset(dataset).attrs), "task": "push", "cameras": []}) as writer:
        writer.add_episode(Episode({"action": np.zeros((2, 7))}, seed=0, success=False, source=Source.HUMAN))
    with pytest.raises(IncompatibleEnvError, match="holds episodes of task 'push', not 'lift'"):
        run_script(dataset, parse_corrections([{"episode": 1, "frame": 3, "ticks": 2}]), out=str(out))
    assert Dataset(out).num_episodes == 1


def test_a_correction_waits_for_the_first_input_and_records_no_idle_ticks(dataset, bindings):
    from protege.teleop.correct import CorrectionSession, make_corrector

    rewinder = Rewinder(Dataset(dataset))
    device = make_corrector("keyboard", rewinder.env, bindings)
    session = CorrectionSession(rewinder, 0, 3, device, ticks=4, success_hold=0, wait_for_input=True, time_limit=0)
    for _ in range(5):  # the person reads the screen
        session.step()
    assert session.waiting and session.loop.ticks == 0
    device.handle(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r, mod=0, unicode="", scancode=0))
    while not session.ended:
        session.step()
    take = session.take()
    assert len(take.data["action"]) == 4 and (take.data["action"][:, 2] > 0).all()
    assert take.data["timestamp"][0] == 0.0
    np.testing.assert_array_equal(take.data["sim_state"][0], Dataset(dataset)["sim_state"][3])
    rewinder.close()
