"""Hashes of the bundled pipeline's frames for 10 fixed requests, across every generation entry point.

    .venv/bin/python tools/bundle_hashes.py [--write tests/data/bundle_hashes.json]

The redesign of round 2 had to keep these bit-identical (frames, not file bytes); tests/test_bundle.py
regenerates them and compares. One thread, so that no kernel changes its reduction order between runs.

Bit identity holds on one CPU with one torch build, not across them: oneDNN / MKL pick other kernels on other
CPUs (the same commit gives other frames on an AMD EPYC without AMX than on the Intel machine with AMX the first
set came from). So the file holds one set of hashes per platform (`platform()`: CPU model,
torch's CPU capability, AMX, torch version); --write adds or replaces this machine's set and keeps the others.
Loading the VAE with channels-last weights (2026-12-02, vidiff/models/vae.py for_inference) moved the low bits
on every platform, so the sets recorded before it were dropped; the AVX2 EPYC's was recorded after it. The fills'
sampler became euler_ancestral (2026-12-02 evening), which changed every filled frame: the AVX2 set was dropped and
the AVX-512 EPYC's (with bf16 kernels) recorded. The keyframe part and its control adapter were fine-tuned for
extension speed (2026-12-03, tools/finetune_speed.sh), which changed every frame: that set was recorded again.
The bundle's extensions then started from the clip's motion (`extension_strength: 0.2`, 2026-12-03 afternoon),
which changed the extend case's frames only: recorded again. The keyframe part and its control adapter were
fine-tuned on captions that say the motion as a path ("from right to left", 2026-12-03 evening), which changed every
frame but the fill's: recorded again. On 2026-12-06 another "AMD EPYC / AVX512" (family 25 model 17, AVX512-BF16)
gave other frames than the one on record for the same commit (c158147, and this day's commits gave its own frames
bit for bit): a cloud CPU's name says too little, so the key gained the family, model number and cache size, the
older set (whose machine's are not known) was dropped and this machine's recorded. Later that day an Intel Xeon
with AMX (family 6 model 207) gave the same frames at the day's first and last commits (501313d, and after the prompt
template, whose plain-template requests here go to the encoder as written), and its set was added.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import platform as _platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUNDLE = Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes"

# (entry point, prompt, seed): 6 text-to-video, 2 animate, 1 extend, 1 fill_between
CASES = [
    ("t2v", "a red circle moving left", 0),
    ("t2v", "a blue square moving up", 1),
    ("t2v", "a green triangle moving right", 2),
    ("t2v", "a yellow circle moving down", 3),
    ("t2v", "a white square moving left", 4),
    ("t2v", "a blue triangle moving down", 5),
    ("animate", "a green triangle moving down", 6),  # the still's own colour and shape (held-out clip 6)
    ("animate", "a green square moving left", 7),
    ("extend", "a red circle moving down", 8),
    ("fill", "", 9),
]


def still(seed: int) -> torch.Tensor:
    """A held-out rendered Shapes frame (uint8 (H,W,3)) as the input image / clip for the non-t2v cases."""
    from vidiff.data.shapes import render_clip, sample_clip_params

    params = sample_clip_params(1000, seed)
    return render_clip(params)  # (F,H,W,3)


def run_case(pipe, kind: str, prompt: str, seed: int) -> torch.Tensor:
    if kind == "t2v":
        return pipe.text_to_video(prompt, seed=seed, progress=False)[0]
    if kind == "animate":
        return pipe.image_to_video(still(seed)[0], prompt, seed=seed, progress=False)[0]
    if kind == "extend":
        return pipe.extend_video(still(seed)[:8], prompt, num_frames=8, seed=seed, progress=False)[0]
    return pipe.fill_between(still(seed)[::5][:3], 5, seed=seed)


def platform() -> str:
    """What decides the low bits of the frames: CPU model (with its family, model number and cache size: a cloud
    "AMD EPYC" names several), AMX, torch's CPU capability and torch's version."""
    model, amx, detail = _platform.processor() or "unknown CPU", False, ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        fields = {}
        for line in info.splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        model = fields.get("model name", model)
        detail = f" (family {fields.get('cpu family', '?')} model {fields.get('model', '?')}, " \
                 f"cache {fields.get('cache size', '?')})"
        amx = " amx_tile" in info
    except OSError:
        pass
    return (f"{model}{detail} / {torch.backends.cpu.get_cpu_capability()}{' + AMX' if amx else ''} / "
            f"torch {torch.__version__}")


def frame_hash(frames: torch.Tensor) -> str:
    return hashlib.sha256(frames.contiguous().numpy().tobytes()).hexdigest()[:16]


@contextlib.contextmanager
def one_thread():
    """torch on one thread inside the block (the hashes are made so), the caller's count restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def compute(pipe) -> list[dict]:
    out = []
    with one_thread():
        for kind, prompt, seed in CASES:
            frames = run_case(pipe, kind, prompt, seed)
            out.append({"kind": kind, "prompt": prompt, "seed": seed, "shape": list(frames.shape),
                        "sha256_16": frame_hash(frames)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="write the hashes to this JSON file")
    args = parser.parse_args()
    from vidiff import VideoPipeline

    rows = compute(VideoPipeline.from_pretrained(BUNDLE))
    for row in rows:
        print(row)
    if args.write:
        sets = json.loads(args.write.read_text()) if args.write.is_file() else []
        here = platform()
        sets = [s for s in sets if s["platform"] != here] + [{"platform": here, "frames": rows}]
        args.write.write_text(json.dumps(sets, indent=1) + "\n")
        print(f"{args.write}: {len(sets)} platform(s); this one is {here!r}")


if __name__ == "__main__":
    main()
