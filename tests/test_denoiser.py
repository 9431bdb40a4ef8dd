import math

import pytest
import torch

from vidiff.diffusion import Denoiser
from vidiff.diffusion.cond import Cond
from vidiff.errors import InputError

SIGMAS = torch.tensor([0.01, 0.3, 1.0, 7.5])  # (B,)


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(4, 3, 2, 5, 6, generator=g)  # (B, C, F, H, W)
    noise = torch.randn(4, 3, 2, 5, 6, generator=g)
    return x0, noise


def expected_target(param, x0, noise, sigma, sigma_data):
    """Written out independently of the module: the textbook targets."""
    s = sigma.reshape(-1, 1, 1, 1, 1)
    if param == "eps":
        return noise
    if param == "x0":
        return x0
    # k-diffusion / EDM v: with a = d / sqrt(s^2 + d^2), b = s / sqrt(s^2 + d^2), v = a * noise - b * x0 / d
    d = sigma_data
    return d / (s**2 + d**2).sqrt() * noise - s / (s**2 + d**2).sqrt() * x0 / d


class OracleNet(torch.nn.Module):
    """Returns the exact target for the x0 / noise it was built with; checks what it is called with."""

    def __init__(self, param, x0, noise, sigma, sigma_data):
        super().__init__()
        self.target = expected_target(param, x0, noise, sigma, sigma_data)
        self.x, self.sigma, self.d = x0 + sigma.reshape(-1, 1, 1, 1, 1) * noise, sigma, sigma_data
        self.calls = []

    def forward(self, x_in, c_noise, cond):
        c_in = 1 / (self.sigma**2 + self.d**2).sqrt()
        torch.testing.assert_close(x_in, self.x * c_in.reshape(-1, 1, 1, 1, 1))
        torch.testing.assert_close(c_noise, self.sigma.log() / 4)
        self.calls.append(cond)
        return self.target


@pytest.mark.parametrize("param", ["eps", "v", "x0"])
@pytest.mark.parametrize("sigma_data", [1.0, 0.5])
def test_exact_target_gives_exact_x0_and_zero_loss(param, sigma_data):
    x0, noise = data()
    net = OracleNet(param, x0, noise, SIGMAS, sigma_data)
    den = Denoiser(net, parameterization=param, sigma_data=sigma_data)
    cond = Cond(context=torch.randn(4, 2, 3), frame_stride=torch.ones(4))
    denoised = den(net.x, SIGMAS, cond)
    torch.testing.assert_close(denoised, x0, rtol=1e-5, atol=1e-5)
    loss = den.loss(x0, SIGMAS, cond, noise=noise)
    assert loss.shape == (4,)
    assert loss.max().item() < 1e-10
    assert net.calls == [cond, cond]  # the same Cond object reaches the net, unchanged
    den(net.x, SIGMAS)
    assert net.calls[-1] is None


@pytest.mark.parametrize("param", ["eps", "v", "x0"])
def test_loss_is_mse_against_the_target(param):
    x0, noise = data(1)
    offset = torch.arange(4, dtype=torch.float32).reshape(-1, 1, 1, 1, 1)  # per-sample error 0, 1, 2, 3
    target = expected_target(param, x0, noise, SIGMAS, 1.0)
    den = Denoiser(lambda x, c, cond: target + offset, parameterization=param)
    torch.testing.assert_close(den.loss(x0, SIGMAS, noise=noise), torch.tensor([0.0, 1.0, 4.0, 9.0]))


def test_v_target_equals_standard_v_prediction_at_unit_sigma_data():
    """DDPM-style v = sqrt(a) eps - sqrt(1 - a) x0 with a = 1 / (1 + sigma^2) (Salimans & Ho 2022)."""
    x0, noise = data(2)
    a = (1 / (1 + SIGMAS**2)).reshape(-1, 1, 1, 1, 1)
    v = a.sqrt() * noise - (1 - a).sqrt() * x0
    seen = {}

    def net(x, c, cond):
        seen["x"] = x
        return torch.zeros_like(x)

    den = Denoiser(net, "v", 1.0)
    # loss with a zero net equals mean(v^2) per sample
    torch.testing.assert_close(den.loss(x0, SIGMAS, noise=noise), v.pow(2).flatten(1).mean(1))
    # and the net's input is the VP-scaled x_t = sqrt(a) x0 + sqrt(1 - a) noise
    torch.testing.assert_close(seen["x"], a.sqrt() * x0 + (1 - a).sqrt() * noise)


