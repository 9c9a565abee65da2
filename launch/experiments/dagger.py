"""DAgger: demos, train, roll out with an expert labelling or correcting, aggregate, retrain.

Round 0 clones the demonstrations. Each later round rolls out the previous round's policy for
``episodes_per_round`` episodes, adds the labelled frames to the aggregate dataset and trains a new
policy on all of it. Every round's policy is evaluated on the same held-out seeds.

- Scripted expert (DAgger): the expert labels every visited state (the recorded ``action`` is its
  action) and drives each tick with probability ``beta ** round`` (Ross et al.'s mixture), or, with
  ``mixing="handover"``, the policy drives until a tick drawn uniformly from the first half of the
  time limit and the expert drives from there to the end (roll in with the policy, roll out with the
  expert: the expert never alternates with the policy, so it leaves the states where the policy
  stalls by one plan, not by a tick-by-tick mix of two).
- Gated operator (HG-DAgger, simulated): the scripted expert watches the policy drive and steps in only
  when its gates fire (``gate``, :mod:`protege.teleop.runtime.gate`), drives until the policy is back
  on its path and hands back; only the frames it drove are labelled, as a person's. With
  ``compare_dagger``, full-labelling DAgger (the scripted expert, every state labelled) runs beside
  it from the same demos, so both stand on one axis of operator effort.
- A person (HG-DAgger), ``flow="live"``: the policy drives in a window and the person takes over
  live when it goes wrong (``protege.teleop.intervene``). ``flow="rewind"``: the policy's rollouts
  are recorded headlessly, then the person browses them, rewinds to where one went wrong and
  corrects from there (``protege.teleop.browser_view``), the policy resuming after. Either way only
  the frames the person drove are labelled: each intervention segment joins the aggregate as an
  episode of its own (source intervention, its parent episode and frame in RUN/interventions.zarr).

Labelled frames are the operator's effort: every demo frame, every frame the scripted expert labels,
and every frame a person or the gated operator drives. The behavioural-cloning baseline
(``compare_bc``) gets the same budget of expert-labelled frames as
plain demonstrations: after round r it clones as many demo frames as DAgger has labelled by then.
``dart_noise`` adds a second baseline at the same budget, DART-style: demos driven by the expert with
that action noise and labelled with its noise-free actions. ``disturb`` applies seeded disturbances
(:mod:`protege.sim.disturbances`) to the labelled rollouts and to every evaluation, DAgger's and the
baselines' alike; the demos stay undisturbed.

RUN/data.zarr       the aggregate dataset        RUN/round_K/   the policy trained after round K
RUN/interventions.zarr   a person's full intervention rollouts (HG-DAgger)
RUN/bc.zarr         the baseline's demos         RUN/bc_K/      the baseline at round K's budget
RUN/dart.zarr       DART's noisy demos           RUN/dart_K/    DART-style BC at round K's budget
RUN/full.zarr       full-labelling DAgger's data RUN/full_K/    its policy after round K (compare_dagger)
RUN/dagger.json     per-round figures            RUN/dagger.png success vs labelled frames
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from protege.datasets import Dataset, Episode, EpisodeWriter, Source, schema
from protege.datasets.tools import copy_episodes
from protege.launch.errors import UserError
from protege.launch.plots import plot_dagger
from protege.launch.runfiles import DaggerLog, DaggerPoint, DaggerRound, write_dagger
from protege.launch.runs import OpenRun, open_run
from protege.sim.disturbances import check_disturbances, describe
from protege.sim.errors import SimError
from protege.teleop.browser import segments
from protege.teleop.runtime.collect import collect, make_env
from protege.teleop.runtime.gate import GateConfig
from protege.teleop.runtime.loop import first_seed
from protege.teleop.runtime.rollout import RolloutSpec, run_rollouts

if TYPE_CHECKING:
    from protege.sim.disturbances import Disturbance
    from protege.sim.spec import EnvSpec
    from protege.teleop.scripted_input import ScriptedInput

EXPERTS = ("scripted", "gated", "keyboard", "gamepad")
PERSONS = ("keyboard", "gamepad")
FLOWS = ("live", "rewind")
MIXINGS = ("tick", "handover")

# Training settings of every DAgger round and of the BC baseline (--set overrides them):
# - DAgger labels states, one action each: mlp and cnn policies act on the current state alone (their
#   defaults predict one standardised action; the cnn's look at two observations, here one).
# - Actions are standardised, not min-max scaled: the expert's rare large corrections on the
#   policy's states (tilt, recovery) would stretch the range of a dimension that is nearly constant
#   in demos, and the policy's error on it, integrated every tick, tilts the gripper (on slot_push
#   the round-1 aggregate gave 4-19% success min-max scaled, 58% standardised).
# - No validation split: labelled frames are the budget being compared; success in the sim judges.
DOUBT_MEMBERS = 5  # the mlp's members when the gated operator's doubt gate needs the policy's doubt
ROUND_SETTINGS = {"cnn": ("n_obs_steps=1",)}
LABEL_SEED = 50_000  # seeds of the labelled rollouts: apart from demo seeds (0, ...) and eval seeds


@dataclass(frozen=True)
class DaggerConfig:
    task: str
    out: str
    expert: str = "scripted"
    demos_dataset: str | None = None  # initial demos to copy (required when a person is the expert); the env is theirs
    bindings: str | None = None  # device bindings YAML (a person as the expert)
    flow: str = "live"  # how a person corrects: live take-over or rewind-and-correct
    robot: str | None = None  # name or spec file (None: the demos' arm, else protege_arm)
    policy: str = "mlp"
    rounds: int = 4
    demos: int = 10
    episodes_per_round: int = 10
    mixing: str | None = None  # how the scripted expert shares control while labelling (MIXINGS; None: handover)
    beta: float = 0.5
    noise: float = 0.0  # expert action noise in the demos (labels are always noise-free)
    steps: int = 3000
    eval_episodes: int = 50
    envs: int = 1
    ray: str | None = None  # run rollouts and demo collection as Ray actors at this address ("local": start one)
    seed: int = 0
    cameras: tuple[str, ...] = ()
    image_size: int = 128
    success_hold: int = 10
    compare_bc: bool = False
    dart_noise: float | None = None  # with compare_bc: also DART-style BC from demos with this expert noise
    gate: GateConfig = GateConfig()  # the gated operator's gates (expert gated)
    compare_dagger: bool = False  # with expert gated: full-labelling DAgger beside it
    disturb: tuple[Disturbance, ...] = ()  # applied to the labelled rollouts and every evaluation
    correction_share: float | None = None  # batch share of the labelled rollouts or interventions (None: by frames)
    overrides: tuple[str, ...] = ()  # train/policy config `key=value`
    progress: bool = True
    env: EnvSpec | None = None  # the env of every round: run_dagger sets it (env_spec)

    def check(self) -> None:
        if self.expert not in EXPERTS:
            raise UserError(f"unknown expert {self.expert!r} (choose from {', '.join(EXPERTS)})")
        if self.flow not in FLOWS:
            raise UserError(f"unknown flow {self.flow!r} (choose from {', '.join(FLOWS)})")
        if self.mixing is not None and self.mixing not in MIXINGS:
            raise UserError(f"unknown mixing {self.mixing!r} (choose from {', '.join(MIXINGS)})")
        if self.mixing is not None and self.expert != "scripted":
            raise UserError(f"--mixing {self.mixing} needs the scripted expert (a person takes over when they choose)")
        if self.expert in PERSONS and self.demos_dataset is None:
            raise UserError(f"--expert {self.expert} starts from recorded demos: give them with --demos-dataset D.zarr")
        if self.expert in PERSONS and self.compare_bc:
            raise UserError("--compare-bc needs a scripted expert (it records as many demo frames as DAgger labels)")
        if "doubt" in self.gate.gates and (self.expert != "gated" or self.policy != "mlp"):
            raise UserError("the doubt gate reads the mlp's members: it needs --expert gated and --policy mlp")
        if self.compare_dagger and self.expert != "gated":
            raise UserError("--compare-dagger compares the gated operator with full labelling: it needs --expert gated")
        for name in ("rounds", "demos", "episodes_per_round", "steps", "eval_episodes", "envs"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.beta <= 1.0:
            raise UserError(f"--beta must be in [0, 1], got {self.beta}")
        if self.beta != DaggerConfig.beta and self.mixing != "tick":
            raise UserError(f"--beta {self.beta:g}: only with --mixing tick (the expert's share of each tick)")
        person_only = [flag for flag, given in (("--bindings", self.bindings is not None),
                                                ("--flow", self.flow != DaggerConfig.flow)) if given]
        if person_only and self.expert not in PERSONS:
            raise UserError(f"{', '.join(person_only)}: only with a person as the expert (--expert keyboard|gamepad)")
        if not 0 <= self.noise < math.inf:
            raise UserError(f"--noise must be >= 0 and finite, got {self.noise}")
        if self.dart_noise is not None and (not 0 < self.dart_noise < math.inf or not self.compare_bc):
            raise UserError(f"--compare-dart takes a noise > 0 and needs --compare-bc, got {self.dart_noise}")
        if self.correction_share is not None and not 0.0 < self.correction_share < 1.0:
            raise UserError(f"--correction-share must be in (0, 1), got {self.correction_share}")
        self._check_overrides()

    def _check_overrides(self) -> None:
        """``--set``'s keys, values and the training counts they give, refused before round 0 collects demos."""
        from protege.policies.base import POLICIES
        from protege.policies.config import TrainConfig, apply_overrides

        train_config = TrainConfig(steps=self.steps)
        apply_overrides([train_config, POLICIES[self.policy].config_class()], list(self.overrides))
        train_config.check()


