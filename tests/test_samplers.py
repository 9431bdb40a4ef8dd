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
    x = start(32 * 64).reshape(32, 64)  # rows of 64: pc's corrector takes its step size from per-row norms
    x_copy = x.clone()
    seen = []
    out = sample(exact_denoiser, x, sigmas, method=method, generator=torch.Generator().manual_seed(4), callback=seen.append)
    assert torch.equal(x, x_copy)
    assert [d["i"] for d in seen] == list(range(6))
    assert set(seen[0]) == {"i", "x", "sigma", "denoised"}
    assert seen[0]["sigma"].item() == pytest.approx(80.0) and torch.equal(seen[0]["x"], x)
    again = sample(exact_denoiser, x, sigmas, method=method, generator=torch.Generator().manual_seed(4))
    assert torch.equal(out, again)


# every sampler configuration that draws noise
STOCHASTIC = [
    ("ddpm", {}),
    ("ddim", {"eta": 1.0}),
    ("euler_ancestral", {}),
    ("dpmpp_2m_sde", {}),
    ("dpmpp_2m_sde", {"solver_type": "heun"}),
    ("dpmpp_sde", {}),
    ("heun", {"s_churn": 10.0}),
    ("pc", {}),
    ("pc", {"predictor": "euler_maruyama", "corrector_steps": 2}),
]
STOCHASTIC_IDS = [m + "".join(f"-{v}" for v in o.values()) for m, o in STOCHASTIC]


def rowwise_denoiser(x, sigma, cond=None):
    """A deterministic denoiser that, like a network, mixes the elements of a row, computed one row at a time."""
    rows = [exact_denoiser(x[i : i + 1], sigma[i : i + 1]) + 0.01 * x[i : i + 1].mean() for i in range(x.shape[0])]
    return torch.cat(rows)


@pytest.mark.parametrize("method,options", STOCHASTIC, ids=STOCHASTIC_IDS)
def test_per_row_generators_do_not_depend_on_batch_size(method, options):
    """Same seed, batch 1 vs batch 2 (and 3): bit-identical rows; another seed changes only its own row."""
    sigmas = sampling_sigmas(8)
    x = start(3 * 256).reshape(3, 256)
    gens = lambda seeds: [torch.Generator().manual_seed(k) for k in seeds]  # noqa: E731
    run = lambda x, seeds: sample(rowwise_denoiser, x, sigmas, method=method, generator=gens(seeds), **options)  # noqa: E731
    full = run(x, [10, 11, 12])
    assert torch.equal(full[1:2], run(x[1:2], [11]))
    assert torch.equal(full[:2], run(x[:2], [10, 11]))
    other = run(x, [10, 99, 12])
    assert not torch.equal(full[1], other[1]) and torch.equal(full[0], other[0]) and torch.equal(full[2], other[2])


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
    x = start(4096, sigma_max=sigmas[0].item()).reshape(16, 256)  # rows of 256 for pc's per-row norms
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


# ---------------------------------------------------------------------------------------------------------
# Stochastic samplers, EDM churn, predictor-corrector and the score
# ---------------------------------------------------------------------------------------------------------

EDM_CHURN = {"s_churn": 40.0, "s_tmin": 0.05, "s_tmax": 50.0, "s_noise": 1.003}  # Karras et al. 2022, ImageNet