@pytest.mark.parametrize("param", ["eps", "v", "x0"])
def test_min_snr_weights_match_formula(param):
    gamma = 5.0
    den = Denoiser(lambda x, c, cond: x, parameterization=param)
    sig = torch.tensor([0.1, 0.3, 1 / math.sqrt(5), 1.0, 4.0])
    snr = 1 / sig.double() ** 2
    clipped = torch.minimum(snr, torch.tensor(gamma, dtype=torch.float64))
    expected = {"eps": clipped / snr, "x0": clipped, "v": clipped / (snr + 1)}[param]
    torch.testing.assert_close(den.min_snr_weight(sig, gamma).double(), expected, rtol=1e-6, atol=0)


def test_min_snr_weighting_multiplies_the_loss():
    x0, noise = data(3)
    den = Denoiser(lambda x, c, cond: torch.ones_like(x), "eps")
    plain = den.loss(x0, SIGMAS, noise=noise)
    weighted = den.loss(x0, SIGMAS, noise=noise, min_snr_gamma=5.0)
    torch.testing.assert_close(weighted, plain * den.min_snr_weight(SIGMAS, 5.0))
    with pytest.raises(InputError, match="min_snr_gamma"):
        den.loss(x0, SIGMAS, noise=noise, min_snr_gamma=-1.0)


def test_scalar_sigma_broadcasts_and_generators_reproduce():
    x0, _ = data(4)
    den = Denoiser(lambda x, c, cond: x * 0.5 + c.reshape(-1, 1, 1, 1, 1), "x0")
    a = den(x0, 2.0)
    b = den(x0, torch.full((4,), 2.0))
    torch.testing.assert_close(a, b)
    l1 = den.loss(x0, 0.7, generator=torch.Generator().manual_seed(9))
    l2 = den.loss(x0, 0.7, generator=torch.Generator().manual_seed(9))
    assert torch.equal(l1, l2)
    # per-row generators: row 2's loss does not depend on the other rows
    gens = [torch.Generator().manual_seed(k) for k in (1, 2, 3, 4)]
    full = den.loss(x0, 0.7, generator=gens)
    alone = den.loss(x0[2:3], 0.7, generator=[torch.Generator().manual_seed(3)])
    torch.testing.assert_close(full[2:3], alone)


def test_bad_arguments():
    with pytest.raises(InputError, match="parameterization"):
        Denoiser(lambda x, c, cond: x, "score")
    with pytest.raises(InputError, match="sigma_data"):
        Denoiser(lambda x, c, cond: x, "v", sigma_data=0.0)
    den = Denoiser(lambda x, c, cond: x, "v")
    with pytest.raises(InputError, match="sigma"):
        den(torch.zeros(2, 3), torch.ones(3))
    with pytest.raises(InputError, match="noise"):
        den.loss(torch.zeros(2, 3), 1.0, noise=torch.zeros(2, 4))


def test_gradients_flow_to_the_net():
    net = torch.nn.Conv3d(3, 3, 1)
    den = Denoiser(lambda x, c, cond: net(x), "v")
    x0, _ = data(5)
    den.loss(x0, SIGMAS).mean().backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("param,atol", [("v", 1e-5), ("x0", 1e-6), ("eps", 5e-3)])
def test_zero_snr_clamped_sigma_stays_accurate_in_float32(param, atol):
    """At sigma = ZERO_SNR_SIGMA_MAX, v and x0 recover x0 to float precision; eps loses ~1e-3 to cancellation
    (x - sigma * eps with x ~ 1e4), which is why zero-SNR schedules pair with v-prediction."""
    from vidiff.diffusion import ZERO_SNR_SIGMA_MAX

    x0, noise = data(6)
    sig = torch.full((4,), ZERO_SNR_SIGMA_MAX)
    net = OracleNet(param, x0, noise, sig, 1.0)
    den = Denoiser(net, parameterization=param)
    torch.testing.assert_close(den(net.x, sig), x0, rtol=0, atol=atol)
