"""DAgger with the scripted expert: demos, train, roll out with the expert labelling, aggregate, retrain.

Round 0 clones ``demos`` expert demonstrations. Each later round rolls out the previous round's policy
for ``episodes_per_round`` episodes; the expert labels every visited state (the recorded ``action``
is its action) and drives each tick with probability ``beta ** round`` (Ross et al.'s mixture,
decaying geometrically); those frames join the aggregate dataset and a new policy is trained on
all of it. Every round's policy is evaluated on the same held-out seeds.

The behavioural-cloning baseline (``compare_bc``) gets the same budget of expert-labelled frames as
plain demonstrations: after round r it clones as many demo frames as DAgger has labelled by then.

RUN/data.zarr       the aggregate dataset        RUN/round_K/   the policy trained after round K
RUN/bc.zarr         the baseline's demos         RUN/bc_K/      the baseline at round K's budget
RUN/dagger.json     per-round figures            RUN/dagger.png success vs labelled frames
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protege.launch.cmd_rollout import EVAL_SEED, load_for_rollout
from protege.launch.errors import UserError
from protege.teleop.collect import collect
from protege.teleop.rollout import RolloutSpec, run_rollouts

LABEL_SEED = 50_000  # seeds of the labelled rollouts: apart from demo seeds (0, ...) and eval seeds


@dataclass
class DaggerConfig:
    task: str
    out: str
    robot: str = "protege_arm"
    policy: str = "mlp"
    rounds: int = 4
    demos: int = 10
    episodes_per_round: int = 10
    beta: float = 0.5
    noise: float = 0.0  # expert action noise in the demos (labels are always noise-free)
    steps: int = 3000
    eval_episodes: int = 50
    envs: int = 1
    seed: int = 0
    cameras: list[str] = field(default_factory=list)
    image_size: int = 128
    success_hold: int = 10
    compare_bc: bool = False
    overrides: list[str] = field(default_factory=list)  # train/policy config `key=value`
    progress: bool = True

    def check(self) -> None:
        for name in ("rounds", "demos", "episodes_per_round", "steps", "eval_episodes", "envs"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.beta <= 1.0:
            raise UserError(f"--beta must be in [0, 1], got {self.beta}")
        if self.noise < 0:
            raise UserError(f"--noise must be >= 0, got {self.noise}")


def _env_config(config: DaggerConfig, noise: float) -> dict[str, Any]:
    return {"task": config.task, "robot": config.robot, "cameras": config.cameras, "image_size": config.image_size,
            "fps": 20.0, "noise": noise, "success_hold": config.success_hold}


def _train(config: DaggerConfig, dataset: Path, out: Path) -> float:
    """Train a fresh policy on ``dataset`` into ``out``; return its final training loss."""
    from protege.policies.base import POLICIES
    from protege.policies.config import TrainConfig, apply_overrides
    from protege.policies.trainer import train

    train_config = TrainConfig(dataset=str(dataset), out=str(out), policy=config.policy, steps=config.steps,
                               seed=config.seed, progress=config.progress)
    policy_config = POLICIES[config.policy].config_class()
    apply_overrides([train_config, policy_config], config.overrides)
    return train(train_config, policy_config).train_loss


def _spec(config: DaggerConfig, run_dir: Path, **kwargs: Any) -> RolloutSpec:
    make_policy = functools.partial(load_for_rollout, str(run_dir), "cpu", True)
    return RolloutSpec(_env_config(config, 0.0), make_policy, success_hold=config.success_hold, **kwargs)


def _evaluate(config: DaggerConfig, run_dir: Path) -> dict[str, Any]:
    summary = run_rollouts(_spec(config, run_dir), config.eval_episodes, seed=EVAL_SEED, envs=config.envs,
                           progress=config.progress).summary
    return {"success_rate": summary["success_rate"], "ci95": summary["ci95"], "mean_length": summary["mean_length"]}


def _frames(dataset: Path) -> int:
    from protege.datasets import Dataset

    return Dataset(str(dataset)).num_frames


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def beta_schedule(beta: float, round_index: int) -> float:
    """The expert's share of control when labelling in round ``round_index`` (>= 1)."""
    return beta**round_index


