"""The hostile-input battery (issue 13): every case runs the real CLI in a subprocess and must end with exit code
2, exactly one line on stderr without a traceback, in under 10 s and 1 GiB, with nothing changed on disk: the
inputs hash the same, no output or temporary file appears, and a victim file planted outside the case folder
(behind every symlink a case plants) is untouched.

Cases are grouped by category (the first part of each id). `docs/reliability.md` lists counts and timings.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "vidiff" / "bundled" / "shapes"
# every part folder of the bundle (vae, keyframes, interpolation and, when it has them, the control parts)
PARTS = sorted(p.name for p in BUNDLED.iterdir() if (p / "model.safetensors").is_file())
TIME_LIMIT_S = 10.0
MEMORY_LIMIT_KB = 1 << 20  # 1 GiB peak resident set
VICTIM_TEXT = b"victim: must never change\n"
TIMINGS: list[tuple[str, float, int]] = []  # (case id, seconds, peak KB), read by the summary test


# ---- shared, read-only assets ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    """clip.mp4 (8 frames 64x64 8 fps), image.png, and a copy of the bundled pipeline's weights."""
    from PIL import Image

    from vidiff.io import write_video

    folder = tmp_path_factory.mktemp("assets")
    rng = np.random.default_rng(0)
    frames = np.cumsum(rng.integers(0, 40, (8, 64, 64, 3), dtype=np.uint8), axis=0, dtype=np.uint8)
    write_video(folder / "clip.mp4", frames, 8)
    write_video(folder / "small.mp4", frames[:, :32, :32], 8)
    Image.fromarray(frames[0]).save(folder / "image.png")
    weights = folder / "weights"
    for part in PARTS:
        (weights / part).mkdir(parents=True)
        shutil.copyfile(BUNDLED / part / "model.safetensors", weights / part / "model.safetensors")
    return folder


def make_pipeline(ws: Path, assets: Path, name: str = "pipe", yaml_text: str | None = None) -> Path:
    """A pipeline folder in the case folder: the bundled YAML files (or `yaml_text` as pipeline.yaml) and
    symlinks to the shared weights."""
    folder = ws / name
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(yaml_text if yaml_text is not None else (BUNDLED / "pipeline.yaml").read_text())
    for part in PARTS:
        (folder / part).mkdir()
        for file in (BUNDLED / part).glob("*.yaml"):
            shutil.copyfile(file, folder / part / file.name)
        (folder / part / "model.safetensors").symlink_to(assets / "weights" / part / "model.safetensors")
    return folder


# ---- snapshots: everything a case may not change -----------------------------------------------------------------