@pytest.mark.parametrize(
    "method,options,steps,tol",
    [
        ("dpmpp_sde", {}, 50, 0.02),
        ("heun", {"s_churn": 5.0}, 50, 0.02),
        ("pc", {"predictor": "euler_maruyama"}, 50, 0.03),
        ("pc", {"corrector_steps": 2}, 50, 0.03),
        # these need more than 50 steps for 2% (at 50: see test_stochastic_samplers_at_50_steps)
        ("dpmpp_2m_sde", {}, 100, 0.02),
        ("dpmpp_2m_sde", {"solver_type": "heun"}, 100, 0.02),
        ("heun", EDM_CHURN, 100, 0.02),
        ("pc", {}, 100, 0.03),
        ("euler_ancestral", {}, 600, 0.02),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_stochastic_sampler_lands_on_gaussian_data(method, options, steps, tol):
    """The oracle for the noise-injecting samplers; 65,536 samples in rows of 4096 (pc's per-row norms)."""
    sigmas = sampling_sigmas(steps, "karras", sigma_min=0.002, sigma_max=80.0, rho=7.0)
    out = sample(exact_denoiser, start().reshape(16, 4096), sigmas, method=method,
                 generator=torch.Generator().manual_seed(1), **options)
    mean, std = out.mean().item(), out.std().item()
    assert abs(mean - M) / M < tol, f"{method} {options}: mean {mean}"
    assert abs(std - S) / S < tol, f"{method} {options}: std {std}"


def recursion_std(sigmas, step) -> float:
    """The exact output std of a sampler whose steps are x <- x + c (D - x) + s z on Gaussian data:
    x - M scales by 1 - c (1 - k), k = S^2 / (S^2 + sigma^2), and gains variance s^2; (c, s) = step(sigma, next)."""
    var = S**2 + 80.0**2
    for sigma, sigma_next in zip(sigmas[:-1].double(), sigmas[1:].double()):
        k = S**2 / (S**2 + sigma**2)
        c, s = step(sigma, sigma_next) if sigma_next > 0 else (1.0, 0.0)  # the last step returns D
        var = var * (1 - c * (1 - k)) ** 2 + s**2
    return float(var) ** 0.5


def test_stochastic_samplers_at_50_steps():
    """What 50 steps give, pinned so that a change shows. Ancestral sampling with a point estimate D ignores the
    posterior variance of x0, so euler_ancestral's std falls short (-11.5%) by exactly what the variance
    recursion of the Gaussian predicts; so do pc's predictors without the corrector (+13% / +6%). The
    2nd-order SDE solvers and EDM churn overshoot by a few percent."""
    sigmas = sampling_sigmas(50, "karras", sigma_min=0.002, sigma_max=80.0, rho=7.0)
    x = start().reshape(16, 4096)

    def ancestral(sigma, sigma_next):
        up = sigma_next * (1 - (sigma_next / sigma) ** 2).sqrt()
        return 1 - (sigma_next**2 - up**2).sqrt() / sigma, up  # Euler step to sigma_down, then noise up

    predictor_var = {"reverse_diffusion": lambda s, n: s**2 - n**2, "euler_maruyama": lambda s, n: 2 * s * (s - n)}
    for method, options, step in [
        ("euler_ancestral", {}, ancestral),
        *[("pc", {"predictor": p, "corrector_steps": 0}, lambda s, n, v=v: (v(s, n) / s**2, v(s, n).sqrt()))
          for p, v in predictor_var.items()],
    ]:
        out = sample(exact_denoiser, x, sigmas, method=method, generator=torch.Generator().manual_seed(1), **options)
        predicted = recursion_std(sigmas, step)
        assert abs(predicted - S) / S > 0.05, method  # the recursion itself says the sampler misses at 50 steps
        assert abs(out.std().item() - predicted) / predicted < 0.01, (method, options)
    for method, options, lo, hi in [("dpmpp_2m_sde", {}, 0.0, 0.04), ("heun", EDM_CHURN, 0.01, 0.06)]:
        out = sample(exact_denoiser, x, sigmas, method=method, generator=torch.Generator().manual_seed(1), **options)
        assert lo < (out.std().item() - S) / S < hi, method


def test_langevin_corrector_converges_to_the_noised_marginal():
    """Langevin steps alone at a fixed sigma, on the exact score, from a wrong start: N(M, S^2 + sigma^2)."""
    from vidiff.diffusion import langevin_correct

    for sigma in (0.2, 5.0):
        target = (S**2 + sigma**2) ** 0.5
        x = M - 1.0 + 3 * target * start(seed=2).reshape(16, 4096) / 80.0  # mean off by 1, std 3x
        out = langevin_correct(exact_denoiser, x, sigma, snr=0.16, corrector_steps=300,
                               generator=torch.Generator().manual_seed(3))
        assert abs(out.mean().item() - M) / target < 0.02, sigma
        assert abs(out.std().item() - target) / target < 0.02, sigma
        assert abs(x.std().item() - target) / target > 1  # it did have to move


def test_heun_churn_zero_is_plain_heun_and_churn_changes_it():
    sigmas = sampling_sigmas(12)
    x = start(512)
    plain = sample_heun(exact_denoiser, x, sigmas)
    assert torch.equal(sample_heun(exact_denoiser, x, sigmas, s_churn=0.0, generator=torch.Generator()), plain)
    # churn outside [s_tmin, s_tmax] never applies
    assert torch.equal(sample_heun(exact_denoiser, x, sigmas, s_churn=40.0, s_tmin=100.0, s_tmax=200.0), plain)
    churned = sample_heun(exact_denoiser, x, sigmas, s_churn=40.0, generator=torch.Generator().manual_seed(0))
    assert (churned - plain).abs().max() > 1e-3
    seen = []
    sample_heun(exact_denoiser, x, sigmas, s_churn=24.0, callback=seen.append, generator=torch.Generator())
    gamma = min(24.0 / 12, 2**0.5 - 1)
    assert seen[3]["sigma"].item() == pytest.approx(sigmas[3].item() * (1 + gamma), rel=1e-6)  # sigma_hat


def test_stochastic_samplers_reduce_to_their_known_relatives():
    sigmas = sampling_sigmas(15)
    x = start(256)
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    for eta in (0.5, 1.0):  # an Euler step to sigma_down is DDIM's update
        torch.testing.assert_close(sample(exact_denoiser, x, sigmas, method="euler_ancestral", eta=eta, generator=gen()),
                                   sample_ddim(exact_denoiser, x, sigmas, eta=eta, generator=gen()))
    # eta = 0: the ODE solvers, no noise drawn
    torch.testing.assert_close(sample(exact_denoiser, x, sigmas, method="euler_ancestral", eta=0.0),
                               sample_euler(exact_denoiser, x, sigmas))
    torch.testing.assert_close(sample(exact_denoiser, x, sigmas, method="dpmpp_2m_sde", eta=0.0),
                               sample_dpmpp_2m(exact_denoiser, x, sigmas))
    # dpmpp_2m_sde's first-order part with eta = 1 is the DDPM posterior: on a 2-step grid only step 1 draws
    two = torch.tensor([5.0, 1.0, 0.0])
    torch.testing.assert_close(sample(exact_denoiser, x, two, method="dpmpp_2m_sde", generator=gen()),
                               sample_ddpm(exact_denoiser, x, two, generator=gen()))
    # the 2nd-order terms do act
    a = sample(exact_denoiser, x, sigmas, method="dpmpp_2m_sde", generator=gen())
    b = sample(exact_denoiser, x, sigmas, method="dpmpp_2m_sde", solver_type="heun", generator=gen())
    assert (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("method,options", STOCHASTIC, ids=STOCHASTIC_IDS)
def test_noise_sampler_fixes_the_noise(method, options):
    sigmas = sampling_sigmas(6)
    x = start(4 * 256).reshape(4, 256)

    def seeded(seed, calls=None):
        g = torch.Generator().manual_seed(seed)

        def noise_sampler(sigma, sigma_next):
            if calls is not None:
                calls.append((float(sigma), float(sigma_next)))
            return torch.randn(x.shape, generator=g, dtype=x.dtype)

        return noise_sampler

    calls = []
    a = sample(exact_denoiser, x, sigmas, method=method, noise_sampler=seeded(5, calls),
               generator=torch.Generator().manual_seed(1), **options)
    b = sample(exact_denoiser, x, sigmas, method=method, noise_sampler=seeded(5),
               generator=torch.Generator().manual_seed(2), **options)  # the generator is not consulted
    assert torch.equal(a, b)
    c = sample(exact_denoiser, x, sigmas, method=method, noise_sampler=seeded(6), **options)
    assert not torch.equal(a, c)
    grid = [(float(s), float(n)) for s, n in zip(sigmas[:-2], sigmas[1:-1])]  # no noise on the last step
    if method in ("ddpm", "ddim", "euler_ancestral", "dpmpp_2m_sde"):
        assert calls == grid
    if method == "dpmpp_sde":  # (sigma, sigma_mid), (sigma, sigma_next) per step
        assert [c[0] for c in calls] == [s for s, _ in grid for _ in (0, 1)] and calls[1::2] == grid
    with pytest.raises(ValueError, match="noise_sampler"):
        sample(exact_denoiser, x, sigmas, method=method, noise_sampler=lambda s, n: torch.zeros(3), **options)


def test_score_is_tweedie_and_matches_the_gaussian():
    from vidiff.diffusion import score

    x = start(64, seed=3).reshape(8, 8)
    sigma = torch.linspace(0.1, 3.0, 8)  # (B,)
    got = score(exact_denoiser, x, sigma)
    expected = -(x - M) / (S**2 + sigma.double().reshape(-1, 1) ** 2)  # grad log N(M, S^2 + sigma^2)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(score(exact_denoiser, x, 2.0), -(x - M) / (S**2 + 4.0))  # a number broadcasts
    with pytest.raises(ValueError, match="sigma"):
        score(exact_denoiser, x, 0.0)


def test_bad_stochastic_options():
    x, sigmas = start(256).reshape(1, 256), sampling_sigmas(3)
    for method, options, name in [
        ("euler_ancestral", {"eta": -1.0}, "eta"),
        ("dpmpp_2m_sde", {"solver_type": "rk4"}, "solver_type"),
        ("dpmpp_sde", {"r": 0.0}, "r"),
        ("heun", {"s_churn": float("nan")}, "s_churn"),
        ("heun", {"s_noise": -1.0}, "s_noise"),
        ("pc", {"predictor": "ode"}, "predictor"),
        ("pc", {"snr": 0.0}, "snr"),
        ("pc", {"corrector_steps": 1.5}, "corrector_steps"),
        ("euler", {"noise_sampler": lambda s, n: x}, "noise_sampler"),  # deterministic samplers draw nothing
        ("dpmpp_2m", {"eta": 1.0}, "eta"),
    ]:
        with pytest.raises(ValueError, match=name):
            sample(exact_denoiser, x, sigmas, method=method, **options)


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
    x = start(4 * 256).reshape(4, 256).float()  # rows of 256 for pc's per-row norms
    gens = lambda: [torch.Generator().manual_seed(k) for k in range(4)]  # noqa: E731
    for method, options in [(m, {}) for m in SAMPLERS] + STOCHASTIC:
        cpu = sample(exact_denoiser, x, sigmas, method=method, generator=gens(), **options)
        gpu = sample(exact_denoiser, x.cuda(), sigmas.cuda(), method=method, generator=gens(), **options)
        # pc's Langevin step is 2 (snr |z| / |score|)^2 per row: a last-bit change in a row norm (CUDA reduces in
        # another order) moves its result ~100 times more than the other samplers' (measured on the CPU: a 1e-7
        # relative change of x moves pc by 1.9e-5, the others by <= 1.1e-6)
        tol = dict(rtol=1e-3, atol=1e-3) if method == "pc" else dict(rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(gpu.cpu(), cpu, **tol, msg=lambda m: f"{method} {options}: {m}")
