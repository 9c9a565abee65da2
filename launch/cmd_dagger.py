"""`protege dagger`: learn from an expert's labels on the policy's own states, round after round.

    protege dagger --task slot_push --expert scripted --rounds 4 --out runs/dagger --compare-bc
    protege dagger --task slot_push --expert gated --compare-dagger --compare-bc --out runs/hg-gated
    protege dagger --task lift --expert keyboard --demos-dataset demos.zarr --rounds 3 --out runs/hg-dagger
    protege dagger --task lift --expert keyboard --flow rewind --demos-dataset demos.zarr --out runs/rewind

With the scripted expert every visited state is labelled (DAgger); with a keyboard or gamepad a
person takes over live when the policy goes wrong and only those segments are labelled (HG-DAgger);
``gated`` is a simulated person: the scripted expert steps in when its gates fire.
"""

from __future__ import annotations

import argparse

from protege.launch.cli import add_ray_argument
from protege.policies import POLICY_NAMES
from protege.teleop.runtime.gate import DEFAULT_GATES, GATES, GateConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="task (see `protege sim list`)")
    parser.add_argument("--expert", required=True, choices=("scripted", "gated", "keyboard", "gamepad"),
                        help="who labels: the scripted expert (every state), a gated operator (the scripted expert "
                             "stepping in when needed), or a person taking over live")
    parser.add_argument("--rounds", type=int, default=4, help="rounds including the initial BC round (default: 4)")
    parser.add_argument("--out", required=True, help="run directory to create")
    parser.add_argument("--robot", help="robot name or spec file (default: the arm of --demos-dataset, else "
                                        "protege_arm)")
    parser.add_argument("--policy", default="mlp", choices=POLICY_NAMES,
                        help="policy to train each round (default: mlp)")
    parser.add_argument("--demos", type=int, default=10,
                        help="scripted demonstrations before round 0 (default: 10)")
    parser.add_argument("--demos-dataset", metavar="D.zarr",
                        help="start from these demos instead, in their env: task, arm, rate, cameras, image size "
                             "(required with a person as the expert)")
    parser.add_argument("--flow", choices=("live", "rewind"), default="live",
                        help="how a person corrects: take over live, or browse the rollouts, rewind and correct")
    parser.add_argument("--bindings", help="YAML file overriding key and button bindings (keyboard, gamepad)")
    parser.add_argument("--episodes-per-round", type=int, default=10,
                        help="labelled policy rollouts added per round (default: 10)")
    parser.add_argument("--mixing", choices=("tick", "handover"),
                        help="how the scripted expert shares control while it labels: handover (the policy drives, "
                             "the expert takes over for good at a random tick in the first half of the time limit; "
                             "default, the best measured) or tick (it drives each tick with probability beta**round)")
    parser.add_argument("--beta", type=float, default=0.5,
                        help="expert share of control in round 1, beta**round after (tick mixing; default: 0.5)")
    parser.add_argument("--noise", type=float, default=0.0, help="expert action noise in the demos (default: 0)")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per round (default: 3000)")
    parser.add_argument("--eval-episodes", type=int, default=50, help="evaluation episodes per round (default: 50)")
    parser.add_argument("--envs", type=int, default=1, help="parallel env processes (default: 1)")
    add_ray_argument(parser, "--envs")
    parser.add_argument("--seed", type=int, default=0, help="first demo seed and training seed (default: 0)")
    parser.add_argument("--cameras", default="", help="comma-separated cameras to record (default: none)")
    parser.add_argument("--image-size", type=int, default=128, help="camera image side in pixels (default: 128)")
    parser.add_argument("--compare-bc", action="store_true",
                        help="also train plain BC on the same number of expert-labelled frames each round")
    parser.add_argument("--compare-dart", type=float, metavar="NOISE",
                        help="with --compare-bc: also DART-style BC at the same budget, from demos driven with this "
                             "expert action noise and labelled with the noise-free actions (e.g. 1.0)")
    parser.add_argument("--gate", default=",".join(DEFAULT_GATES), metavar="GATE,...",
                        help=f"with --expert gated: when the operator steps in, any of {', '.join(GATES)} "
                             f"(default: {','.join(DEFAULT_GATES)}; doubt trains the mlp as an ensemble of members)")
    parser.add_argument("--doubt-threshold", type=float, default=GateConfig.doubt, metavar="D",
                        help="the doubt gate fires when the policy's doubt (its members' spread, as a share of the "
                             f"largest action) passes D (default: {GateConfig.doubt})")
    parser.add_argument("--gate-threshold", type=float, default=GateConfig.threshold, metavar="D",
                        help="the policy departs from the operator's action by more than D (in some dimension, "
                             f"in units of its largest step) for {GateConfig.deviation_ticks} ticks: the deviation "
                             f"gate fires; the operator hands back after {GateConfig.agree_ticks} ticks within D "
                             f"(default: {GateConfig.threshold})")
    parser.add_argument("--reaction-time", type=float, default=GateConfig.reaction_s, metavar="SECONDS",
                        help=f"the operator's reaction time after a gate fires (default: {GateConfig.reaction_s})")
    parser.add_argument("--compare-dagger", action="store_true",
                        help="with --expert gated: also full-labelling DAgger from the same demos, "
                             "on the same effort axis")
    parser.add_argument("--disturb", metavar="NAME[=MAG],...",
                        help="seeded disturbances for the labelled rollouts and every evaluation (see protege rollout "
                             "--disturb; 'default' is object_push,arm_shove); the demos stay undisturbed")
    parser.add_argument("--correction-share", type=float, metavar="F",
                        help="draw this share of every training batch from the labelled rollouts or interventions, "
                             "the rest from the demos (IWR: 0.5; default: every frame alike)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a train or policy config field (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the per-round figures as one JSON object")


def run(args: argparse.Namespace) -> int:
    from protege.launch import cli
    from protege.launch.cmd_rollout import parse_disturb
    from protege.launch.experiments.dagger import DaggerConfig, run_dagger

    cli.check_range("--seed", args.seed, cli.SEEDS)
    cli.check_range("--image-size", args.image_size, cli.IMAGE_SIDES)
    cli.check_processes("--envs", args.envs, args.ray)
    config = DaggerConfig(
        task=args.task, out=args.out, expert=args.expert, demos_dataset=args.demos_dataset, bindings=args.bindings,
        flow=args.flow, robot=args.robot, policy=args.policy, rounds=args.rounds, demos=args.demos,
        episodes_per_round=args.episodes_per_round, mixing=args.mixing, beta=args.beta, noise=args.noise,
        steps=args.steps, eval_episodes=args.eval_episodes, envs=args.envs, ray=args.ray, seed=args.seed,
        cameras=cli.parse_cameras(args.cameras), image_size=args.image_size, compare_bc=args.compare_bc,
        correction_share=args.correction_share, overrides=tuple(args.overrides), progress=not args.no_progress,
        dart_noise=args.compare_dart, disturb=parse_disturb(args.disturb), compare_dagger=args.compare_dagger,
        gate=GateConfig(gates=tuple(g for g in args.gate.split(",") if g), threshold=args.gate_threshold,
                        doubt=args.doubt_threshold, reaction_s=args.reaction_time),
    )
    cli.connect_ray(args.ray)
    log = run_dagger(config, notify=lambda line: print(line, flush=True))
    if args.json:
        cli.emit_json(log.to_json())
    return 0
