"""Shapes accuracy of a folder of clips: does each clip show what its prompt asked, judged from pixels.

The prompt of `X.mp4` comes from, in order: the generation sidecar `X.mp4.json` or `X.json` (key "prompt"),
a Shapes caption `X.txt`, or the folder's `metadata.jsonl` (`file_name`, the clip's path in the folder -> `text`;
subfolders are read). Accuracy of colour, shape and direction counts the clips whose prompt names that attribute;
one_object and all_correct (colour & shape & direction & exactly one object in every frame) count every clip. A clip
whose prompt negates one ("a circle, not red": `negated_words_note`) is skipped, said in the table: the words read
as asked would score "not red" as red.
"""
from __future__ import annotations

import json
from pathlib import Path

from vidiff.data.video_folder import clip_key, jsonl_lines, read_caption_text, read_sidecar_caption
from vidiff.errors import InputError, VideoDecodeError
from vidiff.output_safety import one_line, shown

ATTRIBUTES = ("colour", "shape", "direction", "one_object", "all_correct", "steady")


def _json_prompt(path: Path) -> str | None:
    if not path.is_file():
        return None
    text = read_caption_text(path)  # its own one-line refusals (not UTF-8, too large) name the file
    try:
        data = json.loads(text)
    except RecursionError:
        raise InputError(f"{shown(path)}: nested too deeply to read (JSON of thousands of levels)") from None
    except ValueError as e:  # JSON's errors, and an integer over Python's 4300 digits
        raise InputError(f"{shown(path)}: not valid JSON ({e})") from None
    prompt = data.get("prompt") if isinstance(data, dict) else None
    return prompt if isinstance(prompt, str) else None


def _metadata_prompts(folder: Path) -> dict[str, str]:
    path = folder / "metadata.jsonl"
    if not path.is_file():
        return {}
    prompts = {}
    for n, line in jsonl_lines(path):  # read as training reads it
        try:
            row = json.loads(line)
        except RecursionError:
            raise InputError(f"{shown(path)}, line {n}: nested too deeply to read") from None
        except ValueError as e:
            raise InputError(f"{shown(path)}, line {n}: not valid JSON ({e})") from None
        if not isinstance(row, dict):  # a list or a number was an AttributeError traceback
            raise InputError(f"{shown(path)}, line {n}: needs a JSON object with 'file_name' and 'text'")
        text = row.get("text", row.get("prompt", row.get("caption")))
        if isinstance(row.get("file_name"), str) and isinstance(text, str):
            prompts[clip_key(row["file_name"])] = text  # "./a.mp4" or "sub\\a.mp4" names its clip, as in training
    return prompts


def find_prompt(video: Path, metadata: dict[str, str], name: str) -> str | None:
    """The prompt of one clip (`name`: its path in the folder, as metadata.jsonl names it), or None when nothing
    beside it names one."""
    for sidecar in (video.with_name(video.name + ".json"), video.with_suffix(".json")):
        if (prompt := _json_prompt(sidecar)) is not None:
            return prompt
    caption = video.with_suffix(".txt")
    if caption.is_file():
        return read_sidecar_caption(caption)  # as training reads it (a BOM, CRLF line ends)
    return metadata.get(name)


