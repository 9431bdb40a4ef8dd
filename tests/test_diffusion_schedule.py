import math

import numpy as np
import pytest
import torch

from vidiff.config import ConfigError, from_dict
from vidiff.diffusion.schedule import (
    ZERO_SNR_SIGMA_MAX,
    NoiseScheduleConfig,
    alphas_cumprod_from_betas,
    make_betas,
    rescale_zero_terminal_snr,
    sample_training_sigmas,
    sampling_sigmas,
    sampling_timesteps,
    schedule_sigmas,
    sigmas_from_alphas_cumprod,
)
from vidiff.errors import InputError


# ---- beta schedules ---------------------------------------------------------------------------------------


def test_linear_and_scaled_linear_betas_match_formula():
    T = 10
    lin = make_betas("linear", T, 1e-4, 2e-2).numpy()
    np.testing.assert_allclose(lin, [1e-4 + i * (2e-2 - 1e-4) / (T - 1) for i in range(T)], rtol=1e-12)
    sl = make_betas("scaled_linear", T, 0.00085, 0.012).numpy()
    a, b = math.sqrt(0.00085), math.sqrt(0.012)
    np.testing.assert_allclose(sl, [(a + i * (b - a) / (T - 1)) ** 2 for i in range(T)], rtol=1e-12)


def test_cosine_alphas_cumprod_follows_nichol_dhariwal():
    T = 50
    ac = alphas_cumprod_from_betas(make_betas("cosine", T)).numpy()
    f = lambda t: math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    expected = [f(t + 1) / f(0) for t in range(T)]
    # beta is clipped at 0.999 only at the very end; everything before equals the closed form
    np.testing.assert_allclose(ac[:-1], expected[:-1], rtol=1e-9)
    assert make_betas("cosine", T).max() <= 0.999


def test_unknown_kind_is_an_input_error():
    with pytest.raises(InputError, match="kind"):
        make_betas("quadratic", 10)


# ---- zero terminal SNR --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["linear", "scaled_linear", "cosine"])
def test_rescale_zero_terminal_snr(kind):
    betas = make_betas(kind, 1000, 0.00085, 0.012)
    ac_old = alphas_cumprod_from_betas(betas)
    ac_new = alphas_cumprod_from_betas(rescale_zero_terminal_snr(betas))
    assert ac_new[-1].item() == 0.0
    assert ac_new[0].item() == pytest.approx(ac_old[0].item(), rel=1e-12)
    assert bool((ac_new[1:] < ac_new[:-1]).all())
    # the shift-and-scale is affine in sqrt(alphas_cumprod): check it at the middle
    s_old, s_new = ac_old.sqrt(), ac_new.sqrt()
    k = s_old[0] / (s_old[0] - s_old[-1])
    assert s_new[500].item() == pytest.approx(((s_old[500] - s_old[-1]) * k).item(), rel=1e-10)
    sig = sigmas_from_alphas_cumprod(ac_new)
    assert math.isinf(sig[-1].item()) and bool(torch.isfinite(sig[:-1]).all())
    # the clamped value stays above every finite sigma of the schedule
    assert sig[-2].item() < ZERO_SNR_SIGMA_MAX


def test_sigmas_from_alphas_cumprod():
    ac = torch.tensor([0.5, 0.2, 1 / 101])
    np.testing.assert_allclose(sigmas_from_alphas_cumprod(ac).numpy(), [1.0, 2.0, 10.0], rtol=1e-6)


# ---- sampling grids --------------------------------------------------------------------------------------


