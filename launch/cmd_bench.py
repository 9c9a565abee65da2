"""`protege bench sim|record|dataset|train|inference`: each capability's throughput figures."""

from __future__ import annotations

import argparse
import importlib

from protege.launch.cli import emit_json

# target -> (module, function); each function takes json: bool and returns a dict of figures.
BENCHES: dict[str, tuple[str, str]] = {
    "sim": ("protege.launch.cmd_bench", "_sim"),
    "record": ("protege.teleop.bench", "run_bench"),
    "dataset": ("protege.datasets.bench", "run_bench"),
    "train": ("protege.policies.bench", "run_train_bench"),
    "inference": ("protege.policies.bench", "run_inference_bench"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=sorted(BENCHES), help="what to measure")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")


def run(args: argparse.Namespace) -> int:
    module, function = BENCHES[args.target]
    result = getattr(importlib.import_module(module), function)(json=args.json)
    if args.json:
        emit_json(result)
    return 0


def _sim(json: bool) -> dict:
    from protege.sim.bench import format_bench, run_bench

    result = run_bench()
    print(format_bench(result), flush=True)
    return result
