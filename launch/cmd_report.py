"""`protege report`: an HTML page with the plots, figures, configuration and videos of a run.

    protege report runs/mlp                      # writes runs/mlp/report.html and runs/mlp/report_files/
    protege report runs/dagger --out dagger.html

Works on a training run (loss curves and configuration), the same run after `protege rollout`
(success per checkpoint, episode lengths, videos), a DAgger run (success per round) and a learning
table (`protege bench learn --out DIR`: DIR/table.html and DIR/table.md from the cells done so far).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run directory (protege train --out, or protege dagger --out)")
    parser.add_argument("--out", metavar="FILE.html", help="page to write (default: RUN/report.html); "
                        "its plots and videos go to FILE_files/ next to it")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from protege.launch.cli import emit_json
    from protege.launch.experiments.learn_table import is_table, rewrite_table
    from protege.launch.report import write_report

    if is_table(Path(args.run)):
        html, _ = rewrite_table(Path(args.run), Path(args.out) if args.out else None)
        print(f"wrote {html}", flush=True)
        if args.json:
            emit_json({"report": str(html)})
        return 0
    report = write_report(args.run, args.out)
    print(f"wrote {report.html} ({len(report.plots)} plots, {len(report.thumbnails)} videos)", flush=True)
    if args.json:
        emit_json({"report": str(report.html), "plots": [str(p) for p in report.plots],
                   "videos": [str(p) for p in report.thumbnails]})
    return 0
