"""The report's PNG plots: losses, optimisation, success per checkpoint and per DAgger round, episode lengths."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from protege.launch.runfiles import DaggerLog, DaggerPoint, EvalRecord, Series

LOSS_TAGS = ("train/loss", "val/loss")
TRAINING_TAGS = (("train/lr", "learning rate"), ("train/grad_norm", "gradient norm"),
                 ("perf/samples_per_s", "samples/s"))


def _figure(width: float = 6.4, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend (Agg canvas)

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(figure: Any, path: Path) -> Path:
    """Write the PNG whole or not at all (a DAgger run rewrites its plot after every round)."""
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path


def plot_losses(scalars: dict[str, Series], path: Path) -> Path | None:
    """Training and validation loss against the optimisation step (log scale when positive)."""
    present = [t for t in LOSS_TAGS if t in scalars] + sorted(
        t for t in scalars if t.startswith("train/") and t not in LOSS_TAGS and t.removeprefix("train/") not in
        ("lr", "grad_norm"))
    if not present:
        return None
    figure = _figure()
    axes = figure.subplots()
    for tag in present:
        steps, values, _ = scalars[tag]
        style = {"marker": "o", "markersize": 3} if tag == "val/loss" else {"linewidth": 1.2}
        axes.plot(steps, values, label=tag, **style)
    if all(v > 0 for t in present for v in scalars[t][1]):
        axes.set_yscale("log")
    axes.set(xlabel="step", ylabel="loss", title="Training and validation loss")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def plot_training(scalars: dict[str, Series], path: Path) -> Path | None:
    """Learning rate, gradient norm and throughput, one panel each."""
    present = [(tag, label) for tag, label in TRAINING_TAGS if tag in scalars]
    if not present:
        return None
    figure = _figure()
    for axes, (tag, label) in zip(figure.subplots(1, len(present), squeeze=False)[0], present):
        steps, values, _ = scalars[tag]
        axes.plot(steps, values, linewidth=1.2, color="tab:gray")
        axes.set(xlabel="step", title=label)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_round_losses(rounds: dict[int, dict[str, Series]], path: Path) -> Path | None:
    """DAgger: the training loss of every round's retraining, one colour per round."""
    rounds = {k: v for k, v in rounds.items() if "train/loss" in v}
    if not rounds:
        return None
    figure = _figure()
    axes = figure.subplots()
    for number, scalars in sorted(rounds.items()):
        steps, values, _ = scalars["train/loss"]
        axes.plot(steps, values, linewidth=1.2, label=f"round {number}")
    axes.set_yscale("log")
    axes.set(xlabel="step", ylabel="train loss", title="Training loss per DAgger round")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def _interval(records: Sequence[EvalRecord | DaggerPoint]) -> list[list[float]]:
    """Error-bar half-widths (below, above) from each record's ci95, zero where absent."""
    cis = [r.ci95 or (r.success_rate, r.success_rate) for r in records]
    below = [max(0.0, r.success_rate - low) for r, (low, _) in zip(records, cis)]
    above = [max(0.0, high - r.success_rate) for r, (_, high) in zip(records, cis)]
    return [below, above]


def curves(evals: list[EvalRecord]) -> dict[str, list[tuple[int, EvalRecord]]]:
    """The evaluations as (checkpoint step, record) points, one curve per condition, in the order logged
    (an evaluation without a step is placed at its index)."""
    points: dict[str, list[tuple[int, EvalRecord]]] = {}
    for i, record in enumerate(evals):
        points.setdefault(record.condition, []).append((i if record.step is None else record.step, record))
    return points


def plot_success_per_checkpoint(evals: list[EvalRecord], path: Path) -> Path | None:
    """Success rate of each evaluation against the checkpoint's training step, with 95% intervals: one curve
    per condition (clean, or each --disturb specification), so disturbed and clean evaluations never join."""
    if not evals:
        return None
    figure = _figure()
    axes = figure.subplots()
    for condition, curve in curves(evals).items():
        steps, records = zip(*curve)
        axes.errorbar(steps, [e.success_rate for e in records], yerr=_interval(records), fmt="o-", capsize=4,
                      label=f"{condition} (95% CI)")
        for step, record in zip(steps, records):
            axes.annotate(f"{100 * record.success_rate:.0f}%", (step, record.success_rate),
                          textcoords="offset points", xytext=(6, -12))
    axes.set(xlabel="checkpoint step", ylabel="success rate", ylim=(-0.03, 1.05), title="Success rate per evaluation")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_dagger(dagger: DaggerLog, path: Path) -> Path | None:
    """Success rate after each DAgger round against the operator's effort so far, its labelled frames (and
    full-labelling DAgger's, the BC and DART baselines')."""
    if not dagger.rounds:
        return None
    figure = _figure()
    axes = figure.subplots()
    methods = (("HG-DAgger, gated operator" if dagger.expert == "gated" else "DAgger", dagger.rounds, "o-"),
               ("DAgger, every state labelled", dagger.full, "D-."), ("behaviour cloning", dagger.bc, "s--"),
               ("DART-style BC", dagger.dart, "^:"))
    for name, records, style in methods:
        if not records:
            continue
        frames = [r.labelled_frames for r in records]
        axes.errorbar(frames, [r.success_rate for r in records], yerr=_interval(records), fmt=style, capsize=4,
                      label=name)
        if records is dagger.rounds:
            for x, record in zip(frames, dagger.rounds):
                takeovers = f", {record.takeovers:.1f} takeovers/ep" if record.takeovers is not None else ""
                axes.annotate(f"round {record.round}{takeovers}", (x, record.success_rate),
                              textcoords="offset points", xytext=(4, 6), fontsize=8)
    axes.set(xlabel="operator effort (labelled frames)", ylabel="success rate", ylim=(-0.03, 1.05),
             title=(f"HG-DAgger on {dagger.task} (gated operator)" if dagger.expert == "gated"
                    else f"DAgger on {dagger.task} ({dagger.expert} expert)")
                   + (f"\nevaluated under {dagger.disturb.replace(',', ', ')}" if dagger.disturb else ""))
    axes.margins(x=0.08)  # room for the last round's label
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_lengths(record: EvalRecord, path: Path) -> Path | None:
    """Histogram of episode lengths in one evaluation, successes and failures stacked."""
    lengths, success = record.lengths, record.success
    if not lengths or len(success) != len(lengths):
        return None
    figure = _figure()
    axes = figure.subplots()
    won = [n for n, ok in zip(lengths, success) if ok]
    lost = [n for n, ok in zip(lengths, success) if not ok]
    low, high = min(lengths), max(lengths)
    axes.hist([won, lost], bins=min(20, max(1, high - low)), range=(low - 0.5, high + 0.5) if low == high else None,
              stacked=True,
              color=["tab:green", "tab:red"], label=[f"success ({len(won)})", f"failure ({len(lost)})"])
    axes.set(xlabel="episode length (control steps)", ylabel="episodes",
             title=f"Episode lengths, {len(lengths)} episodes at step {'?' if record.step is None else record.step}")
    axes.grid(alpha=0.3, axis="y")
    axes.legend()
    return _save(figure, path)
