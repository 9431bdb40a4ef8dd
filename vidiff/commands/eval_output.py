"""What the `vidiff eval` commands print and write: an aligned plain-text table, and with --json the same rows and
the full result as strict JSON (non-finite numbers as strings), checked writable before any work."""
from __future__ import annotations

import json
import math
from pathlib import Path



def format_table(columns: list[str], rows: list[list]) -> str:
    """A plain-text table with aligned columns; a cell's control characters escaped (a clip named with a terminal
    escape sequence cleared the screen the table of eval interpolation / reconstruction was printed on)."""
    from vidiff.eval.report import format_value
    from vidiff.output_safety import one_line

    cells = [[one_line(format_value(v), 400) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(columns, widths)))]
    for row in cells:
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def _json_safe(value):
    """Replaces non-finite floats with strings so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def emit(args, name: str, settings: dict, columns: list[str], rows: list[list], result: dict, text: str | None = None):
    """Prints the table (or `text`) and writes the JSON file when --json was given."""
    from vidiff.output_safety import write_text

    print(text if text is not None else format_table(columns, rows))
    if args.json_out:
        doc = {"eval": name, "settings": settings, "columns": columns, "rows": rows, "result": result}
        out = write_text(args.json_out, json.dumps(_json_safe(doc), indent=2, allow_nan=False) + "\n")
        from vidiff.output_safety import one_line  # a name's control characters escaped
        print(f"wrote {one_line(str(out))}")
    return 0


def check_json_out(args, *inputs) -> None:
    """Before any work: --json must be writable and must not be one of the inputs (a file given, or a file a folder
    given holds: see `_folder_inputs`)."""
    from vidiff.output_safety import check_output

    if not args.json_out:
        return
    files = []
    for item in inputs:
        if item is None:
            continue
        path = Path(item)
        files.append(path)
        if path.is_dir():
            files += _folder_inputs(path)
    check_output(args.json_out, files, what="--json")


def _folder_inputs(folder: Path) -> list[Path]:
    """What an eval may read of a folder given: its own files, each clip under it (as `vidiff.io.list_video_files`
    reads a clip folder: subfolders too) with the prompt files beside it, and the files of its part folders (a
    pipeline's vae/, interpolation/, ...: the subfolders with a model.safetensors). Only the folder's own files
    were counted: --json sub/a.mp4 wrote over a clip it had just scored, --json MODEL/vae/model.safetensors over the
    weights."""
    from vidiff.io import list_video_files
    from vidiff.pipeline.config import PIPELINE_FILE

    own = list(folder.iterdir())[:100_000]
    files = list(own)
    try:
        clips = list_video_files(folder)[:100_000]
    except OSError:  # an unreadable subfolder: the eval names it when it reads the folder
        clips = []
    for clip in clips:
        files += [clip, *(p for p in (clip.with_suffix(".json"), clip.with_name(clip.name + ".json"),
                                      clip.with_suffix(".txt")) if p.is_file())]
    if (folder / PIPELINE_FILE).is_file():
        for part in own:
            try:
                if (part / "model.safetensors").is_file():
                    files += list(part.iterdir())
            except OSError:  # an unreadable part folder: loading the model names it
                pass
    return files
