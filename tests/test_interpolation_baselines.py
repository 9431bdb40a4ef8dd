"""Interpolation baselines and scoring: the optical-flow interpolator against the linear blend on synthetic motion,
evenly spread windows, per-clip (group) means, baselines-only scoring and the `vidiff eval interpolation` table."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidiff.eval.interpolation import evaluate_interpolation, linear_blend, spread_windows
from vidiff.eval.metrics import psnr

cv2 = pytest.importorskip("cv2")
from vidiff.eval.optical_flow import dis_flow, flow_fill  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def smooth_texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (blurred noise), uint8 (h, w, 3): well-defined flow everywhere."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 3) * 3 - 255, 0, 255).astype(np.uint8)


def moving_clip(frames: int, dx: float, dy: float, size: int = 64, seed: int = 0) -> torch.Tensor:
    """uint8 (F,size,size,3): a texture window translating by (dx, dy) pixels per frame (sub-pixel shifts by
    bilinear sampling of a larger texture)."""
    big = smooth_texture(size + 64, size + 64, seed).astype(np.float32)
    out = []
    for f in range(frames):
        m = np.float32([[1, 0, 32 + f * dx], [0, 1, 32 + f * dy]])
        out.append(cv2.warpAffine(big, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP))
    return torch.from_numpy(np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8))


def test_dis_flow_measures_a_known_shift():
    clip = moving_clip(2, 3.0, -2.0)
    flow = dis_flow(clip[0].numpy(), clip[1].numpy())  # frame0(y, x) ~ frame1(y + dy, x + dx)
    inner = flow[8:-8, 8:-8]
    assert np.median(inner[..., 0]) == pytest.approx(-3.0, abs=0.25)
    assert np.median(inner[..., 1]) == pytest.approx(2.0, abs=0.25)


@pytest.mark.parametrize("dx,dy", [(2.0, 0.0), (1.0, 1.5)])
def test_flow_beats_blend_on_moving_texture(dx, dy):
    clip = moving_clip(9, dx, dy)
    result = evaluate_interpolation([clip], None, 4, others={"flow": flow_fill})
    assert "model" not in result
    # measured here: the blend ghosts the moving texture (29-30 dB); flow lands on it (42-44 dB)
    assert result["flow"]["psnr"] > result["baseline"]["psnr"] + 8
    assert result["flow"]["ssim"] > result["baseline"]["ssim"] + 0.1


def test_flow_fill_keeps_keyframes_and_a_still_clip():
    clip = moving_clip(9, 1.0, 0.0)
    keys = clip[::4]
    out = flow_fill(keys, 4)
    assert out.shape == (9, 64, 64, 3) and out.dtype == torch.uint8
    assert torch.equal(out[::4], keys)
    still = keys[:1].expand(3, -1, -1, -1).contiguous()
    assert torch.equal(flow_fill(still, 3), still[:1].expand(7, -1, -1, -1))  # no motion: nothing moves


def test_spread_windows_cover_the_clip_evenly():
    clip = torch.arange(30).view(30, 1, 1, 1).expand(30, 2, 2, 3).to(torch.uint8)
    windows = spread_windows(clip, 4, 4)
    assert [s for s, _ in windows] == [0, 8, 17, 25]  # 25 = 30 - 4 - 1, the last start that fits
    assert all(w.shape[0] == 5 and int(w[0, 0, 0, 0]) == s for s, w in windows)
    assert [s for s, _ in spread_windows(clip[:7], 4, 12)] == [0, 1, 2]  # only three distinct starts
    assert [s for s, _ in spread_windows(clip, 4, 1)] == [0]


def test_spread_windows_past_the_clip_length_return_every_start_at_once():
    """`eval interpolation --windows 100000000` counted through every window it asked for (a hang) to keep the
    clip's few distinct starts; it now stops at the clip's length."""
    import time

    clip = torch.zeros(7, 2, 2, 3, dtype=torch.uint8)
    t0 = time.perf_counter()
    assert [s for s, _ in spread_windows(clip, 4, 10**8)] == [0, 1, 2]
    assert time.perf_counter() - t0 < 1


def test_group_means_are_means_over_the_group_frames():
    a, b = moving_clip(5, 1.0, 0.0, seed=1), moving_clip(5, 3.0, 0.0, seed=2)
    result = evaluate_interpolation([a, b, a], None, 4, names=["a1", "b", "a2"], groups=["a", "b", "a"])
    truth_a = psnr(linear_blend(a[::4], 4)[1:4], a[1:4], per_frame=True)
    assert result["groups"]["a"]["baseline"]["psnr"] == pytest.approx(float(truth_a.mean()), abs=1e-9)
    assert result["groups"]["a"]["baseline"]["frames"] == 6 and result["groups"]["b"]["baseline"]["frames"] == 3
    overall = (2 * result["groups"]["a"]["baseline"]["psnr"] + result["groups"]["b"]["baseline"]["psnr"]) / 3
    assert result["baseline"]["psnr"] == pytest.approx(overall, abs=1e-9)


@pytest.mark.parametrize("stride, seed, said", [("4", 0, "stride must be an integer in [2, 256], got '4'"),
                                                 (4.0, 0, "stride must be an integer in [2, 256], got 4.0"),
                                                 (1, 0, "stride must be in [2, 256], got 1"),
                                                 (4, -1, "seed must be in [0, 2**63), got -1")])
def test_evaluate_interpolation_from_python_names_a_bad_stride_or_seed(stride, seed, said):
    """A stride given as "4" or 4.0 failed inside as a TypeError, and a negative seed reached the fills."""
    from vidiff.errors import InputError

    clip = torch.zeros(9, 16, 16, 3, dtype=torch.uint8)
    with pytest.raises(InputError) as e:
        evaluate_interpolation([clip], linear_blend, stride, seed=seed)
    assert str(e.value) == said


def test_eval_cli_baselines_with_size_and_windows(tmp_path):
    from vidiff.io import write_video

    folder = tmp_path / "clips"
    folder.mkdir()
    write_video(folder / "pan.mp4", moving_clip(20, 1.0, 0.0, size=96), fps=10)
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "vidiff", "eval", "interpolation", "--videos", str(folder),
                           "--stride", "4", "--size", "48", "--windows", "3", "--flow", "--json", str(out)],
                          capture_output=True, text=True, cwd=REPO, env={"OMP_NUM_THREADS": "1", "PATH": ""},
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["settings"]["size"] == 48 and doc["settings"]["windows"] == 3
    assert [r[0] for r in doc["rows"]] == ["linear blend", "optical flow", "pan.mp4: linear blend",
                                          "pan.mp4: optical flow"]
    assert doc["result"]["num_clips"] == 3 and doc["result"]["num_frames"] == 9
    assert [c["name"] for c in doc["result"]["clips"]] == ["pan.mp4@0", "pan.mp4@8", "pan.mp4@15"]
    assert doc["result"]["flow"]["psnr"] > doc["result"]["baseline"]["psnr"]


def test_passes_fill_chains_its_gaps_like_the_command():
    """A gap of 16 filled as 4 x 4 blends: within one level of the direct blend (each pass rounds to uint8), the
    keyframes exact; a stride the passes do not make is refused."""
    from vidiff.errors import InputError
    from vidiff.eval.interpolation import passes_fill

    keys = torch.tensor([[0, 160], [250, 3]], dtype=torch.uint8).view(2, 1, 2, 1).expand(2, 1, 2, 3).contiguous()
    seeds = []
    fill = passes_fill(lambda k, s, seed: seeds.append(seed) or linear_blend(k, s), [4, 4], seed_step=100)
    out = fill(keys, 16, 7)
    assert out.shape == (17, 1, 2, 3) and torch.equal(out[::16], keys) and seeds == [7, 107]
    assert (out.int() - linear_blend(keys, 16).int()).abs().max() <= 1
    with pytest.raises(InputError, match="stride 8"):
        fill(keys, 8, 0)


def test_chunked_fill_is_the_fill_itself_within_one_chunk_and_bounded_past_it():
    """`eval interpolation` filled a whole clip in one call (3.6 GB for 33 frames of 320x240); chunked as `vidiff
    interpolate` fills, a clip of one chunk is filled exactly as before and a longer one a chunk at a time."""
    from vidiff.eval.interpolation import chunked_fill

    calls = []

    def noisy(keyframes, stride, seed):  # a fill that depends on its seed, as a sampler does
        calls.append((keyframes.shape[0], seed))
        noise = torch.randint(0, 3, (stride * (keyframes.shape[0] - 1) + 1, *keyframes.shape[1:]),
                              generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
        return linear_blend(keyframes, stride) // 2 + noise

    fill = chunked_fill(noisy, lambda stride, h, w: (3, 384), multiple=8, overlap=32)
    keys = torch.randint(0, 256, (3, 24, 32, 3), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    short = fill(keys, 4, 7)
    expected = noisy(keys, 4, 7)
    expected[::4] = keys
    assert torch.equal(short, expected) and calls[0] == (3, 7)
    calls.clear()
    longer = torch.cat([keys, keys.flip(0)[1:]])  # 5 keyframes: chunks [0, 2], [2, 4] with seeds 7, 8
    assert fill(longer, 4, 7).shape == (17, 24, 32, 3) and calls == [(3, 7), (3, 8)]
