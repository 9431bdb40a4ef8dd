"""A static HTML page for a training run: curves, sample clips with their prompts and seeds, eval tables.

Reads a run folder as the training loop writes it: config.yaml, metrics.jsonl (one JSON object per logged step,
with "step" and "loss", maybe "lr" and "grad_norm"), loss.png, previews/*.gif each with a .json beside it, and
eval/*.json from `vidiff eval ... --json`. Images are linked relative to the page (or inlined as data URIs with
`inline=True`, for a page that travels alone). Every piece of text is HTML-escaped: prompts are user input.
A small script at the end of the page records in the DOM whether every image loaded, for automated checks.
"""
from __future__ import annotations

import base64
import math
import os
from html import escape
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import quote

from vidiff.errors import InputError
from vidiff.eval.run_files import (
    TEXT_MAX_BYTES, plot_curves, read_inline, read_json, read_metrics, read_run_file,
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }
table { border-collapse: collapse; margin: 8px 0 16px; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.clips { display: flex; flex-wrap: wrap; gap: 16px; } .clip { margin: 0; max-width: 100%; }
.clip img { height: 192px; max-width: 100%; object-fit: contain; image-rendering: pixelated; border: 1px solid #999; }
.clip figcaption { max-width: 520px; overflow-wrap: anywhere; }
.note { color: #a00; } .muted { color: #666; font-size: 90%; } pre { background: #f6f6f6; padding: 8px; }
"""

_IMAGE_CHECK = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
  var check = document.getElementById("image-check");
  check.setAttribute("data-total", String(images.length));
  check.setAttribute("data-broken", String(broken.length));
  check.setAttribute("data-broken-src", broken.map(function (img) { return img.getAttribute("src"); }).join(" "));
  check.setAttribute("data-status", "done");
  check.textContent = broken.length ? broken.length + " image(s) did not load" : "";
});
"""


def format_value(value) -> str:
    """Short text for a table cell: 4 decimals below 10, 2 above, "inf" for +inf, "-" for None."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


# ---- HTML pieces ----


class _Page:
    def __init__(self, run_dir: Path, out: Path, inline: bool):
        self.run_dir, self.out, self.inline = run_dir, out, inline
        self.parts: list[str] = []

    def add(self, html: str) -> None:
        self.parts.append(html)

    def image_src(self, path: Path) -> str:
        """A relative URL from the page to `path`, or a data URI when inlining (see `read_inline`)."""
        if self.inline:
            kind = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg"}.get(path.suffix.lower(), "image/png")
            return f"data:{kind};base64,{base64.b64encode(read_inline(path, self.run_dir)).decode()}"
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(self.out.parent))
        return quote(Path(rel).as_posix())

    def note(self, text: str) -> None:
        self.add(f'<p class="note">{escape(text)}</p>')


def _table(columns: list, rows: list[list]) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for v in row:
            numeric = isinstance(v, (int, float)) and not isinstance(v, bool) or v in ("inf", "-inf", "nan")
            cells.append(f'<td class="num">{escape(format_value(v))}</td>' if numeric else f"<td>{escape(format_value(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _flatten(value, prefix: str = "") -> list[tuple[str, object]]:
    """Scalar leaves of nested dicts as (dotted key, value); short scalar lists joined; long lists counted."""
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            items += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return items
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value) and len(value) <= 16:
            return [(prefix, ", ".join(format_value(v) for v in value))]
        return [(prefix, f"[{len(value)} items]")]
    return [(prefix, value)]


def _curves_section(page: _Page) -> None:
    page.add('<section id="curves"><h2>Training curves</h2>')
    loss_png, metrics = page.run_dir / "loss.png", page.run_dir / "metrics.jsonl"
    records, skipped = read_metrics(metrics, page.run_dir) if os.path.lexists(metrics) else ([], 0)
    if os.path.lexists(loss_png):
        page.add(f'<img class="curve" alt="training loss" src="{escape(page.image_src(loss_png))}">')
    elif records and find_spec("matplotlib") is None:  # an extra: the numbers below are all the page can show
        page.note("no curves: matplotlib is not installed (pip install 'vidiff[plots]' draws them)")
    elif records:
        data = base64.b64encode(plot_curves(records)).decode()
        page.add(f'<img class="curve" alt="training curves" src="data:image/png;base64,{data}">')
    else:
        page.note("no loss.png and no usable metrics.jsonl in this run")
    if records:
        losses = [r["loss"] for r in records if isinstance(r.get("loss"), (int, float))]
        rows = [["logged steps", len(records)], ["last step", records[-1]["step"]]]
        if losses:
            rows += [["last loss", float(losses[-1])], ["lowest loss", float(min(losses))]]
        page.add(_table(["", "value"], rows))
    if skipped:
        page.note(f"metrics.jsonl: skipped {skipped} line(s) that were not JSON objects with a step "
                  "(or held a number too large for a float)")
    page.add("</section>")


def _sidecar(gif: Path, run_dir: Path) -> tuple[dict, str | None]:
    for candidate in (gif.with_suffix(".json"), gif.with_name(gif.name + ".json")):
        if os.path.lexists(candidate):
            data, error = read_json(candidate, run_dir)
            return (data if isinstance(data, dict) else {}), error
    return {}, None


def _listing(meta: dict, *keys: str) -> list:
    for key in keys:
        value = meta.get(key)
        if value is not None:
            return value if isinstance(value, list) else [value]
    return []


_SHOWN_KEYS = ("step", "prompts", "prompt", "seeds", "seed")


def _listed(folder: Path, pattern: str) -> list[Path]:
    """The files of `folder` matching `pattern`, sorted, without hidden names: pathlib's glob returns them, and the
    temporary of a preview or eval JSON being written (or left by a killed writer) was shown as a broken clip or "not
    readable JSON"; the folder readers skip them too (io.list_video_files)."""
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith(".")) if folder.is_dir() else []


def _samples_section(page: _Page) -> None:
    page.add('<section id="samples"><h2>Sample clips</h2>')
    gifs = _listed(page.run_dir / "previews", "*.gif")
    entries = []
    for gif in gifs:
        meta, error = _sidecar(gif, page.run_dir)
        step = meta.get("step")
        entries.append((step if isinstance(step, (int, float)) else -1, gif.name, gif, meta, error))
    if not entries:
        page.note("no previews/*.gif in this run")
    page.add('<div class="clips">')
    for step, name, gif, meta, error in sorted(entries, key=lambda e: (e[0], e[1])):
        prompts, seeds = _listing(meta, "prompts", "prompt"), _listing(meta, "seeds", "seed")
        page.add(f'<figure class="clip"><img alt="{escape(name)}" src="{escape(page.image_src(gif))}"><figcaption>')
        page.add(f"<b>{escape(name)}</b>" + (f" &middot; step {escape(format_value(step))}" if step >= 0 else ""))
        if prompts or seeds:
            lines = []
            for i in range(max(len(prompts), len(seeds))):
                prompt = str(prompts[i]) if i < len(prompts) else ""
                seed = format_value(seeds[i]) if i < len(seeds) else "-"
                lines.append(f"<li>&ldquo;{escape(prompt)}&rdquo; <span class=\"muted\">seed {escape(seed)}</span></li>")
            order = " <span class=\"muted\">(left to right)</span>" if len(lines) > 1 else ""
            page.add(f"{order}<ol>{''.join(lines)}</ol>")
        extra = [(k, v) for k, v in meta.items() if k not in _SHOWN_KEYS and not isinstance(v, (dict, list))]
        if extra:
            page.add(f'<div class="muted">{escape(", ".join(f"{k}={format_value(v)}" for k, v in extra))}</div>')
        if error:
            page.add(f'<div class="note">{escape(error)}</div>')
        page.add("</figcaption></figure>")
    page.add("</div></section>")


def _evals_section(page: _Page) -> None:
    page.add('<section id="evals"><h2>Evaluations</h2>')
    files = _listed(page.run_dir / "eval", "*.json")
    if not files:
        page.note("no eval/*.json in this run (write them with `vidiff eval ... --json RUN_DIR/eval/NAME.json`)")
    for path in files:
        doc, error = read_json(path, page.run_dir)
        if error or not isinstance(doc, dict):
            page.note(error or f"{path.name}: expected a JSON object")
            continue
        title = str(doc.get("eval", path.stem))
        page.add(f'<div class="eval" data-eval="{escape(title)}"><h3>{escape(title)} '
                 f'<span class="muted">{escape(path.name)}</span></h3>')
        columns, rows = doc.get("columns"), doc.get("rows")
        if isinstance(columns, list) and isinstance(rows, list) and all(isinstance(r, list) for r in rows):
            page.add(_table(columns, rows))
        else:
            page.add(_table(["key", "value"], [list(kv) for kv in _flatten(doc.get("result", doc))]))
        if isinstance(doc.get("settings"), dict):
            settings = ", ".join(f"{k}={format_value(v)}" for k, v in _flatten(doc["settings"]))
            page.add(f'<p class="muted">{escape(settings)}</p>')
        page.add("</div>")
    page.add("</section>")


RUN_FILES = ("config.yaml", "metrics.jsonl", "previews", "eval")  # what a page is made of
REPORT_SUFFIXES = (".html", ".htm")  # -o: a page only, so a typo never replaces a clip or a run file with HTML


def build_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, inline: bool = False) -> Path:
    """Writes the page (default RUN_DIR/report.html; `out` must end in .html or .htm) and returns its path."""
    from vidiff.io import check_folder

    run_dir = check_folder(run_dir, "RUN_DIR")
    if not any(os.path.lexists(run_dir / name) for name in RUN_FILES):  # an empty page written into any folder
        raise InputError(f"RUN_DIR {run_dir}: not a training run folder (none of {', '.join(RUN_FILES)})")
    from vidiff.output_safety import atomic_write, check_output, shown

    out = Path(out) if out is not None else run_dir / "report.html"
    if out.is_dir():
        raise InputError(f"-o: {out} is a folder; give a file name such as report.html")
    inputs = [run_dir / "config.yaml", run_dir / "metrics.jsonl", run_dir / "loss.png"]
    for sub, pattern in (("previews", "*"), ("eval", "*.json")):
        if (run_dir / sub).is_dir():
            inputs += sorted((run_dir / sub).glob(pattern))
    check_output(out, inputs, what="-o")
    if out.suffix.lower() not in REPORT_SUFFIXES:
        raise InputError(f"-o {shown(out)}: the output suffix must be one of {', '.join(REPORT_SUFFIXES)} (the "
                         "report is an HTML page)")
    page = _Page(run_dir, out, inline)
    title = f"vidiff run: {run_dir.resolve().name}"
    page.add(f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
             f'<p class="muted">{escape(str(run_dir.resolve()))}</p><div id="image-check" class="note"></div>')
    _curves_section(page)
    _samples_section(page)
    _evals_section(page)
    config = run_dir / "config.yaml"
    if os.path.lexists(config):
        text = read_run_file(config, run_dir, TEXT_MAX_BYTES).decode("utf-8", "replace")
        page.add('<section id="config"><h2>Config</h2><details><summary>config.yaml</summary>'
                 f"<pre>{escape(text)}</pre></details></section>")
    page.add(f"<script>{_IMAGE_CHECK}</script></body></html>\n")
    html = "\n".join(page.parts).encode("utf-8", "backslashreplace")
    return atomic_write(out, lambda f: f.write(html))
