"""A pipeline folder whose weights are finite in name only: NaN / infinite weights (a run that diverged, then
exported) are refused as the part loads, and weights that overflow while sampling are refused before any frame is
written. Both wrote every frame black with exit code 0."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_generation_safety import _env, tiny_pipeline  # noqa: F401  (the tiny random pipeline fixture)


def _with_tensor(pipeline: Path, dest: Path, part: str, name: str, value: float) -> Path:
    """A copy of `pipeline` whose `part` has every element of tensor `name` set to `value` (float32)."""
    shutil.copytree(pipeline, dest)
    path = dest / part / "model.safetensors"
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header, data = json.loads(raw[8:8 + n]), bytearray(raw[8 + n:])
    assert header[name]["dtype"] == "F32"
    start, end = header[name]["data_offsets"]
    data[start:end] = np.full((end - start) // 4, value, np.float32).tobytes()
    path.write_bytes(raw[:8 + n] + bytes(data))
    return dest


def _generate(model: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidiff.cli", "generate", "a red circle moving left", "--model",
                           str(model), "-o", str(out)], cwd=out.parent, env=_env(), capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("part, value", [("keyframes", np.nan), ("vae", np.inf), ("interpolation", -np.inf)])
def test_non_finite_weights_are_refused_in_one_line(tiny_pipeline, tmp_path, part, value):
    model = _with_tensor(tiny_pipeline, tmp_path / "pipe", part, "conv_out.bias" if part != "vae" else
                         "decoder.conv_out.bias", value)
    run = _generate(model, tmp_path / "o.mp4")
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"{model / part / 'model.safetensors'}: 1 tensor(s) hold NaN or infinite weights" in run.stderr
    assert sorted(os.listdir(tmp_path)) == ["pipe"]  # no clip, no sidecar, no temporary


def test_weights_that_overflow_while_sampling_write_no_frames(tiny_pipeline, tmp_path):
    """Finite weights of 1e30 in the keyframe net's output layer: its latents overflow to NaN in the sampler."""
    model = _with_tensor(tiny_pipeline, tmp_path / "pipe", "keyframes", "conv_out.weight", 1e30)
    run = _generate(model, tmp_path / "o.mp4")
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1] == ("vidiff: error: sampling gave NaN or infinite latents (the "
                                                   "pipeline's weights or settings overflow); no frames were written")
    assert "Traceback" not in run.stderr
    assert sorted(os.listdir(tmp_path)) == ["pipe"]