def evaluate_shapes_folder(folder: str | Path, progress: bool = False) -> dict:
    """Shapes accuracy of every clip in `folder` that has a prompt; returns accuracies, counts and rows."""
    from tqdm.auto import tqdm

    from vidiff.data.prompt_words import read_untrained_words
    from vidiff.data.shapes import parse_prompt
    from vidiff.data.shapes_analysis import analyze_clip
    from vidiff.data.prompt_negations import negated_words_note
    from vidiff.eval.fvd import clip_names, video_files
    from vidiff.io import read_video

    folder = Path(folder)
    videos = video_files(folder, "FOLDER")
    metadata = _metadata_prompts(folder)
    names = clip_names(videos, folder)
    counts = {a: {"correct": 0, "total": 0} for a in ATTRIBUTES}
    rows, skipped = [], []
    for video, name in tqdm(list(zip(videos, names)), desc="shapes eval", unit="clip",
                            disable=not progress):
        prompt = find_prompt(video, metadata, name)
        if prompt is None:
            skipped.append({"file": name, "reason": "no prompt (.json sidecar, .txt or metadata.jsonl)"})
            continue
        # judged as a Shapes pipeline reads it: "a teal globe" asks for a green circle (read_untrained_words)
        read = read_untrained_words(prompt)[0]
        asked = dict(zip(("colour", "shape", "direction"), parse_prompt(read)))
        if all(v is None for v in asked.values()):
            skipped.append({"file": name, "reason": f"prompt names no colour, shape or direction: {prompt!r}"})
            continue
        if negated_words_note(prompt):  # "a circle, not red" would be scored as asking for red
            skipped.append({"file": name, "reason": f"prompt negates a colour, shape or direction, which this "
                                                    f"score cannot judge: {prompt!r}"})
            continue
        row = {"file": name, "prompt": prompt, "asked": asked}
        try:
            analysis = analyze_clip(read_video(video)[0])
        except VideoDecodeError as e:
            # An unreadable clip is a failed generation: it counts, and fails every attribute.
            matches = {a: False for a in ATTRIBUTES}
            row.update(found=None, error=str(e))
        else:
            matches = analysis.matches(read)
            row["found"] = {
                "colour": analysis.colour, "shape": analysis.shape, "direction": analysis.direction,
                "objects_per_frame": analysis.objects_per_frame, "speed": analysis.speed,
                "fit_residual": analysis.fit_residual,
            }
        row["matches"] = matches
        rows.append(row)
        for a in ATTRIBUTES:
            if a in asked and asked[a] is None:
                continue  # the prompt does not ask for this attribute
            counts[a]["total"] += 1
            counts[a]["correct"] += int(bool(matches[a]))
    accuracy = {a: (c["correct"] / c["total"] if c["total"] else None) for a, c in counts.items()}
    # a generation that wrote its row but no clip (or a renamed clip) dropped out of the score without a word
    absent = sorted(set(metadata) - set(names))
    return {"folder": str(folder), "num_clips": len(rows), "accuracy": accuracy, "counts": counts,
            "skipped": skipped, "clips": rows, "metadata_without_clip": absent}


def _clips(count: int) -> str:
    """'1 clip', '2 clips' (the table's header said '1 clips')."""
    return f"{count} clip{'' if count == 1 else 's'}"


def _first(items: list) -> str:
    """What leads the first of `items` named in a line: ': ' when it is the only one, ', e.g. ' otherwise."""
    return ": " if len(items) == 1 else ", e.g. "


def format_shapes_table(result: dict) -> str:
    """A plain-text table of `evaluate_shapes_folder`'s result. File names are shown with their control characters
    escaped (a clip named with a terminal's escape sequence cleared the screen it was printed on)."""
    lines = [f"Shapes accuracy: {_clips(result['num_clips'])} in {shown(result['folder'])}",
             f"{'attribute':<12} {'correct':>7} {'total':>6} {'accuracy':>9}"]
    for a in ATTRIBUTES:
        c, acc = result["counts"][a], result["accuracy"][a]
        lines.append(f"{a:<12} {c['correct']:>7} {c['total']:>6} {'-' if acc is None else f'{100 * acc:.1f}%':>9}")
    if result["skipped"]:
        first = result["skipped"][0]
        example = (f"{shown(first['file'])}: {one_line(first['reason'], 200)}" if isinstance(first, dict)
                   else shown(first))
        lines.append(f"skipped {_clips(len(result['skipped']))} without a usable prompt{_first(result['skipped'])}"
                     f"{example}")
        negated = [s for s in result["skipped"] if isinstance(s, dict) and "negates" in s["reason"]]
        if negated:
            lines.append(f"  of which {len(negated)} negate{'s' if len(negated) == 1 else ''} a colour, shape or "
                         f"direction (\"not red\"), which this score cannot judge; e.g. {shown(negated[0]['file'])}")
    absent = result.get("metadata_without_clip", [])
    if absent:
        lines.append(f"metadata.jsonl names {_clips(len(absent))} not in the folder (not scored)"
                     f"{_first(absent)}{shown(absent[0])}")
    unreadable = [r for r in result["clips"] if r.get("error")]
    if unreadable:  # scored as failures, and said apart from clips the analyzer read
        lines.append(f"{_clips(len(unreadable))} could not be decoded and count{'s' if len(unreadable) == 1 else ''} as "
                     "wrong on every attribute")
    failed = [r for r in result["clips"] if not r["matches"]["all_correct"]]
    for r in failed[:10]:
        found = r["found"]
        if r.get("error"):
            lines.append(f"  unreadable: {shown(r['file'])}: {one_line(r['error'])}")
            continue
        what = (f"{found['colour']} {found['shape']} {found['direction']}, "
                f"objects/frame {min(found['objects_per_frame'])}..{max(found['objects_per_frame'])}")
        lines.append(f"  wrong: {shown(r['file'])}: asked {r['prompt']!r}, found {what}")
    if len(failed) > 10:
        lines.append(f"  ... and {len(failed) - 10} more")
    return "\n".join(lines)