def env_spec(config: DaggerConfig) -> EnvSpec:
    """The env every round runs in: the demo set's (task, arm, rate, cameras, image size, action space),
    refused in one line if it is not ``config``'s task or arm, or the scripted expert cannot drive it;
    else ``config``'s at 20 Hz."""
    from protege.sim import EnvSpec
    from protege.sim.experts import check_expert
    from protege.sim.robot import DEFAULT_ROBOT

    try:
        if config.demos_dataset is None:
            spec = EnvSpec.make(config.task, config.robot or DEFAULT_ROBOT, config.cameras, config.image_size)
        else:
            spec = EnvSpec.from_attrs(Dataset(config.demos_dataset).attrs).with_robot(config.robot).resolved()
            if spec.task != config.task:
                raise UserError(f"{config.demos_dataset} holds task {spec.task!r}, not {config.task!r}")
        if config.expert not in PERSONS:
            check_expert(spec)
    except SimError as exc:
        raise UserError(f"{config.demos_dataset or 'dagger'}: {exc}") from None
    return spec


def _env(config: DaggerConfig) -> EnvSpec:
    assert config.env is not None, "run_dagger sets the env spec first"
    return config.env


def _train(config: DaggerConfig, dataset: Path, out: Path) -> float:
    """Train a fresh policy on ``dataset`` into ``out``; return its final training loss."""
    from protege.policies.base import POLICIES
    from protege.policies.config import TrainConfig, apply_overrides
    from protege.policies.data import ON_POLICY_SOURCES
    from protege.policies.trainer import train

    train_config = TrainConfig(dataset=str(dataset), out=str(out), policy=config.policy, steps=config.steps,
                               seed=config.seed, progress=config.progress)
    policy_config = POLICIES[config.policy].config_class()
    defaults = ["val_ratio=0", *ROUND_SETTINGS.get(config.policy, ())]
    if config.expert == "gated" and "doubt" in config.gate.gates:
        defaults.append(f"members={DOUBT_MEMBERS}")
    if config.correction_share is not None and np.isin(Dataset(str(dataset)).meta("source"), ON_POLICY_SOURCES).any():
        defaults.append(f"correction_share={config.correction_share}")
    apply_overrides([train_config, policy_config], [*defaults, *config.overrides])
    return train(train_config, policy_config).train_loss


