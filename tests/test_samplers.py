import pytest
import torch

from vidiff.diffusion import SAMPLERS, sample, sampling_sigmas
from vidiff.diffusion.cond import Cond
from vidiff.diffusion.samplers import sample_ddim, sample_ddpm, sample_dpmpp_2m, sample_euler, sample_heun

M, S = 0.5, 0.3  # data N(M, S^2)


@pytest.fixture(autouse=True)
def _one_thread():
    """These are small elementwise loops: one intra-op thread is much faster on a busy shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def exact_denoiser(x, sigma, cond=None):
    """E[x0 | x] for x0 ~ N(M, S^2), x = x0 + sigma * noise."""
    assert sigma.shape == (x.shape[0],)
    s2 = sigma.reshape(-1, *([1] * (x.ndim - 1))) ** 2
    return M + (x - M) * S**2 / (S**2 + s2)


def start(n=65_536, sigma_max=80.0, seed=0):
    noise = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return M + (S**2 + sigma_max**2) ** 0.5 * noise  # the exact marginal at sigma_max


@pytest.mark.parametrize(
    "method,steps,tol",
    [("dpmpp_2m", 50, 0.02), ("heun", 50, 0.02), ("ddim", 100, 0.03), ("euler", 100, 0.03), ("ddpm", 200, 0.05)],
)
def test_sampler_lands_on_gaussian_data(method, steps, tol):
    sigmas = sampling_sigmas(steps, "karras", sigma_min=0.002, sigma_max=80.0, rho=7.0)
    x = start()
    out = sample(exact_denoiser, x, sigmas, method=method, generator=torch.Generator().manual_seed(1))
    mean, std = out.mean().item(), out.std().item()
    assert abs(mean - M) / M < tol, f"{method}: mean {mean}"
    assert abs(std - S) / S < tol, f"{method}: std {std}"


def test_a_wrong_denoiser_fails_the_oracle():
    """The oracle can fail: a denoiser for the wrong std lands on the wrong std."""
    def wrong(x, sigma, cond=None):
        s2 = sigma.reshape(-1, 1) ** 2
        return M + (x - M) * 0.2**2 / (0.2**2 + s2)

    out = sample(wrong, start(4096), sampling_sigmas(50), method="dpmpp_2m")
    assert abs(out.std().item() - S) / S > 0.2


def test_first_order_samplers_agree_with_ddim_eta0():
    sigmas = sampling_sigmas(20)
    x = start(256)
    a = sample_euler(exact_denoiser, x, sigmas)
    b = sample_ddim(exact_denoiser, x, sigmas, eta=0.0)
    torch.testing.assert_close(a, b)


def test_ddim_eta1_is_ddpm():
    sigmas = sampling_sigmas(15)
    x = start(64)
    a = sample_ddim(exact_denoiser, x, sigmas, eta=1.0, generator=torch.Generator().manual_seed(3))
    b = sample_ddpm(exact_denoiser, x, sigmas, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_convergence_order_against_closed_form_ode():
    """For Gaussian data the probability-flow ODE is linear: x(0) = M + (x(T) - M) * S / sqrt(S^2 + sigma_max^2).
    Doubling the steps halves Euler's error (first order) and quarters Heun's and DPM-Solver++(2M)'s."""
    x = start(128)
    exact = M + (x - M) * S / (S**2 + 80.0**2) ** 0.5

    def err(method, n):
        return (sample(exact_denoiser, x, sampling_sigmas(n), method=method) - exact).abs().max().item()

    for method, lo, hi in [("euler", 1.6, 2.5), ("heun", 3.3, 5.0), ("dpmpp_2m", 3.3, 5.0)]:
        ratio = err(method, 20) / err(method, 40)
        assert lo < ratio < hi, f"{method}: error ratio {ratio}"
    assert err("dpmpp_2m", 40) < 0.02


@pytest.mark.parametrize("method", list(SAMPLERS))
def test_callback_no_inplace_and_reproducible(method):
    sigmas = sampling_sigmas(6)
    x = start(32)
    x_copy = x.clone()
    seen = []
    out = sample(exact_denoiser, x, sigmas, method=method, generator=torch.Generator().manual_seed(4), callback=seen.append)
    assert torch.equal(x, x_copy)
    assert [d["i"] for d in seen] == list(range(6))
    assert set(seen[0]) == {"i", "x", "sigma", "denoised"}
    assert seen[0]["sigma"].item() == pytest.approx(80.0) and torch.equal(seen[0]["x"], x)
    again = sample(exact_denoiser, x, sigmas, method=method, generator=torch.Generator().manual_seed(4))
    assert torch.equal(out, again)


