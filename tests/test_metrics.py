"""PSNR / SSIM against scikit-image (test-only reference) and analytic cases."""
import math

import numpy as np
import pytest
import torch

from vidiff.errors import InputError
from vidiff.eval.metrics import psnr, ssim

skm = pytest.importorskip("skimage.metrics")


def _shapes_frames(rng: np.random.Generator, num: int, size: int = 64) -> np.ndarray:
    """Shapes-like frames: grey background, one filled coloured disc or square moving across."""
    frames = np.empty((num, size, size, 3), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    grey = rng.integers(16, 65)
    colour = np.array([220, 40, 40], np.uint8)
    for i in range(num):
        frames[i] = grey
        cx, cy, r = 12 + 2 * i + rng.integers(0, 3), 20 + rng.integers(0, 20), 8
        if i % 2:
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        else:
            inside = (abs(xx - cx) <= r) & (abs(yy - cy) <= r)
        frames[i][inside] = colour
    return frames


def _perturb(rng, frames: np.ndarray, scale: float) -> np.ndarray:
    noisy = frames.astype(np.float64) + rng.normal(0, scale, frames.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _sk_ssim(a, b, data_range):
    return skm.structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range, channel_axis=-1
    )


@pytest.mark.parametrize("kind", ["random", "shapes"])
def test_uint8_matches_skimage(kind):
    rng = np.random.default_rng(1)
    if kind == "random":
        a = rng.integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)
        b = _perturb(rng, a, 40.0)
    else:
        a = _shapes_frames(rng, 6)
        b = _perturb(rng, np.roll(a, 1, axis=2), 6.0)  # one pixel of shift plus noise
    ours_p = psnr(torch.from_numpy(a), torch.from_numpy(b), per_frame=True)
    ours_s = ssim(torch.from_numpy(a), torch.from_numpy(b), per_frame=True)
    for i in range(a.shape[0]):
        ref_p = skm.peak_signal_noise_ratio(a[i], b[i], data_range=255)
        ref_s = _sk_ssim(a[i], b[i], 255)
        assert abs(float(ours_p[i]) - ref_p) < 1e-3
        assert abs(float(ours_s[i]) - ref_s) < 1e-3
    # The averaged form is the mean of the per-frame values.
    assert ssim(a, b) == pytest.approx(float(ours_s.mean()), abs=1e-12)
    assert psnr(a, b) == pytest.approx(float(ours_p.mean()), abs=1e-12)


def test_float_frames_match_skimage_with_data_range():
    rng = np.random.default_rng(2)
    a = rng.uniform(-1, 1, (3, 32, 32, 3))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), -1, 1)
    for i in range(3):
        assert abs(ssim(a[i], b[i], data_range=2.0) - _sk_ssim(a[i], b[i], 2.0)) < 1e-3
        assert abs(psnr(a[i], b[i], data_range=2.0) - skm.peak_signal_noise_ratio(a[i], b[i], data_range=2.0)) < 1e-3


def test_analytic_values():
    a = torch.full((2, 16, 16, 3), 100, dtype=torch.uint8)
    b = a + 10  # MSE = 100 everywhere
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0)
    # Constant frames: variances and covariance are zero, SSIM reduces to the luminance term.
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1))


def test_bad_input_is_named():
    a = torch.zeros(2, 16, 16, 3, dtype=torch.uint8)
    with pytest.raises(InputError, match="shape"):
        psnr(a, a[:1])
    with pytest.raises(InputError, match="data_range"):
        ssim(a.float(), a.float())
    with pytest.raises(InputError, match="window"):
        ssim(a[:, :8, :8], a[:, :8, :8])


def test_fast_on_hundreds_of_frames():
    import time

    a = torch.randint(0, 256, (300, 64, 64, 3), dtype=torch.uint8)
    b = torch.randint(0, 256, (300, 64, 64, 3), dtype=torch.uint8)
    start = time.perf_counter()
    values = ssim(a, b, per_frame=True)
    assert values.shape == (300,)
    assert time.perf_counter() - start < 10.0  # 1-2 s measured on the shared 2-core CPU
