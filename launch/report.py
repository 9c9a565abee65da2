"""Run reports: one HTML page with PNG plots, the run's configuration and figures, and rollout videos.

A report is a directory a browser opens without a server: ``report.html`` and ``report_files/``
next to it (plots as PNG, videos re-encoded to WebM so browsers play them, GIF thumbnails and a
poster frame). It reads what the commands leave in a run directory:

    config.json, tb/      a training run (protege train): loss curves, configuration
    evals.jsonl           evaluations (protege rollout): success per checkpoint, episode lengths, videos
    dagger.json           a DAgger run (protege dagger): success per round; round_K/ are training runs
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protege.launch.errors import UserError

LOSS_TAGS = ("train/loss", "val/loss")
TRAINING_TAGS = (("train/lr", "learning rate"), ("train/grad_norm", "gradient norm"),
                 ("perf/samples_per_s", "samples/s"))
GIF_FPS = 10
GIF_WIDTH = 160
GIF_COLOURS = 128

Series = tuple[list[int], list[float], list[float]]  # steps, values, wall times


@dataclass
class RunData:
    """What a run directory holds, read once."""

    path: Path
    config: dict[str, Any] | None = None
    scalars: dict[str, Series] = field(default_factory=dict)
    evals: list[dict[str, Any]] = field(default_factory=list)
    dagger: dict[str, Any] | None = None
    round_scalars: dict[int, dict[str, Series]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    html: Path
    plots: list[Path]
    thumbnails: list[Path]  # one animated GIF per embedded video


# ------------------------------------------------------------------------------------------- reading


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None


def read_scalars(tb_dir: Path) -> dict[str, Series]:
    """Every scalar series in a TensorBoard log directory (all points, none sampled away)."""
    if not tb_dir.is_dir():
        return {}
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    accumulator = EventAccumulator(str(tb_dir), size_guidance={SCALARS: 0})
    accumulator.Reload()
    series: dict[str, Series] = {}
    for tag in accumulator.Tags().get("scalars", []):
        events = accumulator.Scalars(tag)
        series[tag] = ([e.step for e in events], [e.value for e in events], [e.wall_time for e in events])
    return series


def read_evals(path: Path) -> list[dict[str, Any]]:
    """Evaluations logged one JSON object per line; a line that is not one is refused, naming it."""
    if not path.is_file():
        return []
    evals = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not (isinstance(record, dict) and isinstance(record.get("success_rate"), (int, float))):
            raise UserError(f"{path} line {number} is not an evaluation (a JSON object with success_rate): "
                            "fix or delete that line")
        evals.append(record)
    return evals


def read_run(path: str | os.PathLike[str]) -> RunData:
    """A training run (config.json) or a DAgger run (dagger.json); anything else is a UserError."""
    run = Path(path)
    if not run.is_dir():
        raise UserError(f"{run} is not a directory")
    has_config, has_dagger = (run / "config.json").is_file(), (run / "dagger.json").is_file()
    if not (has_config or has_dagger):
        raise UserError(f"{run} is not a protege run: no config.json (protege train) or dagger.json (protege dagger)")
    data = RunData(run)
    if has_config:
        data.config = _read_config(run / "config.json")
        data.scalars = read_scalars(run / "tb")
    if has_dagger:
        data.dagger = _read_dagger(run / "dagger.json")
        for index, entry in enumerate(data.dagger["rounds"]):
            number = entry["round"] if isinstance(entry.get("round"), int) else index
            data.round_scalars[number] = read_scalars(run / str(entry.get("run", f"round_{number}")) / "tb")
        last_dir = run / str(data.dagger["rounds"][-1].get("run", "")) if data.dagger["rounds"] else run
        if data.config is None and last_dir != run and (last_dir / "config.json").is_file():
            data.config = _read_config(last_dir / "config.json")
            data.evals = read_evals(last_dir / "evals.jsonl")
    data.evals = read_evals(run / "evals.jsonl") or data.evals
    return data


def _read_config(path: Path) -> dict[str, Any]:
    config = _read_json(path)
    if not isinstance(config, dict):
        raise UserError(f"{path} is not a run configuration (expected a JSON object)")
    return config


def _read_dagger(path: Path) -> dict[str, Any]:
    """dagger.json with its rounds checked: each a mapping with a numeric success_rate."""
    log = _read_json(path)
    if not isinstance(log, dict) or not isinstance(log.get("rounds"), list):
        raise UserError(f"{path} has no list of rounds")
    for key in ("rounds", "bc"):
        for i, entry in enumerate(log.get(key) or []):
            if not isinstance(entry, dict) or not isinstance(entry.get("success_rate"), (int, float)):
                raise UserError(f"{path}: {key}[{i}] lacks a numeric success_rate")
    return log


# ------------------------------------------------------------------------------------------- plotting


def _figure(width: float = 6.4, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend (Agg canvas)

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(figure: Any, path: Path) -> Path:
    figure.savefig(path, format="png")
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


def _interval(records: list[dict[str, Any]]) -> list[list[float]]:
    """Error-bar half-widths (below, above) from each record's ci95, zero where absent."""
    rates = [r["success_rate"] for r in records]
    cis = [r.get("ci95") or [rate, rate] for r, rate in zip(records, rates)]
    below = [max(0.0, rate - low) for rate, (low, _) in zip(rates, cis)]
    above = [max(0.0, high - rate) for rate, (_, high) in zip(rates, cis)]
    return [below, above]