def _open(config: DaggerConfig, run_dir: Path, window: bool = False) -> OpenRun:
    """A round's (or baseline's) training run, checked against the DAgger run's env; in a person's ``window``
    a chunked policy computes its chunks in a worker thread."""
    return open_run(run_dir, robot=config.robot, env=_env(config), delay=None if window else 0)


def _spec(config: DaggerConfig, run_dir: Path, **kwargs: Any) -> RolloutSpec:
    run = _open(config, run_dir)
    return RolloutSpec(run.env, run.make_policy, success_hold=config.success_hold, disturb=config.disturb, **kwargs)


def _evaluate(config: DaggerConfig, run_dir: Path) -> dict[str, Any]:
    """The evaluation fields of a :class:`DaggerPoint`."""
    summary = _open(config, run_dir).evaluate(config.eval_episodes, envs=config.envs, disturb=config.disturb,
                                              success_hold=config.success_hold, progress=config.progress,
                                              ray=config.ray).summary
    return {"success_rate": summary.success_rate, "ci95": summary.ci95, "mean_length": summary.mean_length,
            "strikes": summary.strikes}


def _frames(dataset: Path) -> int:
    return Dataset(str(dataset)).num_frames


def beta_schedule(beta: float, round_index: int) -> float:
    """The expert's share of control when labelling in round ``round_index`` (>= 1)."""
    return beta**round_index


