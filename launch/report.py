"""Run reports: one HTML page with PNG plots, the run's configuration and figures, and rollout videos.

A report is a directory a browser opens without a server: ``report.html`` and ``report_files/``
next to it (plots as PNG, videos re-encoded to WebM so browsers play them, GIF thumbnails and a
poster frame). It reads the run files (:mod:`protege.launch.runfiles`), draws the plots
(:mod:`protege.launch.plots`) and re-encodes the videos (:mod:`protege.launch.videos`).
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protege.launch.errors import UserError
from protege.launch.plots import (
    plot_dagger,
    plot_lengths,
    plot_losses,
    plot_round_losses,
    plot_success_per_checkpoint,
    plot_training,
)
from protege.launch.runfiles import DaggerPoint, DaggerRound, EvalRecord, RunData, Series, read_run
from protege.launch.videos import VideoAssets, find_video, video_assets

if TYPE_CHECKING:
    from protege.policies.checkpoint import RunMeta
    from protege.sim.spec import EnvSpec


@dataclass
class Report:
    html: Path
    plots: list[Path]
    thumbnails: list[Path]  # one animated GIF per embedded video


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _grid(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='grid'><tr>{head}</tr>{body}</table>"


def _pct(rate: float, ci: tuple[float, float] | None = None) -> str:
    text = f"{100 * rate:.1f}%"
    return text + (f" (95% CI {100 * ci[0]:.1f}-{100 * ci[1]:.1f}%)" if ci else "")


def _last(scalars: dict[str, Series], tag: str) -> float | None:
    return scalars[tag][1][-1] if tag in scalars and scalars[tag][1] else None


def figures(data: RunData) -> list[tuple[str, Any]]:
    """The headline numbers: training, data and the latest evaluation."""
    rows: list[tuple[str, Any]] = []
    meta, scalars = data.meta, data.scalars
    if meta is not None:
        env = _trained_env(meta)
        rows += [("policy", meta.policy), ("training steps", meta.step),
                 ("task / robot", f"{env.task} / {env.robot}" if env else "? / ?"),
                 ("observations", ", ".join(f"{f.key} {f.shape}" for f in meta.inputs)),
                 ("action", f"{meta.action_dim}-D {env.action_space if env else ''}".strip()),
                 ("dataset", meta.train_config.dataset)]
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
        rows += [("success rate (latest eval)", _pct(latest.success_rate, latest.ci95)),
                 ("evaluated checkpoint step", "?" if latest.step is None else latest.step),
                 ("evaluation conditions", latest.condition),
                 ("evaluation episodes", latest.episodes),
                 ("mean episode length", latest.mean_length),
                 ("mean return", latest.mean_return),
                 ("evaluation speed", f"{latest.episodes_per_min} episodes/min with {latest.envs} env(s)")]
    if data.dagger and data.dagger.rounds:
        last = data.dagger.rounds[-1]
        rows += [("DAgger rounds", len(data.dagger.rounds)), ("labelled frames", last.labelled_frames),
                 ("success after last round", _pct(last.success_rate, last.ci95)),
                 ("DAgger conditions", data.dagger.disturb or "clean")]
    return rows


def _trained_env(meta: RunMeta) -> EnvSpec | None:
    """The env a run was trained in, None where its dataset's attributes name none (synthetic data)."""
    from protege.sim import EnvSpec, SimError

    try:
        return EnvSpec.from_attrs(meta.env)
    except SimError:
        return None