def plot_success_per_checkpoint(evals: list[dict[str, Any]], path: Path) -> Path | None:
    """Success rate of each evaluation against the checkpoint's training step, with 95% intervals."""
    if not evals:
        return None
    figure = _figure()
    axes = figure.subplots()
    steps = [int(e.get("step", i)) for i, e in enumerate(evals)]
    axes.errorbar(steps, [e["success_rate"] for e in evals], yerr=_interval(evals), fmt="o-", capsize=4,
                  color="tab:green", label="success rate (95% CI)")
    for step, record in zip(steps, evals):
        axes.annotate(f"{100 * record['success_rate']:.0f}%", (step, record["success_rate"]),
                      textcoords="offset points", xytext=(6, -12))
    axes.set(xlabel="checkpoint step", ylabel="success rate", ylim=(-0.03, 1.05), title="Success rate per evaluation")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_dagger(dagger: dict[str, Any], path: Path) -> Path | None:
    """Success rate after each DAgger round against the labelled frames so far (and the BC baseline)."""
    rounds = [r for r in dagger.get("rounds", []) if "success_rate" in r]
    if not rounds:
        return None
    figure = _figure()
    axes = figure.subplots()
    for name, records, style in (("DAgger", rounds, "o-"), ("behaviour cloning", dagger.get("bc") or [], "s--")):
        records = [r for r in records if "success_rate" in r]
        if not records:
            continue
        frames = [r.get("labelled_frames", i) for i, r in enumerate(records)]
        axes.errorbar(frames, [r["success_rate"] for r in records], yerr=_interval(records), fmt=style, capsize=4,
                      label=name)
        if name == "DAgger":
            for x, record in zip(frames, records):
                axes.annotate(f"round {record.get('round', '?')}", (x, record["success_rate"]),
                              textcoords="offset points", xytext=(4, 6), fontsize=8)
    axes.set(xlabel="labelled frames", ylabel="success rate", ylim=(-0.03, 1.05),
             title=f"DAgger on {dagger.get('task', '?')} ({dagger.get('expert', '?')} expert)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_lengths(record: dict[str, Any], path: Path) -> Path | None:
    """Histogram of episode lengths in one evaluation, successes and failures stacked."""
    lengths, success = record.get("lengths") or [], record.get("success") or []
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
             title=f"Episode lengths, {len(lengths)} episodes at step {record.get('step', '?')}")
    axes.grid(alpha=0.3, axis="y")
    axes.legend()
    return _save(figure, path)


# --------------------------------------------------------------------------------------------- videos


@dataclass
class VideoAssets:
    source: Path
    webm: Path | None
    gif: Path
    poster: Path


