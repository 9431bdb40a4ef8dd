"""`vidiff generate` as users compare it: the same seed gives files with the same decoded frames (mp4, webm, gif),
and a kill -9 at any moment leaves the old file or a complete new one, never a partial, with no temporaries left
after the next successful write (the second test is `slow`: run with -m slow)."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vidiff import io
from vidiff.output_safety import is_our_temporary

REPO = Path(__file__).resolve().parents[1]
PROMPT = "a red circle moving left"


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pipe") / "tiny"
    subprocess.run([sys.executable, str(REPO / "tools" / "make_random_pipeline.py"), str(folder), "--tiny",
                    "--steps", "2"], check=True, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return folder


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO)}


def _generate(model: Path, out: Path, seed: int = 3) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vidiff.cli", "generate", PROMPT, "--seed", str(seed), "--model",
                             str(model), "-o", str(out), "--quiet"], cwd=REPO, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif"])
def test_same_seed_gives_the_same_decoded_frames(tiny_pipeline, tmp_path, suffix):
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    runs = [_generate(tiny_pipeline, a), _generate(tiny_pipeline, b)]  # two processes at once, both cores
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err.decode()[-2000:]
    frames_a, fps_a = io.read_video(a)
    frames_b, fps_b = io.read_video(b)
    assert frames_a.shape == (16, 64, 64, 3) and fps_a == fps_b
    assert np.array_equal(frames_a.numpy(), frames_b.numpy())
    assert a.read_bytes() == b.read_bytes()  # one encoder thread, bit-exact containers: the same bytes too


@pytest.mark.slow
def test_kill_9_at_random_moments_never_leaves_a_partial_file(tiny_pipeline, tmp_path):
    """20 kill -9 of `vidiff generate -o out.mp4` over an existing out.mp4 (seed 1), each at a random moment of a
    run that writes seed 2: out.mp4 is always the old file or the complete new one; the next successful write
    leaves no temporary behind."""
    out = tmp_path / "out.mp4"
    run = _generate(tiny_pipeline, out, seed=1)
    assert run.wait(timeout=120) == 0
    old = out.read_bytes()
    ref = tmp_path / "ref" / "out.mp4"
    run = _generate(tiny_pipeline, ref, seed=2)
    assert run.wait(timeout=120) == 0
    new = ref.read_bytes()
    t0 = time.perf_counter()
    _generate(tiny_pipeline, tmp_path / "timing.mp4", seed=2).wait(timeout=120)
    duration = time.perf_counter() - t0
    rng = random.Random(13)
    outcomes = {"old": 0, "new": 0, "temporaries_left": 0}
    for _ in range(20):
        run = _generate(tiny_pipeline, out, seed=2)
        time.sleep(rng.uniform(0.3 * duration, 1.05 * duration))
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
        data = out.read_bytes()
        assert data in (old, new), "out.mp4 is neither the old nor the complete new file"
        outcomes["old" if data == old else "new"] += 1
        outcomes["temporaries_left"] += sum(is_our_temporary(p.name) for p in tmp_path.iterdir())
        if data == new:  # start the next trial from the old file again
            out.write_bytes(old)
    run = _generate(tiny_pipeline, out, seed=2)
    assert run.wait(timeout=120) == 0 and out.read_bytes() == new
    assert not [p.name for p in tmp_path.iterdir() if is_our_temporary(p.name)]
    print(f"kill -9 outcomes over 20 trials: {outcomes} (one run {duration:.1f} s)")


def test_stopped_between_the_clip_and_its_sidecar_leaves_no_sidecar_of_the_old_clip(tiny_pipeline, tmp_path,
                                                                                      monkeypatch):
    """Ctrl-C after out.mp4 is replaced but before its sidecar is written: the old out.mp4.json and out.sheet.png
    (which describe the clip just replaced) are gone, not left next to the new clip."""
    from vidiff import sidecar
    from vidiff.cli import main

    out = tmp_path / "out.mp4"
    args = ["generate", PROMPT, "--model", str(tiny_pipeline), "-o", str(out), "--quiet", "--contact-sheet"]
    assert main(args + ["--seed", "7"]) == 0
    old = out.read_bytes()
    assert json.loads(sidecar.sidecar_path(out).read_text())["seed"] == 7

    def interrupted(output, record):
        raise KeyboardInterrupt

    monkeypatch.setattr(sidecar, "write_sidecar", interrupted)
    assert main(args + ["--seed", "3"]) == 130
    assert out.read_bytes() != old  # the new clip is in place
    assert not sidecar.sidecar_path(out).exists() and not sidecar.contact_sheet_path(out).exists()
    assert not [p.name for p in tmp_path.iterdir() if is_our_temporary(p.name)]