def snapshot(*roots: Path) -> dict[str, str]:
    """{path: kind and content hash} of every entry under the roots; FIFOs and devices are never opened."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    out[str(path)] = "link:" + os.readlink(path)
                elif stat.S_ISDIR(st.st_mode):
                    out[str(path)] = "dir"
                elif stat.S_ISREG(st.st_mode):
                    out[str(path)] = f"file:{st.st_size}:" + hashlib.sha256(path.read_bytes()).hexdigest()
                else:
                    out[str(path)] = f"special:{stat.S_IFMT(st.st_mode)}"
    return out


def run_cli(argv: list, cwd: Path, timeout: float = 60.0) -> tuple[int, str, float, int]:
    """(exit code, stderr, seconds, peak RSS in KB) of `python -m vidiff.cli ARGV` in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO)}
    with open(cwd / ".." / f"{cwd.name}.stderr", "w+b") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "vidiff.cli", *argv], cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        timer = threading.Timer(timeout, lambda: proc.send_signal(signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        err.seek(0)
        text = err.read().decode("utf-8", "backslashreplace")
    os.unlink(cwd / ".." / f"{cwd.name}.stderr")
    return proc.returncode, text, elapsed, usage.ru_maxrss


# ---- the cases ---------------------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    build: Callable  # (ws, outside, assets) -> argv; plants the files the case needs
    expect: str  # a substring of the one stderr line


CASES: list[Case] = []


def case(id: str, expect: str):
    def register(build):
        CASES.append(Case(id, build, expect))
        return build
    return register


def plant_link(link: Path, outside: Path) -> Path:
    """`link` -> the victim file outside the case folder."""
    link.symlink_to(outside / "victim.txt")
    return link


def clip(ws, assets, name="in.mp4"):
    shutil.copyfile(assets / "clip.mp4", ws / name)
    return str(ws / name)


def image(ws, assets, name="in.png"):
    shutil.copyfile(assets / "image.png", ws / name)
    return str(ws / name)


def gen(*extra):
    return ["generate", "a red circle moving left", *extra]


# -- output: nothing lost, nothing overwritten --

case("output-extend-onto-input", "is the input")(
    lambda ws, o, a: ["extend", clip(ws, a), "p", "--frames", "8", "-o", str(ws / "in.mp4")])
case("output-extend-onto-input-relative", "is the input")(
    lambda ws, o, a: ["extend", clip(ws, a), "p", "--frames", "8", "-o", "./sub/../in.mp4"]
    if (ws / "sub").mkdir() is None else None)


@case("output-extend-onto-input-symlink", "is the input")
def _(ws, o, a):
    src = clip(ws, a)
    (ws / "alias.mp4").symlink_to(src)
    return ["extend", src, "p", "--frames", "8", "-o", str(ws / "alias.mp4")]


@case("output-extend-onto-input-hardlink", "is the input")
def _(ws, o, a):
    src = clip(ws, a)
    os.link(src, ws / "hard.mp4")
    return ["extend", src, "p", "--frames", "8", "-o", str(ws / "hard.mp4")]


@case("output-extend-numbered-sample-onto-input", "is the input")
def _(ws, o, a):
    src = clip(ws, a, "out_001.mp4")
    return ["extend", src, "p", "--frames", "8", "--num", "2", "-o", str(ws / "out.mp4")]


@case("output-animate-gif-onto-input", "is the input")
def _(ws, o, a):
    from PIL import Image

    Image.open(a / "image.png").save(ws / "x.gif")
    return ["animate", str(ws / "x.gif"), "p", "-o", str(ws / "x.gif")]


case("output-animate-contact-sheet-onto-input", "is the input")(
    lambda ws, o, a: ["animate", image(ws, a, "out.sheet.png"), "p", "--contact-sheet", "-o", str(ws / "out.mp4")])
case("output-is-a-folder", "is a folder")(
    lambda ws, o, a: gen("-o", str(ws / "dir.mp4")) if (ws / "dir.mp4").mkdir() is None else None)
# a trailing slash names a folder not made yet; Path() dropped it and a file dir.mp4 was written
case("output-ends-with-a-slash", "ends with /, so it names a folder")(
    lambda ws, o, a: gen("-o", str(ws / "new.mp4") + "/"))
case("output-interpolate-ends-with-a-slash", "ends with /, so it names a folder")(
    lambda ws, o, a: ["interpolate", clip(ws, a), "--factor", "2", "-o", str(ws / "new.mp4") + "/"])


@case("output-symlink-to-a-folder", "is a folder")
def _(ws, o, a):
    (ws / "d").mkdir()
    (ws / "d.mp4").symlink_to(ws / "d")
    return gen("-o", str(ws / "d.mp4"))


@case("output-is-a-fifo", "not a regular file")
def _(ws, o, a):
    os.mkfifo(ws / "out.mp4")
    return gen("-o", str(ws / "out.mp4"))


case("output-under-a-file", "out.mp4")(
    lambda ws, o, a: gen("-o", str(Path(image(ws, a)) / "out.mp4")))
case("output-unwritable-place", "cannot write in folder /proc")(lambda ws, o, a: gen("-o", "/proc/vidiff-out.mp4"))
case("output-name-over-255-bytes", "the limit is 255")(lambda ws, o, a: gen("-o", str(ws / ("a" * 252 + ".mp4"))))
case("output-multibyte-name-over-255-bytes", "the limit is 255")(
    lambda ws, o, a: gen("-o", str(ws / ("\u00e9" * 126 + ".mp4"))))
case("output-path-over-4000-bytes", "longer than 4000 bytes")(
    lambda ws, o, a: gen("-o", str(ws / "/".join(["d" * 200] * 21) / "out.mp4")))
case("output-bad-suffix", "output suffix must be one of")(lambda ws, o, a: gen("-o", str(ws / "out.avi")))
case("output-report-onto-metrics", "is the input")(
    lambda ws, o, a: ["report", str(run_dir(ws)), "-o", str(ws / "run" / "metrics.jsonl")])
case("output-report-onto-config", "is the input")(
    lambda ws, o, a: ["report", str(run_dir(ws)), "-o", str(ws / "run" / "config.yaml")])


@case("output-report-onto-preview-via-symlink", "is the input")
def _(ws, o, a):
    run = run_dir(ws)
    (ws / "page.html").symlink_to(run / "previews" / "step_00000001.gif")
    return ["report", str(run), "-o", str(ws / "page.html")]


case("output-report-into-folder", "is a folder")(
    lambda ws, o, a: ["report", str(run_dir(ws)), "-o", str(run_dir(ws, make=False) / "previews")])


@case("output-eval-json-onto-a-clip", "is the input")
def _(ws, o, a):
    folder = ws / "clips"
    folder.mkdir()
    clip(folder, a, "c.mp4")
    return ["eval", "shapes", str(folder), "--json", str(folder / "c.mp4")]


@case("output-eval-json-onto-a-clip-in-a-subfolder", "is the input")
def _(ws, o, a):  # the clip folders are read with their subfolders: the clip was scored, then written over
    (ws / "clips" / "sub").mkdir(parents=True)
    clip(ws / "clips" / "sub", a, "c.mp4")
    return ["eval", "interpolation", "--videos", str(ws / "clips"), "--stride", "2", "--no-progress", "--json",
            str(ws / "clips" / "sub" / "c.mp4")]


@case("output-eval-json-onto-the-model-weights", "is the input")
def _(ws, o, a):  # a part folder of --model: the weights were written over after the fills
    shutil.copytree(BUNDLED, ws / "model")
    (ws / "clips").mkdir()
    clip(ws / "clips", a, "c.mp4")
    return ["eval", "interpolation", "--model", str(ws / "model"), "--videos", str(ws / "clips"), "--stride", "2",
            "--steps", "1", "--no-progress", "--json", str(ws / "model" / "interpolation" / "model.safetensors")]


@case("output-eval-json-into-a-folder", "is a folder")
def _(ws, o, a):
    (ws / "clips").mkdir()
    (ws / "result.json").mkdir()
    clip(ws / "clips", a, "c.mp4")
    return ["eval", "shapes", str(ws / "clips"), "--json", str(ws / "result.json")]


case("output-eval-json-unwritable", "cannot write in folder")(
    lambda ws, o, a: ["eval", "shapes", str(ws), "--json", "/proc/vidiff.json"])
case("output-data-shapes-out-is-a-file", "not a folder")(
    lambda ws, o, a: ["data", "shapes", "--out", image(ws, a), "--num", "1"])
case("output-data-shapes-out-unwritable", "cannot write in folder")(
    lambda ws, o, a: ["data", "shapes", "--out", "/proc/vidiff-data", "--num", "1"])
case("output-data-cache-out-is-a-file", "not a folder")(
    lambda ws, o, a: ["data", "cache", "--videos", str(ws), "--vae", str(BUNDLED / "vae"), "--frames", "4",
                      "--size", "64", "--out", image(ws, a)])


# -- YAML: pipeline.yaml, part config.yaml, training recipes, --set values --

BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + BOMB
PYTHON_TAG = 'x: !!python/object/apply:os.system ["touch pwned"]\n'
DEEP = "x: " + "[" * 5000 + "]" * 5000 + "\n"


def pipeline_with(text: str):
    return lambda ws, o, a: gen("--model", str(make_pipeline(ws, a, yaml_text=text)), "-o", str(ws / "o.mp4"))


case("yaml-pipeline-alias-bomb", "expands to more than")(pipeline_with(BOMB))
case("yaml-pipeline-python-tag", "is not allowed")(pipeline_with(PYTHON_TAG))
case("yaml-pipeline-binary-tag", "is not allowed")(pipeline_with("x: !!binary aGVsbG8=\n"))
case("yaml-pipeline-custom-tag", "is not allowed")(pipeline_with("fps: !cast 8\n"))
case("yaml-pipeline-invalid", "not valid YAML")(pipeline_with("fps: [8\nheight: }\n"))
case("yaml-pipeline-deep", "nested deeper than")(pipeline_with(DEEP))
case("yaml-pipeline-recursive-alias", "recursive")(pipeline_with("x: &a [1, *a]\n"))
case("yaml-pipeline-a-list", "expected a mapping")(pipeline_with("- 1\n- 2\n"))
case("yaml-pipeline-unknown-key-long", "unknown config key")(pipeline_with("k" * 1000 + ": 1\n"))
case("yaml-pipeline-key-over-1024", "not valid YAML")(pipeline_with("k" * 100_000 + ": 1\n"))
case("yaml-pipeline-long-bad-value", "fps: expected a number")(pipeline_with("fps: " + "z" * 100_000 + "\n"))


@case("yaml-pipeline-not-utf8", "not UTF-8 text")
def _(ws, o, a):
    folder = make_pipeline(ws, a)
    (folder / "pipeline.yaml").write_bytes(b"fps: 8\nheight: \xff\xfe64\n")
    return gen("--model", str(folder), "-o", str(ws / "o.mp4"))


@case("yaml-pipeline-fifo", "not a regular file")
def _(ws, o, a):
    folder = make_pipeline(ws, a)
    os.unlink(folder / "pipeline.yaml")
    os.mkfifo(folder / "pipeline.yaml")
    return gen("--model", str(folder), "-o", str(ws / "o.mp4"))


@case("yaml-pipeline-over-4mib", "limit for a config")
def _(ws, o, a):
    folder = make_pipeline(ws, a)
    with open(folder / "pipeline.yaml", "a") as f:
        f.write("#" * (5 << 20) + "\n")
    return gen("--model", str(folder), "-o", str(ws / "o.mp4"))


def part_config(part: str, text: str):
    def build(ws, o, a):
        folder = make_pipeline(ws, a)
        (folder / part / "config.yaml").write_text(text)
        return gen("--model", str(folder), "-o", str(ws / "o.mp4"))
    return build


case("yaml-pipeline-duplicate-key", "appears twice")(pipeline_with((BUNDLED / "pipeline.yaml").read_text() + "height: 48\n"))


def part_config_edit(part: str, key: str, value: str):
    """The bundled part's config.yaml with one key set: sizes a file can carry (a zero divided, a huge one built
    for minutes or allocated tens of GiB, after the text encoder had loaded)."""
    import yaml

    config = yaml.safe_load((BUNDLED / part / "config.yaml").read_text())
    config[key] = yaml.safe_load(value)
    return part_config(part, yaml.safe_dump(config))


case("part-config-zero-heads", "num_head_channels: must be in 1..")(part_config_edit("keyframes", "num_head_channels", "0"))
case("part-config-zero-groups", "norm_groups: must be in 1..")(part_config_edit("interpolation", "norm_groups", "0"))
case("part-config-huge-depth", "layers_per_block: must be in 1..32")(
    part_config_edit("keyframes", "layers_per_block", "100000"))
case("part-config-huge-width", "block_out_channels: width 65536")(
    part_config_edit("keyframes", "block_out_channels", "[65536, 65536, 65536]"))
case("part-config-negative-distance", "temporal_max_distance")(
    part_config_edit("keyframes", "temporal_max_distance", "-1"))
case("part-config-vae-huge-depth", "layers_per_block: must be in 1..32")(
    part_config_edit("vae", "layers_per_block", "100000"))
# a part config's own checks named the key only, not which of the pipeline's config.yaml files held it
case("part-config-attention-levels-short", "interpolation/config.yaml.attention_levels: needs 2 entries")(
    part_config_edit("interpolation", "attention_levels", "[false]"))
case("part-config-heads-not-dividing", "keyframes/config.yaml.num_head_channels: 7 does not divide")(
    part_config_edit("keyframes", "num_head_channels", "7"))


def without_records(build):
    """The case's pipeline without its training records and control parts, which hash the parts' files and
    configs (an edited part is "of another VAE" there first)."""
    def bare(ws, o, a):
        argv = build(ws, o, a)
        folder = ws / "pipe"
        for record in folder.glob("*/trained_on.yaml"):
            record.unlink()
        text = (folder / "pipeline.yaml").read_text()
        text = re.sub(r"(control_(keyframes|interpolation)): \S+", r"\1: null", text)
        (folder / "pipeline.yaml").write_text(re.sub(r"control_maps:\n(- \w+\n)+", "control_maps: []\n", text))
        return argv
    return bare


# decoded every frame to NaN, written black with exit code 0
case("part-config-vae-scaling-tiny", "vae/config.yaml.scaling_factor: must be within 1e-6 and 1e6 in size, got -1e-30")(
    without_records(part_config_edit("vae", "scaling_factor", "-1.0e-30")))
@case("part-trained-on-fifo", "not a regular file")  # was taken for no record: the layout checks were skipped
def _(ws, o, a):
    folder = make_pipeline(ws, a)
    os.unlink(folder / "keyframes" / "trained_on.yaml")
    os.mkfifo(folder / "keyframes" / "trained_on.yaml")
    return gen("--model", str(folder), "-o", str(ws / "o.mp4"))


case("yaml-part-config-invalid", "not valid YAML")(part_config("vae", "x: [1\n"))
case("yaml-part-config-python-tag", "is not allowed")(part_config("keyframes", PYTHON_TAG))
case("yaml-part-config-alias-bomb", "expands to more than")(part_config("interpolation", BOMB))


def train_config(text: str | bytes, *extra):
    def build(ws, o, a):
        path = ws / "recipe.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["train", "--config", str(path), *extra]
    return build


TOY = "stage: toy\noutput_dir: run\nmodel: {dim: 4, width: 8}\ndata: {kind: synthetic, num_samples: 10}\n"
case("yaml-train-alias-bomb", "expands to more than")(train_config(BOMB))
case("yaml-train-python-tag", "is not allowed")(train_config(PYTHON_TAG))
case("yaml-train-invalid", "not valid YAML")(train_config("stage: [toy\n"))
case("yaml-train-not-utf8", "not UTF-8 text")(train_config(b"stage: toy\noutput_dir: \xc3\x28\n"))
case("yaml-train-deep", "nested deeper than")(train_config(DEEP))
case("yaml-train-a-scalar", "must be a mapping")(train_config("42\n"))
# YAML's .inf and .nan passed where --set refuses them; AdamW's own checks ended in a traceback
for key, value in (("optimizer.lr", ".inf"), ("optimizer.lr", ".nan"), ("loss.kl_weight", ".nan"),
                   ("loss.l1_weight", "-.inf")):
    section, name = key.split(".")
    case(f"yaml-train-{section}-{name}-{value.strip('.-')}", f"{key}: expected a finite number")(
        train_config(TOY + f"{section}: {{{name}: {value}}}\n"))
for key, value, expect in (("eps", "-1.0e-8", "optimizer.eps must be > 0"),
                           ("weight_decay", "-0.1", "optimizer.weight_decay and optimizer.warmup_steps >= 0"),
                           ("warmup_steps", "-5", "optimizer.weight_decay and optimizer.warmup_steps >= 0"),
                           ("betas", "[0.9, 1.5]", "optimizer.betas[1]: must be in [0, 1)"),
                           ("min_lr_ratio", "2.0", "optimizer.min_lr_ratio: must be in [0, 1]")):
    case(f"yaml-train-optimizer-{key}-out-of-range", expect)(train_config(TOY + f"optimizer: {{{key}: {value}}}\n"))
case("yaml-train-loss-weight-negative", "loss.edge_weight: must be >= 0")(train_config(TOY + "loss: {edge_weight: -1.0}\n"))
case("yaml-train-empty", "the config is empty")(train_config(""))
case("yaml-train-missing", "config file not found")(lambda ws, o, a: ["train", "--config", str(ws / "nope.yaml")])
case("yaml-set-alias-bomb", "expands to more than")(train_config(TOY, "--set", "train.max_steps=" + BOMB.replace("\n", "\n")))
case("yaml-set-python-tag", "is not allowed")(train_config(TOY, "--set", "train.seed=!!python/name:os.system"))
case("yaml-set-deep", "nested deeper than")(train_config(TOY, "--set", "train.seed=" + "[" * 3000))
case("yaml-set-no-equals", "is not of the form key=value")(train_config(TOY, "--set", "train.seed"))
case("yaml-set-long-value", "expected an integer")(train_config(TOY, "--set", "train.seed=" + "9z" * 50_000))
case("yaml-set-unknown-long-key", "unknown config key")(train_config(TOY, "--set", "train." + "k" * 50_000 + "=1"))


@case("yaml-train-fifo", "not a regular file")
def _(ws, o, a):
    os.mkfifo(ws / "recipe.yaml")
    return ["train", "--config", str(ws / "recipe.yaml")]


# -- bounds, checked before any weights load, with the limit in the message --

case("bounds-frames-5000001", "--frames must be in [2, 1024]")(lambda ws, o, a: gen("--frames", "5000001", "-o", str(ws / "o.mp4")))
case("bounds-frames-1", "--frames must be in [2, 1024]")(lambda ws, o, a: gen("--frames", "1", "-o", str(ws / "o.mp4")))
# 2 keyframes asked for, fewer than trained: the message said "layout 6 frames" and nothing more (--frames 2 alone
# is made on the shortest trained grid and cut)
case("bounds-keyframes-2", "= 2 keyframes x stride 5 needs 2 keyframes (the keyframe part was trained on 3..9; "
                           "the shortest clip at stride 5 is 11 frames (3 keyframes))")(
    lambda ws, o, a: gen("--keyframes", "2", "-o", str(ws / "o.mp4")))
# within [1, 1024], but off the stride-5 grid: sampled as 1026 and cut; the error named --keyframes, never given
case("bounds-frames-1024-off-the-grid", "--frames 1024 at keyframe stride 5 is sampled as 1026 frames")(
    lambda ws, o, a: gen("--frames", "1024", "-o", str(ws / "o.mp4")))
case("bounds-extend-frames-1000000", "--frames must be in [1, 1024]")(
    lambda ws, o, a: ["extend", clip(ws, a), "p", "--frames", "1000000", "-o", str(ws / "o.mp4")])
case("bounds-steps-1e20", "--steps must be in [1, 1000]")(lambda ws, o, a: gen("--steps", "1e20", "-o", str(ws / "o.mp4")))
case("bounds-steps-huge", "--steps must be in [1, 1000]")(lambda ws, o, a: gen("--steps", str(10**20), "-o", str(ws / "o.mp4")))
case("bounds-threads-1000000", "--threads must be in [1, 1024]")(lambda ws, o, a: gen("--threads", "1000000", "-o", str(ws / "o.mp4")))
case("bounds-fps-1e300", "--fps must be a number in [0.1, 240]")(lambda ws, o, a: gen("--fps", "1e300", "-o", str(ws / "o.mp4")))
case("bounds-fps-1e-9", "--fps must be a number in [0.1, 240]")(lambda ws, o, a: gen("--fps", "1e-9", "-o", str(ws / "o.mp4")))
case("bounds-fps-nan", "--fps must be a number")(lambda ws, o, a: gen("--fps", "nan", "-o", str(ws / "o.mp4")))
case("bounds-fps-gif-60", "[0.1, 50] for .gif")(lambda ws, o, a: gen("--fps", "60", "-o", str(ws / "o.gif")))
case("bounds-num-huge", "--num must be in [1, 10000]")(lambda ws, o, a: gen("--num", "1000000000", "-o", str(ws / "o.mp4")))
case("bounds-seed-negative", "--seed must be in")(lambda ws, o, a: gen("--seed", "-1", "-o", str(ws / "o.mp4")))
case("bounds-seed-2-64", "--seed must be in")(lambda ws, o, a: gen("--seed", str(2**64), "-o", str(ws / "o.mp4")))
case("bounds-guidance-inf", "--guidance must be a finite number")(lambda ws, o, a: gen("--guidance", "inf", "-o", str(ws / "o.mp4")))
# finite, yet the guided step overflowed and every frame was written black with exit code 0
case("bounds-guidance-1e20", "--guidance must be a finite number in [0, 100]")(
    lambda ws, o, a: gen("--guidance", "1e20", "-o", str(ws / "o.mp4")))
case("bounds-image-guidance-1e20", "--image-guidance must be a finite number in [0, 100]")(
    lambda ws, o, a: gen("--image-guidance", "1e20", "-o", str(ws / "o.mp4")))
case("bounds-keyframes-huge", "--keyframes must be in [2, 256]")(
    lambda ws, o, a: gen("--keyframes", "100000", "--stride", "1", "-o", str(ws / "o.mp4")))
case("bounds-layout-too-long", "the limit is 1024")(
    lambda ws, o, a: gen("--keyframes", "250", "--stride", "5", "-o", str(ws / "o.mp4")))
case("bounds-edit-feather-negative", "--feather: blends a redrawn region")(  # was after the load; -1 with --mask:
    # tests/test_generation_cli.py
    lambda ws, o, a: ["edit", clip(ws, a), "a red circle moving left", "--feather", "-1", "-o", str(ws / "o.mp4")])
case("bounds-pipeline-rho-0", "keyframes.rho: must be > 0")(  # was found by the sampler, after the weights loaded
    pipeline_with((BUNDLED / "pipeline.yaml").read_text().replace("rho: 7.0", "rho: 0.0", 1)))
case("bounds-stride-1e9", "--stride must be in [1, 256]")(lambda ws, o, a: gen("--stride", "1000000000", "-o", str(ws / "o.mp4")))
case("bounds-pipeline-height-65536", "height must be in [1, 4096]")(
    pipeline_with((BUNDLED / "pipeline.yaml").read_text().replace("height: 64", "height: 65536")))
case("bounds-pipeline-width-0", "width must be in [1, 4096]")(
    pipeline_with((BUNDLED / "pipeline.yaml").read_text().replace("width: 64", "width: 0")))
case("bounds-pipeline-stride-1e9", "keyframe_stride must be in [1, 256]")(
    pipeline_with((BUNDLED / "pipeline.yaml").read_text().replace("keyframe_stride: 5", "keyframe_stride: 1000000000")))
case("bounds-pipeline-steps-1e9", "steps: must be in [1, 1000]")(
    pipeline_with((BUNDLED / "pipeline.yaml").read_text().replace("steps: 20", "steps: 1000000000")))
case("bounds-pipeline-guidance-1e20", "keyframes.guidance_scale: must be a finite number in [0, 100]")(
    pipeline_with((BUNDLED / "pipeline.yaml").read_text().replace("guidance_scale: 2.0", "guidance_scale: 1.0e+20")))
case("bounds-pipeline-fps-0", "fps must be in [0.1, 240]")(
    pipeline_with((BUNDLED / "pipeline.yaml").read_text().replace("fps: 8.0", "fps: 0.0")))
case("bounds-pipeline-max-gap-huge", "max_gap must be in [2, 256]")(
    pipeline_with(re.sub(r"max_gap: \d+", "max_gap: 100000", (BUNDLED / "pipeline.yaml").read_text())))
case("bounds-data-shapes-num-huge", "num must be in [1, 1000000]")(
    lambda ws, o, a: ["data", "shapes", "--out", str(ws / "d"), "--num", "1000000000000"])
case("bounds-data-shapes-frames-huge", "frames must be in [1, 1024]")(
    lambda ws, o, a: ["data", "shapes", "--out", str(ws / "d"), "--num", "1", "--frames", "10000000"])
case("bounds-data-shapes-size-huge", "size must be in [32, 1024]")(
    lambda ws, o, a: ["data", "shapes", "--out", str(ws / "d"), "--num", "1", "--size", "100000"])
case("bounds-data-shapes-fps-0", "fps must be a number in [0.1, 240]")(
    lambda ws, o, a: ["data", "shapes", "--out", str(ws / "d"), "--num", "1", "--fps", "0"])
case("bounds-data-cache-frames-huge", "--frames must be in [1, 1024]")(
    lambda ws, o, a: ["data", "cache", "--videos", str(ws), "--vae", str(BUNDLED / "vae"), "--frames", "10000000",
                      "--size", "64", "--out", str(ws / "c")])
case("bounds-data-cache-hop-0", "--hop must be in [1, 1024]")(
    lambda ws, o, a: ["data", "cache", "--videos", str(ws), "--vae", str(BUNDLED / "vae"), "--frames", "4",
                      "--size", "64", "--out", str(ws / "c"), "--hop", "0"])
case("bounds-data-cache-windows-0", "--windows must be in [1, 1000000]")(
    lambda ws, o, a: ["data", "cache", "--videos", str(ws), "--vae", str(BUNDLED / "vae"), "--frames", "4",
                      "--size", "64", "--out", str(ws / "c"), "--windows", "0"])
case("bounds-eval-fvd-size-huge", "--size must be at most 4096")(
    lambda ws, o, a: ["eval", "fvd", "--real", str(ws), "--fake", str(ws), "--network", str(ws / "n.pt"),
                      "--size", "1000000"])
case("bounds-eval-interpolation-stride-huge", "--stride must be at most 256")(
    lambda ws, o, a: ["eval", "interpolation", "--model", str(BUNDLED), "--videos", str(ws), "--stride", "1000000"])


# -- hostile media and text --


@case("media-decompression-bomb-png", "too many pixels")
def _(ws, o, a):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    (ws / "bomb.png").write_bytes(png)
    return ["animate", str(ws / "bomb.png"), "p", "-o", str(ws / "o.mp4")]


@case("media-float-tiff", "pixel mode 'F' is not supported")
def _(ws, o, a):
    from PIL import Image

    Image.new("F", (64, 64), 0.5).save(ws / "f.tiff")
    return ["animate", str(ws / "f.tiff"), "p", "-o", str(ws / "o.mp4")]


@case("media-truncated-png", "not a readable image")
def _(ws, o, a):
    (ws / "t.png").write_bytes((a / "image.png").read_bytes()[:60])
    return ["animate", str(ws / "t.png"), "p", "-o", str(ws / "o.mp4")]


case("media-text-as-png", "not a readable image")(
    lambda ws, o, a: ["animate", str(ws / "t.png"), "p", "-o", str(ws / "o.mp4")]
    if (ws / "t.png").write_text("hello") else None)
case("media-empty-image", "empty file")(
    lambda ws, o, a: ["animate", str(ws / "e.png"), "p", "-o", str(ws / "o.mp4")] if (ws / "e.png").touch() is None else None)
case("media-image-is-a-folder", "is a directory")(
    lambda ws, o, a: ["animate", str(ws / "d.png"), "p", "-o", str(ws / "o.mp4")] if (ws / "d.png").mkdir() is None else None)


@case("media-image-fifo", "FIFO")
def _(ws, o, a):
    os.mkfifo(ws / "f.png")
    return ["animate", str(ws / "f.png"), "p", "-o", str(ws / "o.mp4")]


@case("media-image-dangling-link", "file not found")
def _(ws, o, a):
    (ws / "l.png").symlink_to(ws / "gone.png")
    return ["animate", str(ws / "l.png"), "p", "-o", str(ws / "o.mp4")]


@case("media-image-link-loop", "l1.png")
def _(ws, o, a):
    (ws / "l1.png").symlink_to(ws / "l2.png")
    (ws / "l2.png").symlink_to(ws / "l1.png")
    return ["animate", str(ws / "l1.png"), "p", "-o", str(ws / "o.mp4")]


case("media-video-garbage", "g.mp4")(
    lambda ws, o, a: ["extend", str(ws / "g.mp4"), "p", "--frames", "8", "-o", str(ws / "o.mp4")]
    if (ws / "g.mp4").write_bytes(bytes(range(256)) * 16) else None)


@case("media-video-fifo", "FIFO")
def _(ws, o, a):
    os.mkfifo(ws / "f.mp4")
    return ["extend", str(ws / "f.mp4"), "p", "--frames", "8", "-o", str(ws / "o.mp4")]


case("media-video-empty", "empty file")(
    lambda ws, o, a: ["extend", str(ws / "e.mp4"), "p", "--frames", "8", "-o", str(ws / "o.mp4")]
    if (ws / "e.mp4").touch() is None else None)


def _video_at(ws: Path, rate) -> str:
    import av

    with av.open(str(ws / "odd.mp4"), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 40 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return str(ws / "odd.mp4")


case("media-video-claims-10000-fps", "for .mp4 files")(
    lambda ws, o, a: ["extend", _video_at(ws, 10000), "p", "--frames", "8", "-o", str(ws / "o.mp4")])
case("media-video-frame-lasts-1000-s", "exceeds max_duration")(
    lambda ws, o, a: ["extend", _video_at(ws, __import__("fractions").Fraction(1, 1000)), "p", "--frames", "8",
                      "-o", str(ws / "o.mp4")])
case("media-video-wrong-size", "resize the clip first")(
    lambda ws, o, a: ["extend", str(shutil.copyfile(a / "small.mp4", ws / "s.mp4")), "p", "--frames", "8",
                      "-o", str(ws / "o.mp4")])
case("text-prompt-invalid-utf8-generate", "not valid UTF-8")(
    lambda ws, o, a: ["generate", b"a red \xff\xfe circle", "-o", str(ws / "o.mp4")])
case("text-prompt-invalid-utf8-animate", "not valid UTF-8")(
    lambda ws, o, a: ["animate", image(ws, a), b"\xc3\x28", "-o", str(ws / "o.mp4")])
case("text-prompt-invalid-utf8-extend", "not valid UTF-8")(
    lambda ws, o, a: ["extend", clip(ws, a), b"go \x80", "--frames", "8", "-o", str(ws / "o.mp4")])
case("text-invalid-utf8-output-name", "output suffix")(
    lambda ws, o, a: ["generate", "p", "-o", os.fsencode(str(ws)) + b"/o\xff.avi"])
case("text-newlines-in-output-name", "output suffix")(lambda ws, o, a: gen("-o", str(ws / "o\nsecond line\n.avi")))


# -- pipeline folders: parts confined, hostile files refused before weights --


def pipeline_parts(vae: str):
    text = (BUNDLED / "pipeline.yaml").read_text().replace("vae: vae", f"vae: {vae}")
    return pipeline_with(text)


case("pipeline-part-dotdot", "parts.vae")(pipeline_parts("../other/vae"))
case("pipeline-part-absolute", "parts.vae")(pipeline_parts(str(BUNDLED / "vae")))
case("pipeline-part-is-the-folder", "parts.vae")(pipeline_parts("."))


@case("pipeline-part-symlink-escape", "parts.vae")
def _(ws, o, a):
    folder = make_pipeline(ws, a)
    (o / "vae").mkdir()
    for file in (folder / "vae").iterdir():
        shutil.copy(file, o / "vae" / file.name, follow_symlinks=True)
    shutil.rmtree(folder / "vae")
    (folder / "vae").symlink_to(o / "vae")
    return gen("--model", str(folder), "-o", str(ws / "o.mp4"))


@case("pipeline-safetensors-header-deep", "not a safetensors file")
def _(ws, o, a):
    import struct

    folder = make_pipeline(ws, a)
    header = b"[" * 200_000 + b"]" * 200_000
    os.unlink(folder / "interpolation" / "model.safetensors")
    (folder / "interpolation" / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    return gen("--model", str(folder), "-o", str(ws / "o.mp4"))


@case("pipeline-safetensors-garbage", "not a safetensors file")
def _(ws, o, a):
    folder = make_pipeline(ws, a)
    os.unlink(folder / "keyframes" / "model.safetensors")
    (folder / "keyframes" / "model.safetensors").write_bytes(b"\xff" * 64)
    return gen("--model", str(folder), "-o", str(ws / "o.mp4"))


def cut_weights(part: str, keep):
    """The pipeline with `part`'s weights file replaced by its first keep(size) bytes."""
    def build(ws, o, a):
        folder = make_pipeline(ws, a)
        data = (a / "weights" / part / "model.safetensors").read_bytes()
        os.unlink(folder / part / "model.safetensors")
        (folder / part / "model.safetensors").write_bytes(data[:keep(len(data))])
        return gen("--model", str(folder), "-o", str(ws / "o.mp4"))
    return build


# the VAE's file is hashed (latent_space_id) before the weights load: an empty one was a struct.error traceback,
# a cut one "trained in the latent space of another VAE"; a cut keyframes file "trained against another base"
case("pipeline-vae-weights-empty", "not a safetensors file (bad header length)")(cut_weights("vae", lambda n: 0))
case("pipeline-vae-weights-truncated", "truncated or damaged safetensors file")(cut_weights("vae", lambda n: n // 2))
case("pipeline-keyframes-weights-truncated", "truncated or damaged safetensors file")(
    cut_weights("keyframes", lambda n: n - 1000))


def rewrite_weights(part: str, change):
    """The pipeline with `part`'s weights file rewritten by change(header, data) -> (header, data)."""
    def build(ws, o, a):
        import json
        import struct

        folder = make_pipeline(ws, a)
        raw = (a / "weights" / part / "model.safetensors").read_bytes()
        n = struct.unpack("<Q", raw[:8])[0]
        header, data = change(json.loads(raw[8:8 + n]), bytearray(raw[8 + n:]))
        text = json.dumps(header).encode()
        os.unlink(folder / part / "model.safetensors")
        (folder / part / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + bytes(data))
        return gen("--model", str(folder), "-o", str(ws / "o.mp4"))
    return build


def _as_int32(header, data, name="decoder.conv_out.bias"):
    header[name]["dtype"] = "I32"  # same bytes, read as integers
    return header, data


# integer weights were cast into the float model without a word (NaN weights: tests/test_damaged_weights.py)
case("pipeline-vae-weights-int32", "tensor 'decoder.conv_out.bias' is stored as 'I32'")(
    rewrite_weights("vae", _as_int32))


@case("pipeline-text-encoder-config-is-a-list", "expected a JSON object")
def _(ws, o, a):
    text = (BUNDLED / "pipeline.yaml").read_text().replace("text_encoder: default", "text_encoder: te")
    folder = make_pipeline(ws, a, yaml_text=text)
    for record in folder.glob("*/trained_on.yaml"):  # they name the default encoder
        record.unlink()
    (folder / "te").mkdir()
    (folder / "te" / "config.json").write_text("[1, 2, 3]")
    return gen("--model", str(folder), "-o", str(ws / "o.mp4"))


case("pipeline-missing-folder", "nope: no such folder")(lambda ws, o, a: gen("--model", str(ws / "nope"), "-o", str(ws / "o.mp4")))


@case("pipeline-model-is-a-file", "m.safetensors: is a file, not a folder")
def _(ws, o, a):
    (ws / "m.safetensors").write_bytes(b"x")
    return gen("--model", str(ws / "m.safetensors"), "-o", str(ws / "o.mp4"))
case("pipeline-missing-yaml", "missing pipeline.yaml")(lambda ws, o, a: gen("--model", str(ws), "-o", str(ws / "o.mp4")))


# -- report: regular files inside the run folder only, bounded, never blocking --


def run_dir(ws: Path, make: bool = True) -> Path:
    run = ws / "run"
    if make and not run.exists():
        (run / "previews").mkdir(parents=True)
        (run / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
        (run / "config.yaml").write_text("stage: toy\n")
        from PIL import Image

        Image.new("RGB", (4, 4), (200, 40, 40)).save(run / "previews" / "step_00000001.gif")
    return run


@case("report-inline-fifo-preview", "not a regular file")
def _(ws, o, a):
    run = run_dir(ws)
    os.mkfifo(run / "previews" / "x.gif")
    return ["report", str(run), "--inline", "-o", str(ws / "page.html")]


@case("report-inline-symlink-to-system-file", "leads outside the run folder")
def _(ws, o, a):
    run = run_dir(ws)
    plant_link(run / "previews" / "x.gif", o)
    return ["report", str(run), "--inline", "-o", str(ws / "page.html")]


@case("report-inline-oversize-preview", "over the")
def _(ws, o, a):
    run = run_dir(ws)
    with open(run / "previews" / "big.gif", "wb") as f:
        f.truncate(40 << 20)  # sparse: 40 MiB claimed, nothing written
    return ["report", str(run), "--inline", "-o", str(ws / "page.html")]


@case("report-metrics-fifo", "not a regular file")
def _(ws, o, a):
    run = run_dir(ws)
    os.unlink(run / "metrics.jsonl")
    os.mkfifo(run / "metrics.jsonl")
    return ["report", str(run), "-o", str(ws / "page.html")]


@case("report-config-symlink-outside", "leads outside the run folder")
def _(ws, o, a):
    run = run_dir(ws)
    os.unlink(run / "config.yaml")
    plant_link(run / "config.yaml", o)
    return ["report", str(run), "-o", str(ws / "page.html")]


@case("report-eval-json-fifo", "not a regular file")
def _(ws, o, a):
    run = run_dir(ws)
    (run / "eval").mkdir()
    os.mkfifo(run / "eval" / "x.json")
    return ["report", str(run), "-o", str(ws / "page.html")]


case("report-run-dir-missing", "nope: no such folder")(lambda ws, o, a: ["report", str(ws / "nope")])
case("report-run-dir-is-a-file", "is a file, not a folder")(lambda ws, o, a: ["report", image(ws, a)])


# -- symlinks planted at the names vidiff writes: the victim outside stays untouched --


@case("victim-sidecar-symlink-with-bad-prompt", "not valid UTF-8")
def _(ws, o, a):
    plant_link(ws / "o.mp4.json", o)
    plant_link(ws / "o.mp4.json.tmp", o)
    return ["generate", b"\xff", "-o", str(ws / "o.mp4")]


@case("victim-contact-sheet-symlink-with-bad-steps", "--steps must be in")
def _(ws, o, a):
    plant_link(ws / "o.sheet.png", o)
    return gen("--contact-sheet", "--steps", "0", "-o", str(ws / "o.mp4"))


@case("victim-report-tmp-symlink-with-fifo", "not a regular file")
def _(ws, o, a):
    run = run_dir(ws)
    plant_link(run / "report.html.tmp", o)
    plant_link(run / "report.html", o)
    os.mkfifo(run / "previews" / "x.gif")
    return ["report", str(run), "--inline"]


@case("victim-data-shapes-caption-symlink-bad-size", "size must be in")
def _(ws, o, a):
    (ws / "d").mkdir()
    plant_link(ws / "d" / "clip_000000.txt", o)
    return ["data", "shapes", "--out", str(ws / "d"), "--num", "1", "--size", "8"]


# -- eval and export --

case("eval-shapes-missing-folder", "nope")(lambda ws, o, a: ["eval", "shapes", str(ws / "nope")])
NESTED_JSON = "[" * 100_000 + "]" * 100_000


@case("eval-shapes-sidecar-nested-json", "nested too deeply")
def _(ws, o, a):
    clip(ws, a, "a.mp4")
    (ws / "a.mp4.json").write_text(NESTED_JSON)
    return ["eval", "shapes", str(ws)]


@case("train-output-dir-holds-a-users-files", "not a training run's (loss.png, metrics.jsonl)")
def _(ws, o, a):
    (ws / "run").mkdir()
    (ws / "run" / "metrics.jsonl").write_text('{"my": "log"}\n')
    (ws / "run" / "loss.png").write_bytes(b"mine")
    return train_config(TOY)(ws, o, a)


@case("train-model-huge-depth", "model.layers_per_block: must be in 1..32")
def _(ws, o, a):
    return ["train", "--config", str(REPO / "configs" / "shapes-vae.yaml"), "--set", "model.layers_per_block=100000",
            "--set", f"output_dir={ws / 'r'}"]
case("eval-fvd-num-1", "--num must be at least 2")(
    lambda ws, o, a: ["eval", "fvd", "--real", str(ws), "--fake", str(ws), "--network", str(ws / "n.pt"), "--num", "1"])
case("eval-reconstruction-frames-0", "--frames must be positive")(
    lambda ws, o, a: ["eval", "reconstruction", "--vae", str(BUNDLED / "vae"), "--videos", str(ws), "--frames", "0"])


def _has_export() -> bool:
    from vidiff.cli import build_parser

    return "export" in build_parser()._subparsers._group_actions[0].choices


def export_run(config_text: str | bytes):
    def build(ws, o, a):
        run = ws / "run"
        (run / "export").mkdir(parents=True)
        (run / "config.yaml").write_bytes(config_text if isinstance(config_text, bytes) else config_text.encode())
        (run / "export" / "model.safetensors").symlink_to(a / "weights" / "vae" / "model.safetensors")
        return ["export", str(run), "-o", str(ws / "pipe")]
    return build


if _has_export():  # `vidiff export` arrived with the round-2 redesign
    case("export-onto-an-existing-folder", "already exists")(
        lambda ws, o, a: ["export", str(ws), "-o", str(make_pipeline(ws, a))])
    # --force replaced the output folder even when it was one of the inputs (the run itself, or its export)
    for name, target in (("run", lambda run: run), ("its-export", lambda run: run / "export"),
                         ("a-parent", lambda run: run.parent)):
        case(f"export-force-onto-{name}", "the input")(
            lambda ws, o, a, target=target: export_run(TOY)(ws, o, a)[:2] + ["-o", str(target(ws / "run")), "--force"])
    case("export-run-config-alias-bomb", "expands to more than")(export_run(BOMB))
    case("export-run-config-python-tag", "is not allowed")(export_run(PYTHON_TAG))
    case("export-run-config-not-utf8", "not UTF-8 text")(export_run(b"stage: vae\nnote: \xff\n"))
    case("export-not-a-run", "not a training run folder")(lambda ws, o, a: ["export", str(ws), "-o", str(ws / "p")])


# ---- the test ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, assets, tmp_path):
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    (outside / "victim.txt").write_bytes(VICTIM_TEXT)
    argv = case.build(ws, outside, assets)
    assert argv, "a case builder must return argv"
    before = snapshot(ws, outside, assets)
    rc, err, elapsed, peak_kb = run_cli(argv, ws)
    TIMINGS.append((case.id, elapsed, peak_kb))
    lines = err.splitlines()
    assert rc == 2, (rc, err[-2000:])
    assert len(lines) == 1 and err.endswith("\n"), err[-2000:]
    assert "Traceback" not in err and lines[0].startswith("vidiff"), err
    assert case.expect in lines[0], (case.expect, lines[0][:500])
    assert len(lines[0]) <= 1100, len(lines[0])  # values quoted at ~200 characters
    assert snapshot(ws, outside, assets) == before  # inputs, victim, no outputs, no temporaries
    assert (outside / "victim.txt").read_bytes() == VICTIM_TEXT
    assert not (ws / "pwned").exists()
    assert elapsed < TIME_LIMIT_S, elapsed
    assert peak_kb < MEMORY_LIMIT_KB, peak_kb


def test_battery_is_large_enough():
    """Also writes the measured (case, seconds, peak KB) to $VIDIFF_BATTERY_TIMINGS when set (docs/reliability.md)."""
    if os.environ.get("VIDIFF_BATTERY_TIMINGS"):
        import json

        Path(os.environ["VIDIFF_BATTERY_TIMINGS"]).write_text(json.dumps(TIMINGS, indent=0))
    assert len(CASES) >= 80
    categories = {c.id.split("-")[0] for c in CASES}
    assert {"output", "yaml", "bounds", "media", "text", "pipeline", "report", "victim", "eval"} <= categories
    assert len(CASES) == len({c.id for c in CASES})
