"""Measures a Shapes pipeline on the checks of its acceptance: text to video (Shapes accuracy of N clips from
varied prompts and seeds), animate (a held-out still becomes frame 0, then the object must move as asked) and
extend (colour, shape and direction kept, no jump at the seam), plus the time per clip.

    .venv/bin/python tools/eval_bundled.py [--model vidiff/bundled/shapes] [--num 100] [--trials 50] --out DIR
        [--paraphrase] [--layouts 16:4x5 16:6x3 31:7x5 33:9x4 --layout-num 30] [--skip t2v animate extend]
        [--user-keyframes 16@0,7,15 16@7] [--extend-long 64 [--extend-given 8]] [--user-wording [a b c d e f g h i j k]]

Held-out stills and clips come from Shapes seed 1000 (training used seed 1). Writes the text-to-video clips
with their sidecars into DIR/t2v (so `vidiff eval shapes DIR/t2v` re-scores them) and a summary DIR/summary.json.

--paraphrase adds the same 100 attribute sets said with held-out words only (vidiff/data/captions.py HELD_OUT: words
no training caption contains, e.g. "the ring, jade, that sails west"), into DIR/t2v_paraphrase: the honest figure
for prompts worded unlike the training captions. --user-wording [SET ...] adds them said as people type them (tools/user_wordings.py,
written apart from the caption grammar), into DIR/t2v_user (set a) or DIR/t2v_user_SET. --layouts adds text to video at other layouts
(FRAMES:KxSTRIDE, frames = (K - 1) * stride + 1), --layout-num clips each, into DIR/layout_FRAMES_KxS.
--user-keyframes adds text to video with held-out frames given at any indices (FRAMES@I,J,...), --layout-num clips
each. --first-seed S (default 10000) seeds text-to-video clip i, at every layout, with S + i: the reported figures
use 10000, a comparison that chooses a setting 20000 or more. --extend-long N extends --trials held-out clips by N
frames (extend_long: speed of the last 16 frames, a seam check a perfect generator passes, and three oracles beside
the model) of clips given --extend-given frames.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff import VideoPipeline  # noqa: E402
from vidiff.data.captions import heldout_prompt  # noqa: E402
from vidiff.data.shapes import (  # noqa: E402
    DIRECTION_VECTORS, all_combinations, prompt_for, render_clip, sample_clip_params,
)
from vidiff.data.shapes_analysis import analyze_clip  # noqa: E402
from vidiff.eval.metrics import psnr  # noqa: E402
from vidiff.eval.shapes import evaluate_shapes_folder  # noqa: E402
from vidiff.io import write_video  # noqa: E402
from vidiff.motion import clip_velocity  # noqa: E402
from vidiff.pipeline.seam import carry_seam_residual  # noqa: E402
from vidiff.random import generator  # noqa: E402
from user_wordings import SEEDS as USER_SEEDS, user_prompt  # noqa: E402

HELD_OUT_SEED = 1000


def frame_diffs(frames: torch.Tensor) -> np.ndarray:
    """Mean absolute difference between consecutive frames, (F-1,)."""
    f = frames.float()
    return (f[1:] - f[:-1]).abs().mean(dim=(1, 2, 3)).numpy()


PARAPHRASE_SEED = 77  # the held-out wording of prompt i is drawn from generator(PARAPHRASE_SEED, i)

def text_to_video(pipe, num: int, out: Path, paraphrase: bool = False, layout: tuple[int, int] | None = None,
                  user: str | None = None, first_seed: int = 10_000) -> dict:
    """`num` clips over every (colour, shape, direction), seeds first_seed + i, judged from the written mp4 files by
    the Shapes analyzer; prompts in the plain template or, with `paraphrase`, in held-out words only, or, with
    `user`, in that set of user-style wordings (tools/user_wordings.py)."""
    out.mkdir(parents=True, exist_ok=True)
    combos = all_combinations()
    times = []
    extra = {} if layout is None else {"num_keyframes": layout[0], "keyframe_stride": layout[1]}
    for i in range(num):
        colour, shape, direction = combos[(i * 7) % len(combos)]  # every combination, in a scrambled order
        if paraphrase:
            prompt = heldout_prompt(colour, shape, direction, generator(PARAPHRASE_SEED, i))
        elif user:
            prompt = user_prompt(colour, shape, direction, generator(USER_SEEDS[user], i), user)
        else:
            prompt = prompt_for(colour, shape, direction)
        start = time.perf_counter()
        frames, fps = pipe.text_to_video(prompt, seed=first_seed + i, progress=False, **extra)
        times.append(time.perf_counter() - start)
        path = out / f"t2v_{i:03d}.mp4"
        write_video(path, frames, fps)
        (out / f"t2v_{i:03d}.mp4.json").write_text(json.dumps({"prompt": prompt, "seed": first_seed + i,
                                                               "truth": [colour, shape, direction]}))
    result = evaluate_shapes_folder(out)
    truth = against_truth(result.pop("clips"), out)
    return {"seconds_per_clip_median": float(np.median(times)), "accuracy": result, "against_truth": truth}


def against_truth(rows: list[dict], out: Path) -> dict:
    """Accuracy against the (colour, shape, direction) each prompt was drawn for (its sidecar's "truth"), not as the
    prompt reader reads the prompt: `vidiff eval shapes` scores only what its reader knows, so a noun it does not
    know ("a red coin") went unscored and the all-correct figure counted it right."""
    counts = dict.fromkeys(("colour", "shape", "direction", "one_object", "all_correct"), 0)
    for row in rows:
        truth = dict(zip(("colour", "shape", "direction"),
                         json.loads((out / f"{row['file']}.json").read_text())["truth"]))
        found = row.get("found") or {}
        right = {a: found.get(a) == truth[a] for a in truth}
        right["one_object"] = bool(row["matches"]["one_object"])
        right["all_correct"] = all(right.values())
        for a, ok in right.items():
            counts[a] += int(ok)
    return {"num_clips": len(rows), "accuracy": {a: c / max(len(rows), 1) for a, c in counts.items()}}


def parse_layout(spec: str) -> tuple[int, int, int]:
    """"31:7x5" -> (31, 7, 5), checking frames = (K - 1) * stride + 1."""
    frames, layout = spec.split(":")
    k, stride = (int(v) for v in layout.lower().split("x"))
    if (k - 1) * stride + 1 != int(frames):
        raise SystemExit(f"--layouts {spec}: {k} keyframes at stride {stride} span {(k - 1) * stride + 1} frames")
    return int(frames), k, stride


def layouts(pipe, specs: list[str], num: int, out: Path, first_seed: int = 10_000) -> dict:
    table = {}
    for spec in specs:
        frames, k, stride = parse_layout(spec)
        table[spec] = text_to_video(pipe, num, out / f"layout_{frames}_{k}x{stride}", layout=(k, stride),
                                     first_seed=first_seed)
        print(spec, json.dumps(table[spec]["accuracy"].get("accuracy", table[spec]["accuracy"]), default=float))
    return table


def parse_user_keyframes(spec: str) -> tuple[int, list[int]]:
    """"16@0,7,15" -> (16, [0, 7, 15]): a clip of 16 frames with user keyframes at those frame indices."""
    frames, indices = spec.split("@")
    frames, indices = int(frames), sorted({int(i) for i in indices.split(",")})
    if not indices or not 0 <= indices[0] <= indices[-1] < frames:
        raise SystemExit(f"--user-keyframes {spec}: indices must be frames of the clip (0..{frames - 1})")
    return frames, indices


def user_keyframes(pipe, specs: list[str], num: int) -> dict:
    """Text to video with user keyframes at the given indices: held-out clip i (seed 1000, index 300 + i) gives
    its rendered frames there and its plain caption; judged by the Shapes analyzer on the whole clip, with the
    PSNR of the frames the pipeline made against the rendered clip beside it."""
    table = {}
    for spec in specs:
        frames, indices = parse_user_keyframes(spec)
        rows = []
        for i in range(num):
            params = sample_clip_params(HELD_OUT_SEED, 300 + i, num_frames=frames)
            truth = torch.as_tensor(render_clip(params))
            prompt = prompt_for(params.colour, params.shape, params.direction)
            out, _ = pipe.text_to_video(prompt, keyframes={t: truth[t] for t in indices}, num_frames=frames, seed=i,
                                        progress=False)
            ok = analyze_clip(out.numpy()).matches(prompt)
            made = [t for t in range(frames) if t not in indices]
            rows.append({"all_correct": all(ok.values()), **{k: bool(v) for k, v in ok.items()},
                         "given_exact": all(torch.equal(out[t], truth[t]) for t in indices),
                         "made_psnr": float(psnr(out[made], truth[made]))})
        table[spec] = summarize(rows, "all_correct")
        table[spec]["made_psnr_mean"] = float(np.mean([r["made_psnr"] for r in rows]))
        table[spec]["given_exact_rate"] = float(np.mean([r["given_exact"] for r in rows]))
        print(spec, json.dumps({k: v for k, v in table[spec].items() if k != "rows"}, default=float))
    return {"specs": table}


def animate(pipe, trials: int) -> dict:
    rows = []
    for i in range(trials):
        params = sample_clip_params(HELD_OUT_SEED, i)
        truth = torch.as_tensor(render_clip(params))
        prompt = prompt_for(params.colour, params.shape, params.direction)
        frames, _ = pipe.image_to_video(truth[0], prompt, seed=i, progress=False)
        a = analyze_clip(frames.numpy())
        ok = a.matches(prompt)
        rows.append({"first_frame_psnr": float(psnr(frames[0], truth[0])), "moves_as_asked": all(ok.values()),
                     **{k: bool(v) for k, v in ok.items()}})
    return summarize(rows, "moves_as_asked")


def seam_and_typical(frames: torch.Tensor, given: int) -> tuple[float, float]:
    """The seam check's two sides: the difference from the last given frame to the first new one, and the median
    of all the clip's other frame-to-frame differences."""
    diffs = frame_diffs(frames)
    return float(diffs[given - 1]), float(np.median(np.delete(diffs, given - 1)))


def extend(pipe, trials: int, given: int = 8, new: int = 8) -> dict:
    rows = []
    for i in range(trials):
        params = sample_clip_params(HELD_OUT_SEED, 500 + i)
        truth = torch.as_tensor(render_clip(params))
        prompt = prompt_for(params.colour, params.shape, params.direction)
        frames, _ = pipe.extend_video(truth[:given], prompt, num_frames=new, seed=i, progress=False)
        a = analyze_clip(frames[given:].numpy())  # the new frames alone
        seam, typical = seam_and_typical(frames, given)
        keeps = a.colour == params.colour and a.shape == params.shape and a.direction == params.direction
        rows.append({"keeps_colour_shape_direction": bool(keeps and a.one_object), "seam_diff": seam,
                     "typical_diff": typical, "no_jump": seam <= typical,
                     "ok": bool(keeps and a.one_object and seam <= typical)})
    out = summarize(rows, "ok")
    out["keeps_rate"] = float(np.mean([r["keeps_colour_shape_direction"] for r in rows]))
    out["no_jump_rate"] = float(np.mean([r["no_jump"] for r in rows]))
    out["seam_over_typical_median"] = float(np.median([r["seam_diff"] / max(r["typical_diff"], 1e-6) for r in rows]))
    return out


SEAM_TOLERANCE_PX = 1.0  # whole-pixel rendering makes a slow object's centroid step 0 or 1 px, never its mean


def speed_of(centres: list, direction: str) -> float | None:
    """Least-squares speed (px/frame) along `direction` of per-frame (x, y) centroids (None where none)."""
    dx, dy = DIRECTION_VECTORS[direction]
    pts = [(t, c[0] * dx + c[1] * dy) for t, c in enumerate(centres) if c is not None]
    if len(pts) < 3:
        return None
    t, pos = np.array(pts, np.float64).T
    return float(np.polyfit(t, pos, 1)[0])


def long_extension_row(frames: torch.Tensor, params, given: int) -> dict:
    """The 64-frame checks of one extended clip (input `given` frames, then the new ones): colour, shape, direction
    and one object on the new frames; the speed of the last 16 frames against the clip's (params.speed); the seam
    check: the centroid step from the last input frame to the first new one within SEAM_TOLERANCE_PX of the mean
    step of the new frames themselves."""
    new = analyze_clip(frames[given:].numpy())
    keeps = (new.colour == params.colour and new.shape == params.shape and new.direction == params.direction
             and new.one_object)
    all_centres = analyze_clip(frames.numpy()).centres
    speed = speed_of(all_centres[-16:], params.direction)
    steps = [float(np.hypot(b[0] - a[0], b[1] - a[1])) for a, b in zip(all_centres[given:], all_centres[given + 1:])
             if a is not None and b is not None]
    a, b = all_centres[given - 1], all_centres[given]
    seam = None if a is None or b is None else float(np.hypot(b[0] - a[0], b[1] - a[1]))
    seam_ok = seam is not None and bool(steps) and abs(seam - float(np.mean(steps))) <= SEAM_TOLERANCE_PX
    speed_ok = speed is not None and abs(speed - params.speed) <= 0.15 * params.speed
    return {"keeps": bool(keeps), "speed_last16": speed, "speed_true": params.speed, "speed_ok": bool(speed_ok),
            "seam_step": seam, "mean_new_step": float(np.mean(steps)) if steps else None, "seam_ok": bool(seam_ok)}


def extend_long(pipe, trials: int, given: int = 8, new: int = 64, first: int = 700, strength: float | None = None
                ) -> dict:
    """Extension by `new` frames of held-out clips rendered `given + new` frames long (seed 1000, index first + i; a
    long clip moves slowly enough to stay in the frame), judged by long_extension_row for the model and three
    oracles: the rendered continuation itself ("as rendered"); the rendered continuation encoded and decoded by the
    pipeline's VAE with the pipeline's seam fade ("through the VAE"), the best a latent generator returning the
    input frames as given can do; and the clip rendered at the speed the `given` frames show ("speed read from the
    input", vidiff/motion.py): what a generator that continues exactly the visible motion scores. The objects are
    drawn at whole pixels, so a few slow frames do not pin the speed down; that row is the ceiling of the speed check
    for a generator that only sees the input."""
    table = {"model": [], "as rendered": [], "through the VAE": [], "speed read from the input": []}
    for i in range(trials):
        params = sample_clip_params(HELD_OUT_SEED, first + i, num_frames=given + new)
        truth = torch.as_tensor(render_clip(params))
        prompt = prompt_for(params.colour, params.shape, params.direction)
        frames, _ = pipe.extend_video(truth[:given], prompt, num_frames=new, seed=i, progress=False, strength=strength)
        with torch.inference_mode():
            recon = pipe.vae.decode_to_frames(pipe.vae.encode_frames(truth), progress=False)  # (1,F,H,W,3)
        vae = torch.cat([truth[:given], carry_seam_residual(truth[given - 1], recon[:, given - 1:], 4)[0]])
        speed = float(clip_velocity(truth[:given]).norm())  # the speed extend_video reads off the input
        read = torch.as_tensor(render_clip(dataclasses.replace(params, speed=speed)))
        for name, clip in (("model", frames), ("as rendered", truth), ("through the VAE", vae),
                           ("speed read from the input", read)):
            table[name].append(long_extension_row(clip, params, given))
    out = {"given": given}
    for name, rows in table.items():
        out[name] = {k: float(np.mean([r[k] for r in rows])) for k in ("keeps", "speed_ok", "seam_ok")}
        out[name]["trials"] = len(rows)
        out[name]["rows"] = rows
    return out


def summarize(rows: list[dict], key: str) -> dict:
    return {"trials": len(rows), "rate": float(np.mean([r[key] for r in rows])), "rows": rows}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vidiff/bundled/shapes")
    p.add_argument("--num", type=int, default=100, help="text-to-video clips")
    p.add_argument("--trials", type=int, default=50, help="animate and extend trials each")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--skip", nargs="*", default=[], choices=["t2v", "animate", "extend"])
    p.add_argument("--paraphrase", action="store_true", help="also text to video from held-out-vocabulary prompts")
    p.add_argument("--user-wording", nargs="*", choices=sorted(USER_SEEDS), default=None, metavar="SET",
                   help="also text to video from these sets of user-style prompts (tools/user_wordings.py: "
                        f"{', '.join(sorted(USER_SEEDS))}; the flag alone: a) into DIR/t2v_user (set a) or "
                        "DIR/t2v_user_SET")
    p.add_argument("--layouts", nargs="*", default=[], help="also text to video at FRAMES:KxSTRIDE layouts")
    p.add_argument("--layout-num", type=int, default=30, help="clips per layout (and per --user-keyframes spec)")
    p.add_argument("--extend-long", type=int, default=0, metavar="N",
                   help="also extend --trials held-out clips by N frames (e.g. 64), with the speed and seam checks "
                        "and the as-rendered and through-the-VAE oracles beside the model")
    p.add_argument("--extend-given", type=int, default=8, metavar="G",
                   help="input frames of each --extend-long trial (default 8; 16 = a clip of the pipeline's length)")
    p.add_argument("--extend-strength", type=float, default=None, metavar="S",
                   help="extend_video's strength for --extend-long (default: the pipeline's)")
    p.add_argument("--extend-first", type=int, default=700, metavar="I",
                   help="first held-out clip of --extend-long (default 700, the reported set; 900+ for tuning)")
    p.add_argument("--first-seed", type=int, default=10_000, metavar="S",
                   help="seed of text-to-video clip 0 (and of each layout's), clip i takes S + i (default 10000, "
                        "the reported set; 20000+ for tuning)")
    p.add_argument("--user-keyframes", nargs="*", default=[],
                   help="also text to video with user keyframes, FRAMES@I,J,... (e.g. 16@0,7,15): held-out frames "
                        "at those indices")
    p.add_argument("--as-written", action="store_true",
                   help="give the text encoder the prompts as written (pipeline.yaml read_colour_names, "
                        "read_shape_nouns and read_as_template: false): what the model reads of the words on its own")
    p.add_argument("--no-template", action="store_true",
                   help="read colour names and shape nouns but give no prompt in the plain template "
                        "(pipeline.yaml read_as_template: false)")
    args = p.parse_args()
    for spec in args.layouts:
        parse_layout(spec)
    for spec in args.user_keyframes:
        parse_user_keyframes(spec)
    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(args.model)
    if args.as_written:
        pipe.config = dataclasses.replace(pipe.config, read_colour_names=False, read_shape_nouns=False,
                                          read_as_template=False)
    if args.no_template:
        pipe.config = dataclasses.replace(pipe.config, read_as_template=False)
    summary = {"model": args.model, "first_seed": args.first_seed, "read_colour_names": pipe.config.read_colour_names,
               "read_shape_nouns": pipe.config.read_shape_nouns, "read_as_template": pipe.config.read_as_template}
    seed = args.first_seed
    steps = {"t2v": lambda: text_to_video(pipe, args.num, args.out / "t2v", first_seed=seed),
             "paraphrase": lambda: text_to_video(pipe, args.num, args.out / "t2v_paraphrase", paraphrase=True,
                                                 first_seed=seed),
             "user_wording": lambda: {s: text_to_video(pipe, args.num, args.out / ("t2v_user" if s == "a" else f"t2v_user_{s}"),
                                                       user=s, first_seed=seed) for s in (args.user_wording or ["a"])},
             "layouts": lambda: layouts(pipe, args.layouts, args.layout_num, args.out, first_seed=seed),
             "user_keyframes": lambda: user_keyframes(pipe, args.user_keyframes, args.layout_num),
             "animate": lambda: animate(pipe, args.trials), "extend": lambda: extend(pipe, args.trials),
             "extend_long": lambda: extend_long(pipe, args.trials, given=args.extend_given, new=args.extend_long,
                                                first=args.extend_first, strength=args.extend_strength)}
    for name, run in steps.items():
        if name in args.skip or (name == "paraphrase" and not args.paraphrase) or (name == "layouts" and not args.layouts) \
                or (name == "user_keyframes" and not args.user_keyframes) \
                or (name == "extend_long" and not args.extend_long) \
                or (name == "user_wording" and args.user_wording is None):
            continue
        start = time.perf_counter()
        summary[name] = run()
        summary[name]["seconds"] = time.perf_counter() - start
        brief = {k: ({kk: vv for kk, vv in v.items() if kk != "rows"} if isinstance(v, dict) else v)
                 for k, v in summary[name].items() if k not in ("rows", "layouts", "specs")}
        print(name, json.dumps(brief, default=float))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