def run_dagger(config: DaggerConfig, scripts: Callable[[int], Any] | None = None,
               notify: Callable[[str], None] = lambda line: None) -> DaggerLog:
    """Run every round, writing RUN/dagger.json (and the plot) after each so a crash loses one round at most.

    ``scripts(round)`` replaces the person (tests, headless runs): a :class:`ScriptedInput` of posted
    events for the live flow (the window then runs as fast as it can), a list of
    :class:`~protege.teleop.correct.Correction` for the rewind flow. ``notify`` gets a line as each
    round starts and each round's figures as it ends.
    """
    config.check()
    if config.expert in PERSONS and scripts is None:
        from protege.teleop.display import require_display

        require_display("dagger")  # before round 0 trains, not after
    run = Path(config.out)
    if run.is_dir() and any(run.iterdir()):
        held = ("a DAgger run" if (run / "dagger.json").exists() or (run / "data.zarr").exists()
                else "a training run" if (run / "config.json").exists() else "other files")
        raise UserError(f"{run} already holds {held}: choose a new --out")
    config = dataclasses.replace(config, env=env_spec(config))
    try:
        check_disturbances(config.disturb, _env(config))
    except SimError as exc:
        raise UserError(f"--disturb: {exc}") from None
    run.mkdir(parents=True, exist_ok=True)
    data = run / "data.zarr"
    log = DaggerLog(task=config.task, policy=config.policy, expert=config.expert, rounds=(), robot=_env(config).robot,
                    disturb=describe(config.disturb),
                    config={**dataclasses.asdict(config), "disturb": describe(config.disturb)})
    if config.demos_dataset is not None:
        demos = Dataset(config.demos_dataset)
        copy_episodes([(demos, np.arange(demos.num_episodes))], str(data), "dagger demos")
        episodes, labelled = _episodes(data), _frames(data)
    else:
        demos = collect(config.env, str(data), config.demos, noise=config.noise, success_hold=config.success_hold,
                        workers=config.envs, seed=config.seed, progress=config.progress, ray=config.ray)
        episodes, labelled = config.demos, demos["frames"]
    for r in range(config.rounds):
        notify(f"round {r} of {config.rounds - 1}: " + ("training on the demos" if r == 0 else
                                                        "labelling rollouts, training, evaluating"))
        added, takeovers = 0, None
        if r > 0:
            if config.expert == "scripted":
                added = _expert_labels(config, run / f"round_{r - 1}", data, r)
            elif config.expert == "gated":
                added, takeovers = _gated_labels(config, run, r)
            elif config.flow == "live":
                added = _person_labels(config, run, r, scripts(r) if scripts else None)
            else:
                added = _person_corrections(config, run, r, scripts(r) if scripts else None)
            labelled += added
            episodes = _episodes(data)
        loss = _train(config, data, run / f"round_{r}")
        point = DaggerRound(round=r, labelled_frames=labelled, episodes=episodes, run=f"round_{r}", train_loss=loss,
                            added_frames=added, beta=_round_beta(config, r), takeovers=takeovers,
                            **_evaluate(config, run / f"round_{r}"))
        log = dataclasses.replace(log, rounds=(*log.rounds, point))
        write_dagger(run, log)
        if config.compare_bc:
            bc = _bc_point(config, run, r, labelled, log.rounds[0], "bc", config.noise)
            log = dataclasses.replace(log, bc=(*log.bc, bc))
            write_dagger(run, log)
        if config.dart_noise is not None:
            dart = _bc_point(config, run, r, labelled, None, "dart", config.dart_noise)
            log = dataclasses.replace(log, dart=(*log.dart, dart))
            write_dagger(run, log)
        if config.compare_dagger:
            log = dataclasses.replace(log, full=(*log.full, _full_point(config, run, r, log.rounds[0])))
            write_dagger(run, log)
        plot_dagger(log, run / "dagger.png")
        notify(round_line(log, r))
    return log