@pytest.mark.parametrize("method", ["ddpm", "ddim"])
def test_per_row_generators_do_not_depend_on_batch_size(method):
    sigmas = sampling_sigmas(8)
    x = start(3)
    kw = {"eta": 1.0} if method == "ddim" else {}
    gens = lambda seeds: [torch.Generator().manual_seed(k) for k in seeds]  # noqa: E731
    full = sample(exact_denoiser, x, sigmas, method=method, generator=gens([10, 11, 12]), **kw)
    alone = sample(exact_denoiser, x[1:2], sigmas, method=method, generator=gens([11]), **kw)
    torch.testing.assert_close(full[1:2], alone, rtol=0, atol=0)
    other = sample(exact_denoiser, x, sigmas, method=method, generator=gens([10, 99, 12]), **kw)
    assert not torch.equal(full[1], other[1]) and torch.equal(full[0], other[0])


@pytest.mark.parametrize("method", list(SAMPLERS))
def test_cond_reaches_the_denoiser(method):
    got = []

    def den(x, sigma, cond=None):
        got.append(cond)
        return exact_denoiser(x, sigma)

    cond = Cond(context=torch.zeros(4, 2, 3))
    sample(den, start(4), sampling_sigmas(3), method=method, cond=cond, generator=torch.Generator().manual_seed(0))
    assert len(got) >= 3 and all(c is cond for c in got)
    with pytest.raises(ValueError, match="context"):  # cond is keyword-only in the dispatcher, no stray kwargs
        sample(den, start(4), sampling_sigmas(3), method=method, context="ctx")


def test_zero_snr_clamped_start_is_finite():
    from vidiff.diffusion import NoiseScheduleConfig, schedule_sigmas

    sigmas = sampling_sigmas(30, "trailing", schedule_sigmas=schedule_sigmas(NoiseScheduleConfig(zero_terminal_snr=True)))
    x = start(4096, sigma_max=sigmas[0].item())
    for method in SAMPLERS:
        out = sample(exact_denoiser, x, sigmas, method=method, generator=torch.Generator().manual_seed(0))
        assert bool(torch.isfinite(out).all()), method
        assert abs(out.mean().item() - M) < 0.05, method


def test_bad_method_and_options():
    with pytest.raises(ValueError, match="dpmpp_2m.*ddim.*ddpm.*euler.*heun"):
        sample(exact_denoiser, start(2), sampling_sigmas(2), method="lms")
    with pytest.raises(ValueError, match="eta"):
        sample(exact_denoiser, start(2), sampling_sigmas(2), method="euler", eta=0.5)
    with pytest.raises(ValueError, match="sigmas"):
        sample_heun(exact_denoiser, start(2), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="sigmas"):
        sample_dpmpp_2m(exact_denoiser, start(2), torch.tensor([float("inf"), 1.0, 0.0]))


def test_progress_bar_runs():
    out = sample(exact_denoiser, start(4), sampling_sigmas(3), method="euler", progress=True)
    assert out.shape == (4, 1)


@pytest.mark.slow
@pytest.mark.parametrize("karras", [False, True])
def test_dpmpp_2m_matches_diffusers_multistep(karras):
    """Same grid, same start, an eps model built from the exact denoiser: our VE-form DPM-Solver++(2M) and
    diffusers' VP-form DPMSolverMultistepScheduler land on the same samples."""
    diffusers = pytest.importorskip("diffusers")
    sched = diffusers.DPMSolverMultistepScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, algorithm_type="dpmsolver++",
        solver_order=2, use_karras_sigmas=karras, final_sigmas_type="zero",
    )
    sched.set_timesteps(12)
    sigmas = sched.sigmas.float()  # (13,) VE sigmas ending in 0
    noise = torch.randn(512, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x_vp = noise.float()
    for i, t in enumerate(sched.timesteps):
        s = sigmas[i]
        x_ve = x_vp * (1 + s**2).sqrt()
        eps = (x_ve - exact_denoiser(x_ve, s.expand(512))) / s
        x_vp = sched.step(eps, t, x_vp).prev_sample
    ours = sample(exact_denoiser, noise.float() * (1 + sigmas[0] ** 2).sqrt(), sigmas, method="dpmpp_2m")
    torch.testing.assert_close(ours, x_vp, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_cuda_sampling_with_cpu_row_generators_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    sigmas = sampling_sigmas(10)
    x = start(4).float()
    gens = lambda: [torch.Generator().manual_seed(k) for k in range(4)]  # noqa: E731
    for method in SAMPLERS:
        cpu = sample(exact_denoiser, x, sigmas, method=method, generator=gens())
        gpu = sample(exact_denoiser, x.cuda(), sigmas.cuda(), method=method, generator=gens())
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)
