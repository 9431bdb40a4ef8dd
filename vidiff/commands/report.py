"""`vidiff report RUN_DIR [-o FILE] [--inline]`: a static HTML page of a training run."""
from __future__ import annotations

from vidiff.commands import output_argument, path_argument


def register(sub) -> None:
    p = sub.add_parser("report", help="write an HTML page of a run: curves, sample clips, eval tables")
    p.add_argument("run_dir", type=path_argument, metavar="RUN_DIR",
                   help="training run folder (metrics.jsonl, previews/, eval/)")
    p.add_argument("-o", "--output", default=None, type=output_argument,
                   help="HTML file to write, .html or .htm (default RUN_DIR/report.html)")
    p.add_argument("--inline", action="store_true",
                   help="embed the images as data URIs so the page works on its own (larger file)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from vidiff.eval.report import build_report

    out = build_report(args.run_dir, args.output, inline=args.inline)
    from vidiff.output_safety import one_line  # a name's control characters escaped
    print(f"wrote {one_line(str(out))}")
    return 0