def round_line(log: DaggerLog, r: int) -> str:
    """Round r's figures in one line: DAgger's success and labels, and the baselines' at that budget."""
    point = log.rounds[r]
    line = f"round {r}: {point.labelled_frames} labelled frames, success {100 * point.success_rate:.1f}%"
    if point.takeovers is not None:
        line += f" ({point.takeovers:.2f} takeovers per episode)"
    for points, name in ((log.full, "full DAgger"), (log.bc, "BC"), (log.dart, "DART")):
        other = next((p for p in points if p.round == r), None)
        if other is not None:
            line += f"; {name} with {other.labelled_frames} frames: {100 * other.success_rate:.1f}%"
    return line


def _label_seed(config: DaggerConfig, r: int) -> int:
    """Round r's first rollout seed: one block of seeds per round, from LABEL_SEED on and past every demo seed."""
    if config.demos_dataset is not None:
        first = first_seed(config.demos_dataset, None, start=LABEL_SEED)
    else:
        first = max(LABEL_SEED, config.seed + config.demos)
    return first + (r - 1) * config.episodes_per_round


def _round_beta(config: DaggerConfig, r: int) -> float | None:
    """The expert's per-tick share of control in round r's rollouts (None: it takes over at a random tick)."""
    if r == 0 or config.expert != "scripted":
        return 1.0
    return beta_schedule(config.beta, r) if config.mixing == "tick" else None  # None: hand-over mixing


def _expert_labels(config: DaggerConfig, policy_run: Path, data: Path, r: int) -> int:
    """Roll out ``policy_run``'s policy (round r-1's) with the scripted expert labelling every state into
    ``data``; frames added."""
    handover = config.mixing != "tick"
    spec = _spec(config, policy_run, record=True,
                 expert_beta=0.0 if handover else beta_schedule(config.beta, r), expert_handover=handover)
    rollouts = run_rollouts(spec, config.episodes_per_round, seed=_label_seed(config, r), envs=config.envs,
                            record_to=str(data), progress=config.progress, ray=config.ray)
    return sum(e.length for e in rollouts.episodes)


def _gated_labels(config: DaggerConfig, run: Path, r: int) -> tuple[int, float]:
    """The gated operator watches round r-1's policy in RUN/interventions.zarr; the segments it drove join
    RUN/data.zarr. Frames added and take-overs per episode."""
    rollouts = run / "interventions.zarr"
    first = _episodes(rollouts)
    spec = _spec(config, run / f"round_{r - 1}", record=True, gate=config.gate)
    result = run_rollouts(spec, config.episodes_per_round, seed=_label_seed(config, r), envs=config.envs,
                          record_to=str(rollouts), progress=config.progress, ray=config.ray)
    takeovers = sum(e.takeovers for e in result.episodes) / len(result.episodes)
    return aggregate_interventions(rollouts, first, run / "data.zarr"), round(takeovers, 3)


def _full_point(config: DaggerConfig, run: Path, r: int, first: DaggerRound) -> DaggerPoint:
    """Full-labelling DAgger from the gated run's demos (``first``: its round 0, which stands for this
    arm's), round r: RUN/full.zarr and RUN/full_r."""
    if r == 0:
        return DaggerPoint(**{f.name: getattr(first, f.name) for f in dataclasses.fields(DaggerPoint)})
    data = run / "full.zarr"
    if not data.exists():
        copy_episodes([(Dataset(str(run / "data.zarr")), np.arange(first.episodes))], str(data), "full DAgger demos")
    _expert_labels(config, run / ("round_0" if r == 1 else f"full_{r - 1}"), data, r)
    loss = _train(config, data, run / f"full_{r}")
    return DaggerPoint(round=r, labelled_frames=_frames(data), episodes=_episodes(data), run=f"full_{r}",
                       train_loss=loss, **_evaluate(config, run / f"full_{r}"))


def _person_labels(config: DaggerConfig, run: Path, r: int, script: ScriptedInput | None) -> int:
    """A person watches round r-1's policy and takes over; their segments join RUN/data.zarr. Frames added."""
    from protege.teleop.devices import load_bindings, make_device
    from protege.teleop.intervene import run_intervention
    from protege.teleop.runtime.loop import person_time_limit

    env = make_env(_env(config))
    device = make_device(config.expert, load_bindings(config.bindings), env.action_space.high[:6])
    person = script is None  # a person gets a person's time per episode, a script the task's
    policy = _open(config, run / f"round_{r - 1}", window=person).make_policy()
    rollouts = run / "interventions.zarr"
    first = _episodes(rollouts)
    with EpisodeWriter(str(rollouts), attrs=_env(config).to_attrs(), background=True) as writer:
        run_intervention(env, policy, device, writer, config.episodes_per_round, _label_seed(config, r),
                         realtime=person, script=script, success_hold=config.success_hold, wait=person,
                         time_limit=person_time_limit(env, None) if person else None, disturb=config.disturb)
    env.close()
    return aggregate_interventions(rollouts, first, run / "data.zarr")