def _config_tables(sections: list[tuple[dict[str, Any], str]]) -> str:
    """Collapsible key/value tables, one per (mapping, heading)."""
    parts = []
    for section, heading in sections:
        if isinstance(section, dict) and section:
            rows = [(k, json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in section.items()]
            parts.append(f"<details open><summary>{_e(heading)}</summary>{_table(rows)}</details>")
    return "".join(parts)


def _url(path: str | os.PathLike[str], base: Path) -> str:
    """``path`` as a link from a page in ``base``: relative, percent-encoded, HTML-escaped."""
    relative = os.path.relpath(Path(path).resolve(), base.resolve())
    return html.escape(urllib.parse.quote(Path(relative).as_posix()))


def _video_cards(assets: list[VideoAssets], record: EvalRecord, base: Path) -> str:
    cards = []
    success, lengths = record.success, record.lengths
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
    for i, logged in enumerate(data.evals[-1].videos if data.evals else ()):
        source = find_video(logged, data.path)
        if source is None:
            data.notes.append(f"video {logged} not found")
            continue
        made_assets = video_assets(source, folder, f"video_{i}")
        if made_assets is not None:
            assets.append(made_assets)

    html_path.write_text(_page(data, made, assets, html_path.parent))
    return Report(html_path, [p for _, p in made], [a.gif for a in assets])


def _expert_share(point: DaggerPoint) -> Any:
    """A DAgger round's per-tick expert share; hand-over rounds log None (the expert takes over at a random tick)."""
    if not isinstance(point, DaggerRound):
        return ""
    return "hand-over" if point.beta is None else point.beta


def _takeovers(point: DaggerPoint) -> Any:
    """The gated operator's take-overs per episode in a round's labelling rollouts ("" elsewhere)."""
    return point.takeovers if isinstance(point, DaggerRound) and point.takeovers is not None else ""


def _page(data: RunData, plots: list[tuple[str, Path]], assets: list[VideoAssets], base: Path) -> str:
    kind = "DAgger run" if data.dagger else "Training run"
    policy = data.meta.policy if data.meta else data.dagger.policy if data.dagger else ""
    sections = [f"<section><h2>Figures</h2>{_table(figures(data))}</section>"]
    if plots:
        images = "".join(f"<img src='{_url(p, base)}' alt='{_e(t)}' title='{_e(t)}'>" for t, p in plots)
        sections.append(f"<section><h2>Plots</h2><div class='plots'>{images}</div></section>")
    if data.dagger and data.dagger.rounds:
        points: list[tuple[str, DaggerPoint]] = [("DAgger", r) for r in data.dagger.rounds]
        points += [("full DAgger", r) for r in data.dagger.full]
        points += [("BC", r) for r in data.dagger.bc] + [("DART", r) for r in data.dagger.dart]
        rows = [[name, r.round, r.labelled_frames, r.episodes, _expert_share(r), _takeovers(r),
                 _pct(r.success_rate, r.ci95), r.mean_length, r.run] for name, r in points]
        header = ["method", "round", "operator effort (labelled frames)", "episodes", "expert share",
                  "takeovers per episode", "success", "mean length", "run"]
        sections.append(f"<section><h2>DAgger rounds</h2>{_grid(header, rows)}</section>")
    if data.evals:
        rows = [[e.time, "" if e.step is None else e.step, e.condition, e.episodes, _pct(e.success_rate, e.ci95),
                 e.mean_length, "" if e.seed is None else e.seed] for e in data.evals]
        header = ["time", "step", "conditions", "episodes", "success", "mean length", "first seed"]
        sections.append(f"<section><h2>Evaluations</h2>{_grid(header, rows)}</section>")
    if assets:
        sections.append(f"<section><h2>Rollout videos</h2>{_video_cards(assets, data.evals[-1], base)}</section>")
    if data.meta or data.dagger:
        tables = _config_tables([(data.dagger.config if data.dagger else {}, "DAgger configuration")])
        if data.meta:
            tables += _config_tables([(dataclasses.asdict(data.meta.train_config), "Training configuration"),
                                      (dataclasses.asdict(data.meta.policy_config), "Policy configuration"),
                                      (dict(data.meta.env), "Dataset attributes")])
        sections.append(f"<section><h2>Configuration</h2>{tables}</section>")
    if data.notes:
        sections.append("<section>" + "".join(f"<p class='note'>note: {_e(n)}</p>" for n in data.notes) + "</section>")
    env = _trained_env(data.meta) if data.meta else None
    task = env.task if env else data.dagger.task if data.dagger else "?"
    subtitle = f"{kind}, policy {policy}, task {task} on {env.robot if env else '?'} · {data.path.resolve()}"
    title = f"protege report: {data.path.name}"
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><header><h1>{_e(title)}</h1>"
            f"<p>{_e(subtitle)}</p></header><main>{''.join(sections)}</main></body></html>\n")