def test_karras_grid_matches_eq5():
    n, smin, smax, rho = 10, 0.002, 80.0, 7.0
    got = sampling_sigmas(n, "karras", sigma_min=smin, sigma_max=smax, rho=rho).double().numpy()
    expected = [(smax ** (1 / rho) + i / (n - 1) * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho for i in range(n)]
    np.testing.assert_allclose(got, expected + [0.0], rtol=1e-6)
    assert got[0] == pytest.approx(80.0, rel=1e-6) and got[-2] == pytest.approx(0.002, rel=1e-6)


def _sched():
    return schedule_sigmas(NoiseScheduleConfig(num_train_steps=1000))


@pytest.mark.parametrize(
    "spacing,expected_t",
    [
        # Lin et al. 2023, Table 2, T = 1000, 10 steps (0-based timesteps)
        ("linspace", [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]),
        ("leading", [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]),
        ("trailing", [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]),
    ],
)
def test_discrete_spacings_match_table(spacing, expected_t):
    sched = _sched()
    got = sampling_sigmas(10, spacing, schedule_sigmas=sched)
    expected = torch.cat([sched[expected_t], torch.zeros(1, dtype=torch.float64)]).float()
    torch.testing.assert_close(got, expected)


def test_discrete_spacings_general_formula():
    T, n = 1000, 7
    sched = _sched()
    lin = [round(i * (T - 1) / (n - 1)) for i in range(n)][::-1]
    lead = [i * (T // n) for i in range(n)][::-1]
    trail = [round(T - i * T / n) - 1 for i in range(n)]
    for spacing, t in [("linspace", lin), ("leading", lead), ("trailing", trail)]:
        got = sampling_sigmas(n, spacing, schedule_sigmas=sched)[:-1]
        torch.testing.assert_close(got, sched[t].float(), msg=spacing)


def test_zero_snr_trailing_grid_is_clamped_and_finite():
    sched = schedule_sigmas(NoiseScheduleConfig(zero_terminal_snr=True))
    assert math.isinf(sched[-1].item())
    grid = sampling_sigmas(25, "trailing", schedule_sigmas=sched)
    assert grid[0].item() == ZERO_SNR_SIGMA_MAX and grid[-1].item() == 0.0
    assert bool(torch.isfinite(grid).all()) and bool((grid[:-1] > grid[1:]).all())


def test_bad_grid_arguments():
    with pytest.raises(InputError, match="spacing"):
        sampling_sigmas(10, "quadratic")
    with pytest.raises(InputError, match="schedule_sigmas"):
        sampling_sigmas(10, "trailing")
    with pytest.raises(InputError, match="num_steps"):
        sampling_sigmas(0)
    with pytest.raises(InputError, match="sigma_min"):
        sampling_sigmas(10, sigma_min=1.0, sigma_max=0.5)


# ---- training noise ---------------------------------------------------------------------------------------


def test_lognormal_training_sigmas_statistics_and_reproducibility():
    cfg = NoiseScheduleConfig(training_noise="lognormal", p_mean=-1.2, p_std=1.2)
    s = sample_training_sigmas(200_000, cfg, torch.Generator().manual_seed(1))
    assert s.shape == (200_000,) and s.dtype == torch.float32
    assert s.log().mean().item() == pytest.approx(-1.2, abs=0.01)
    assert s.log().std().item() == pytest.approx(1.2, abs=0.01)
    again = sample_training_sigmas(200_000, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(s, again)


def test_discrete_training_sigmas_are_uniform_over_schedule():
    cfg = NoiseScheduleConfig(training_noise="discrete", num_train_steps=10, zero_terminal_snr=True)
    sched = schedule_sigmas(cfg).float()
    s = sample_training_sigmas(50_000, cfg, torch.Generator().manual_seed(2))
    allowed = torch.where(torch.isinf(sched), torch.tensor(ZERO_SNR_SIGMA_MAX), sched)
    idx = (s[:, None] == allowed[None]).float().argmax(1)
    assert bool((s[:, None] == allowed[None]).any(1).all())
    counts = torch.bincount(idx, minlength=10).float() / 50_000
    assert torch.allclose(counts, torch.full((10,), 0.1), atol=0.01)


def test_per_row_generators_make_rows_independent_of_batch():
    cfg = NoiseScheduleConfig()
    gens = lambda seeds: [torch.Generator().manual_seed(k) for k in seeds]  # noqa: E731
    big = sample_training_sigmas(3, cfg, gens([5, 6, 7]))
    small = sample_training_sigmas(1, cfg, gens([6]))
    assert big[1].item() == small[0].item()
    with pytest.raises(InputError, match="generator"):
        sample_training_sigmas(2, cfg, gens([1]))


def test_config_from_dict_and_validation():
    cfg = from_dict(NoiseScheduleConfig, {"kind": "cosine", "training_noise": "discrete", "zero_terminal_snr": True})
    assert cfg.kind == "cosine" and cfg.num_train_steps == 1000
    with pytest.raises(ConfigError, match="P_mean|unknown"):
        from_dict(NoiseScheduleConfig, {"P_mean": 0.0})
    with pytest.raises(ConfigError, match="sigma_min"):
        NoiseScheduleConfig(sigma_min=10.0, sigma_max=1.0)
    with pytest.raises(ConfigError, match="kind"):
        from_dict(NoiseScheduleConfig, {"kind": "sqrt"})


# ---- equivalence with a reference implementation (diffusers, a test-only dependency; about 10 s in all) ----


@pytest.mark.parametrize("kind,ref_kind", [("linear", "linear"), ("scaled_linear", "scaled_linear"), ("cosine", "squaredcos_cap_v2")])
@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("zero_snr", [False, True])
def test_grids_match_diffusers(kind, ref_kind, spacing, zero_snr):
    diffusers = pytest.importorskip("diffusers")
    cfg = NoiseScheduleConfig(kind=kind, beta_start=0.0001 if kind == "linear" else 0.00085,
                              beta_end=0.02 if kind == "linear" else 0.012, zero_terminal_snr=zero_snr)
    ref = diffusers.DDIMScheduler(
        beta_schedule=ref_kind, beta_start=cfg.beta_start, beta_end=cfg.beta_end,
        timestep_spacing=spacing, rescale_betas_zero_snr=zero_snr,
    )
    ref.set_timesteps(20)
    ac = ref.alphas_cumprod[ref.timesteps].double()
    ref_sigmas = torch.cat([((1 - ac) / ac).sqrt(), torch.zeros(1, dtype=torch.float64)])
    ours = sampling_sigmas(20, spacing, schedule_sigmas=schedule_sigmas(cfg))
    assert torch.equal(sampling_timesteps(20, 1000, spacing), ref.timesteps.long())
    # a zero-SNR first timestep is inf in diffusers; we clamp it to ZERO_SNR_SIGMA_MAX
    if math.isinf(ref_sigmas[0].item()):
        assert ours[0].item() == ZERO_SNR_SIGMA_MAX
        ours, ref_sigmas = ours[1:], ref_sigmas[1:]
    # diffusers keeps alphas_cumprod in float32 (a cumulative product of 1000 float32 betas, ~30 steps of 6e-8 of
    # rounding; measured up to 7e-7 with the zero-SNR rescale): at the smallest sigmas (ac ~ 1 - 4e-5)
    # that alone moves sigma by ~0.1-0.2%. So compare alphas_cumprod to 2e-6 (about 30 float32 steps), and sigma to 0.1%
    # where float32 rounding of ac cannot reach that.
    ours_ac, ref_ac = 1 / (1 + ours.double().square()), 1 / (1 + ref_sigmas.square())
    torch.testing.assert_close(ours_ac, ref_ac, rtol=0, atol=2e-6)
    large = ref_sigmas >= 0.05
    torch.testing.assert_close(ours[large], ref_sigmas[large].float(), rtol=1e-3, atol=0)