def _person_corrections(config: DaggerConfig, run: Path, r: int, corrections: list[Any] | None) -> int:
    """Round r-1's policy rolls out headlessly into RUN/interventions.zarr; the person browses the
    rollouts, rewinds and corrects (the policy resuming after); the corrections join RUN/data.zarr."""
    rollouts = run / "interventions.zarr"
    first = _episodes(rollouts)
    spec = _spec(config, run / f"round_{r - 1}", record=True)
    run_rollouts(spec, config.episodes_per_round, seed=_label_seed(config, r), envs=config.envs,
                 record_to=str(rollouts), progress=config.progress, ray=config.ray)
    policy = _open(config, run / f"round_{r - 1}", window=corrections is None).make_policy()
    if corrections is not None:
        from protege.teleop.correct import run_script

        run_script(str(rollouts), corrections, policy=policy, success_hold=config.success_hold)
    else:
        from protege.teleop.browser import BrowserModel
        from protege.teleop.browser_view import BrowserApp, RewindOptions
        from protege.teleop.devices import load_bindings

        rewind = RewindOptions(device=config.expert, policy=policy, bindings=load_bindings(config.bindings),
                               success_hold=config.success_hold)
        BrowserApp(BrowserModel(str(rollouts)), rewind).run()
    return aggregate_interventions(rollouts, first, run / "data.zarr")


def aggregate_interventions(source: Path, first_episode: int, dest: Path) -> int:
    """Append every intervention segment of ``source``'s episodes from ``first_episode`` on to ``dest``
    as an episode of its own; return the frames added."""
    ds = Dataset(str(source))
    seeds, successes = ds.meta("seed"), ds.meta("success")
    added = 0
    with EpisodeWriter(str(dest), attrs=schema.user_attrs(ds.attrs)) as writer:
        for episode in range(first_episode, ds.num_episodes):
            frames = ds.episode(episode).data
            for start, end in segments(frames["intervention"]):
                writer.add_episode(Episode({k: v[start:end] for k, v in frames.items()}, seed=int(seeds[episode]),
                                           success=bool(successes[episode]), source=Source.INTERVENTION,
                                           meta={"parent_episode": episode, "parent_frame": start}))
                added += end - start
    return added


def _episodes(dataset: Path) -> int:
    """Episodes saved in ``dataset`` (0 before it exists)."""
    return Dataset(str(dataset)).num_episodes if dataset.exists() else 0


def _bc_point(config: DaggerConfig, run: Path, r: int, budget: int, first: DaggerRound | None, name: str,
              noise: float) -> DaggerPoint:
    """Behavioural cloning on expert demos (with action ``noise``) totalling at least ``budget`` labelled
    frames, in RUN/{name}.zarr and RUN/{name}_{r}; ``first`` (DAgger's round 0) stands for round 0 if given."""
    if r == 0 and first is not None:  # the same demos and training as DAgger's round 0
        return DaggerPoint(**{f.name: getattr(first, f.name) for f in dataclasses.fields(DaggerPoint)})
    data, dart = run / f"{name}.zarr", name == "dart"  # DART's demos record the noise-free actions
    if not data.exists():  # the same seeds as DAgger's demos
        collect(_env(config), str(data), config.demos, noise=noise, success_hold=config.success_hold,
                workers=config.envs, seed=config.seed, progress=False, ray=config.ray, dart=dart)
    while (frames := _frames(data)) < budget:
        ds = Dataset(str(data))
        per_episode = frames / ds.num_episodes
        more = max(1, math.ceil((budget - frames) / per_episode))
        collect(_env(config), str(data), more, noise=noise, success_hold=config.success_hold,
                workers=config.envs, seed=config.seed + ds.num_episodes, progress=False, ray=config.ray, dart=dart)
    episodes = Dataset(str(data)).num_episodes
    loss = _train(config, data, run / f"{name}_{r}")
    return DaggerPoint(round=r, labelled_frames=_frames(data), episodes=episodes, run=f"{name}_{r}", train_loss=loss,
                       **_evaluate(config, run / f"{name}_{r}"))