def run_dagger(config: DaggerConfig) -> dict[str, Any]:
    """Run every round, writing RUN/dagger.json (and the plot) after each so a crash loses one round at most."""
    config.check()
    run = Path(config.out)
    if (run / "dagger.json").exists() or (run / "data.zarr").exists():
        raise UserError(f"{run} already holds a DAgger run: choose a new --out")
    run.mkdir(parents=True, exist_ok=True)
    data = run / "data.zarr"
    log: dict[str, Any] = {"task": config.task, "robot": config.robot, "policy": config.policy, "expert": "scripted",
                           "config": dataclasses.asdict(config), "rounds": [], "bc": []}
    demos = collect(_env_config(config, config.noise), str(data), config.demos, workers=config.envs,
                    seed=config.seed, progress=config.progress)
    episodes, labelled = config.demos, demos["frames"]
    for r in range(config.rounds):
        added = 0
        if r > 0:
            spec = _spec(config, run / f"round_{r - 1}", record=True, expert_beta=beta_schedule(config.beta, r))
            seed = LABEL_SEED + (r - 1) * config.episodes_per_round
            rollouts = run_rollouts(spec, config.episodes_per_round, seed=seed, envs=config.envs, record_to=str(data),
                                    progress=config.progress)
            added = sum(e.length for e in rollouts.episodes)
            episodes += config.episodes_per_round
            labelled += added
        loss = _train(config, data, run / f"round_{r}")
        log["rounds"].append({"round": r, "labelled_frames": labelled, "added_frames": added, "episodes": episodes,
                              "beta": beta_schedule(config.beta, r) if r else 1.0, "train_loss": loss,
                              "run": f"round_{r}", **_evaluate(config, run / f"round_{r}")})
        _write_json(run / "dagger.json", log)
        if config.compare_bc:
            log["bc"].append(_bc_point(config, run, r, labelled, log["rounds"][0]))
            _write_json(run / "dagger.json", log)
        plot(log, run / "dagger.png")
    return log


def _bc_point(config: DaggerConfig, run: Path, r: int, budget: int, first: dict[str, Any]) -> dict[str, Any]:
    """Behavioural cloning on expert demos totalling (at least) ``budget`` labelled frames."""
    if r == 0:  # the same demos and training as DAgger's round 0
        return dict(first)
    data = run / "bc.zarr"
    if not data.exists():  # start from DAgger's demos: the same first episodes
        collect(_env_config(config, config.noise), str(data), config.demos, workers=config.envs,
                seed=config.seed, progress=False)
    from protege.datasets import Dataset

    while (frames := _frames(data)) < budget:
        ds = Dataset(str(data))
        per_episode = frames / ds.num_episodes
        more = max(1, math.ceil((budget - frames) / per_episode))
        collect(_env_config(config, config.noise), str(data), more, workers=config.envs,
                seed=config.seed + ds.num_episodes, progress=False)
    episodes = Dataset(str(data)).num_episodes
    loss = _train(config, data, run / f"bc_{r}")
    return {"round": r, "labelled_frames": _frames(data), "episodes": episodes, "train_loss": loss,
            "run": f"bc_{r}", **_evaluate(config, run / f"bc_{r}")}


def plot(log: dict[str, Any], path: Path) -> None:
    """Success rate (with 95% intervals) against expert-labelled frames, DAgger and the BC baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, points, colour in (("DAgger", log["rounds"], "tab:blue"), ("BC", log["bc"], "tab:orange")):
        if not points:
            continue
        x = [p["labelled_frames"] for p in points]
        y = [100 * p["success_rate"] for p in points]
        low = [100 * (p["success_rate"] - p["ci95"][0]) for p in points]
        high = [100 * (p["ci95"][1] - p["success_rate"]) for p in points]
        ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, color=colour, label=name)
    ax.set_xlabel("expert-labelled frames")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"{log['task']}: {log['policy']} policy, success vs labels")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