def _read_frames(path: Path) -> tuple[list[Any], float]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 20.0
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 (where native libraries print) to /dev/null for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def video_assets(source: Path, folder: Path, name: str) -> VideoAssets | None:
    """A WebM copy browsers play (mp4v is not one they do), an animated GIF thumbnail and a poster PNG."""
    import cv2
    from PIL import Image

    frames, fps = _read_frames(source)
    if not frames:
        return None
    height, width = frames[0].shape[:2]
    webm: Path | None = folder / f"{name}.webm"
    with _stderr_silenced():  # FFmpeg prints a warning about the VP80 tag on every file, then writes it fine
        writer = cv2.VideoWriter(str(webm), cv2.VideoWriter.fourcc(*"VP80"), fps, (width, height))
        for frame in frames if writer.isOpened() else []:
            writer.write(frame)
        writer.release()
    if not webm.is_file() or webm.stat().st_size == 0:  # an OpenCV without VP8: the page falls back to the mp4
        webm = None
    every = max(1, round(fps / GIF_FPS))
    scale = min(1.0, GIF_WIDTH / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    images = [Image.fromarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)).resize(size) for f in frames[::every]]
    # One palette for every frame, from the first, middle and last: 40x faster than per-frame quantising.
    sample = np.concatenate([np.asarray(images[i]) for i in (0, len(images) // 2, -1)])
    palette = Image.fromarray(sample).quantize(GIF_COLOURS, method=Image.Quantize.FASTOCTREE)
    indexed = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    gif = folder / f"{name}.gif"
    indexed[0].save(gif, save_all=True, append_images=indexed[1:], duration=round(1000 * every / fps), loop=0)
    poster = folder / f"{name}.png"
    Image.fromarray(cv2.cvtColor(frames[-1], cv2.COLOR_BGR2RGB)).save(poster)
    return VideoAssets(source, webm, gif, poster)


def _find_video(path_text: str, run: Path) -> Path | None:
    """A video path as logged: absolute, relative to the working directory, or to the run."""
    path = Path(path_text)
    for candidate in (path, run / path, run / path.name, run / "videos" / path.name):
        if candidate.is_file():
            return candidate
    return None


# ------------------------------------------------------------------------------------------ html parts


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _grid(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='grid'><tr>{head}</tr>{body}</table>"


def _pct(rate: float, ci: list[float] | None = None) -> str:
    text = f"{100 * rate:.1f}%"
    return text + (f" (95% CI {100 * ci[0]:.1f}-{100 * ci[1]:.1f}%)" if ci else "")


def _last(scalars: dict[str, Series], tag: str) -> float | None:
    return scalars[tag][1][-1] if tag in scalars and scalars[tag][1] else None


def figures(data: RunData) -> list[tuple[str, Any]]:
    """The headline numbers: training, data and the latest evaluation."""
    rows: list[tuple[str, Any]] = []
    config, scalars = data.config or {}, data.scalars
    if config:
        dataset = config.get("dataset", {})
        rows += [("policy", config.get("policy")), ("training steps", config.get("step")),
                 ("task / robot", f"{dataset.get('task', '?')} / {dataset.get('robot', '?')}"),
                 ("observations", ", ".join(f"{k} {tuple(v)}" for k, v in config.get("obs_shapes", {}).items())),
                 ("action", f"{config.get('action_dim')}-D {dataset.get('action_space', '')}".strip())]
        train_config = config.get("train_config", {})
        rows.append(("dataset", train_config.get("dataset", "?")))
    for tag, label in (("train/loss", "final train loss"), ("val/loss", "final validation loss"),
                       ("perf/samples_per_s", "training throughput (samples/s)")):
        value = _last(scalars, tag)
        if value is not None:
            rows.append((label, f"{value:.4g}" if tag != "perf/samples_per_s" else f"{value:,.0f}"))
    if "train/loss" in scalars and len(scalars["train/loss"][2]) > 1:
        wall = scalars["train/loss"][2]
        rows.append(("training time (logged)", f"{wall[-1] - wall[0]:.0f} s"))
    if data.evals:
        latest = data.evals[-1]
        rows += [("success rate (latest eval)", _pct(latest["success_rate"], latest.get("ci95"))),
                 ("evaluated checkpoint step", latest.get("step", "?")),
                 ("evaluation episodes", latest.get("episodes")),
                 ("mean episode length", latest.get("mean_length")),
                 ("mean return", latest.get("mean_return")),
                 ("evaluation speed", f"{latest.get('episodes_per_min', '?')} episodes/min with "
                                      f"{latest.get('envs', '?')} env(s)")]
    if data.dagger and data.dagger.get("rounds"):
        last = data.dagger["rounds"][-1]
        rows += [("DAgger rounds", len(data.dagger["rounds"])), ("labelled frames", last.get("labelled_frames")),
                 ("success after last round", _pct(last.get("success_rate", 0.0), last.get("ci95")))]
    return rows


def _config_tables(config: dict[str, Any], title: str | None = None) -> str:
    """Collapsible key/value tables: the whole mapping under ``title``, else a run's config.json sections."""
    parts = []
    sections = [(config, title)] if title else [(config.get(key), name) for key, name in (
        ("train_config", "Training configuration"), ("policy_config", "Policy configuration"),
        ("dataset", "Dataset attributes"))]
    for section, heading in sections:
        if isinstance(section, dict) and section:
            rows = [(k, json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in section.items()]
            parts.append(f"<details open><summary>{_e(heading)}</summary>{_table(rows)}</details>")
    return "".join(parts)


def _url(path: str | os.PathLike[str], base: Path) -> str:
    """``path`` as a link from a page in ``base``: relative, percent-encoded, HTML-escaped."""
    relative = os.path.relpath(Path(path).resolve(), base.resolve())
    return html.escape(urllib.parse.quote(Path(relative).as_posix()))


def _video_cards(assets: list[VideoAssets], record: dict[str, Any], base: Path) -> str:
    cards = []
    success, lengths = record.get("success") or [], record.get("lengths") or []
    for i, asset in enumerate(assets):
        outcome = ""
        if i < len(success) and i < len(lengths):
            outcome = f"{'success' if success[i] else 'failure'}, {lengths[i]} steps"
        mp4 = _url(asset.source, base)
        webm = f"<source src='{_url(asset.webm, base)}' type='video/webm'>" if asset.webm else ""
        cards.append(
            f"<figure class='video'><video controls muted loop preload='none' poster='{_url(asset.poster, base)}'>"
            f"{webm}<source src='{mp4}' type='video/mp4'></video><figcaption>episode {i}: {_e(outcome)} · "
            f"<a href='{_url(asset.gif, base)}'>GIF</a> · <a href='{mp4}'>mp4</a></figcaption></figure>")
    return "<div class='videos'>" + "".join(cards) + "</div>"


STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#b8c0d0}main{padding:16px 32px;max-width:1240px}
section{background:#fff;border-radius:8px;padding:14px 20px;margin:14px 0;box-shadow:0 1px 3px #0001}
h2{font-size:17px;margin:4px 0 10px}.plots{display:flex;flex-wrap:wrap;gap:12px}
.plots img{max-width:100%;width:580px;border:1px solid #e3e6ec;border-radius:4px}
table{border-collapse:collapse;font-size:13.5px;margin:4px 0}th,td{text-align:left;padding:3px 12px 3px 0;
vertical-align:top}tr+tr{border-top:1px solid #eef0f4}table.grid th{border-bottom:2px solid #d6dae2}
th{font-weight:600;color:#4a5366}details{margin:6px 0}summary{cursor:pointer;font-weight:600}
.videos{display:flex;flex-wrap:wrap;gap:14px}.video{margin:0}.video video{width:256px;height:256px;
background:#000;border-radius:4px}figcaption{font-size:13px;color:#4a5366}.note{color:#a05a00}
"""


# --------------------------------------------------------------------------------------------- writing


def write_report(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Report:
    """Write the report of ``run_dir`` to ``out`` (default RUN/report.html) and its files next to it."""
    data = read_run(run_dir)
    html_path = Path(out) if out is not None else data.path / "report.html"
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {html_path}: the report is an HTML file (name it *.html)")
    folder = html_path.with_name(f"{html_path.stem}_files")
    folder.mkdir(parents=True, exist_ok=True)

    plots: list[tuple[str, Path | None]] = [
        ("Loss", plot_losses(data.scalars, folder / "loss.png")),
        ("DAgger: success per round", plot_dagger(data.dagger, folder / "dagger.png") if data.dagger else None),
        ("DAgger: loss per round", plot_round_losses(data.round_scalars, folder / "round_loss.png")),
        ("Success per checkpoint", plot_success_per_checkpoint(data.evals, folder / "success.png")),
        ("Episode lengths", plot_lengths(data.evals[-1], folder / "lengths.png") if data.evals else None),
        ("Optimisation", plot_training(data.scalars, folder / "training.png")),
    ]
    made = [(title, path) for title, path in plots if path is not None]

    assets: list[VideoAssets] = []
    latest = data.evals[-1] if data.evals else {}
    for i, logged in enumerate(latest.get("videos") or []):
        source = _find_video(str(logged), data.path)
        if source is None:
            data.notes.append(f"video {logged} not found")
            continue
        made_assets = video_assets(source, folder, f"video_{i}")
        if made_assets is not None:
            assets.append(made_assets)

    html_path.write_text(_page(data, made, assets, html_path.parent))
    return Report(html_path, [p for _, p in made], [a.gif for a in assets])


def _expert_share(point: dict[str, Any]) -> Any:
    """A DAgger round's per-tick expert share; hand-over rounds log None (the expert takes over at a random tick)."""
    return "hand-over" if "beta" in point and point["beta"] is None else point.get("beta", "")


def _page(data: RunData, plots: list[tuple[str, Path]], assets: list[VideoAssets], base: Path) -> str:
    kind = "DAgger run" if data.dagger else "Training run"
    policy = (data.config or {}).get("policy") or (data.dagger or {}).get("policy", "")
    sections = [f"<section><h2>Figures</h2>{_table(figures(data))}</section>"]
    if plots:
        images = "".join(f"<img src='{_url(p, base)}' alt='{_e(t)}' title='{_e(t)}'>" for t, p in plots)
        sections.append(f"<section><h2>Plots</h2><div class='plots'>{images}</div></section>")
    if data.dagger and data.dagger.get("rounds"):
        rows = [[name, r.get("round"), r.get("labelled_frames"), r.get("episodes"), _expert_share(r),
                 _pct(r.get("success_rate", 0.0), r.get("ci95")), r.get("mean_length", ""), r.get("run", "")]
                for name, key in (("DAgger", "rounds"), ("BC", "bc")) for r in data.dagger.get(key) or []]
        header = ["method", "round", "labelled frames", "episodes", "expert share", "success", "mean length", "run"]
        sections.append(f"<section><h2>DAgger rounds</h2>{_grid(header, rows)}</section>")
    if data.evals:
        rows = [[e.get("time", ""), e.get("step", ""), e.get("episodes", ""), _pct(e["success_rate"], e.get("ci95")),
                 e.get("mean_length", ""), e.get("seed", "")] for e in data.evals]
        header = ["time", "step", "episodes", "success", "mean length", "first seed"]
        sections.append(f"<section><h2>Evaluations</h2>{_grid(header, rows)}</section>")
    if assets:
        sections.append(f"<section><h2>Rollout videos</h2>{_video_cards(assets, data.evals[-1], base)}</section>")
    if data.config or data.dagger:
        tables = _config_tables((data.dagger or {}).get("config") or {}, "DAgger configuration")
        tables += _config_tables(data.config or {})
        sections.append(f"<section><h2>Configuration</h2>{tables}</section>")
    if data.notes:
        sections.append("<section>" + "".join(f"<p class='note'>note: {_e(n)}</p>" for n in data.notes) + "</section>")
    dataset = (data.config or {}).get("dataset", {})
    task = dataset.get("task") or (data.dagger or {}).get("task", "?")
    subtitle = f"{kind}, policy {policy}, task {task} on {dataset.get('robot', '?')} · {data.path.resolve()}"
    title = f"protege report: {data.path.name}"
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><header><h1>{_e(title)}</h1>"
            f"<p>{_e(subtitle)}</p></header><main>{''.join(sections)}</main></body></html>\n")
