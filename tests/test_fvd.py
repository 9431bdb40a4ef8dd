"""Frechet distance against closed forms; FVD with a small TorchScript feature network."""
import numpy as np
import pytest
import torch

from vidiff.errors import InputError
from vidiff.eval.fvd import FeatureProtocol, extract_features, feature_statistics, frechet_distance, fvd, load_network

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def _random_spd(rng, dim, scale):
    a = rng.normal(size=(dim, dim))
    return scale * (a @ a.T / dim + 0.5 * np.eye(dim))


def test_diagonal_closed_form_by_hand():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    # |dmu|^2 = 1 + 0 + 4 = 5; sum (sqrt v1 - sqrt v2)^2 = 1 + 1 + 0 = 2.
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(7.0, abs=1e-12)
    assert frechet_distance(mu1, np.diag(var1), mu1, np.diag(var1)) == pytest.approx(0.0, abs=1e-12)


def test_matches_scipy_sqrtm_and_is_symmetric():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    s1, s2 = _random_spd(rng, 6, 1.0), _random_spd(rng, 6, 3.0)
    m1, m2 = rng.normal(size=6), rng.normal(size=6)
    reference = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(reference, rel=1e-9)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(frechet_distance(m2, s2, m1, s1), rel=1e-12)


def test_sampled_gaussians_within_one_percent_of_analytic():
    rng = np.random.default_rng(1)
    dim, n = 4, 40_000
    s1, s2 = _random_spd(rng, dim, 1.0), _random_spd(rng, dim, 2.0)
    m1, m2 = np.zeros(dim), np.array([2.0, -2.0, 1.0, 3.0])
    analytic = frechet_distance(m1, s1, m2, s2)
    x1 = rng.multivariate_normal(m1, s1, size=n)
    x2 = rng.multivariate_normal(m2, s2, size=n)
    estimate = frechet_distance(*feature_statistics(x1), *feature_statistics(x2))
    # Sampling error here is about 0.3% (one standard deviation), so 1% is a real check.
    assert abs(estimate - analytic) / analytic < 0.01


class _TinyFeatures(torch.nn.Module):
    """A random 3D-conv feature network standing in for I3D: (B,3,T,H,W) in [-1,1] -> (B,16)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 12, kernel_size=3, stride=2)
        self.proj = torch.nn.Linear(12, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return self.proj(h.mean(dim=(2, 3, 4)))


@pytest.fixture()
def network_file(tmp_path):
    torch.manual_seed(3)
    path = tmp_path / "features.pt"
    torch.jit.script(_TinyFeatures()).save(str(path))
    return path


def _clips(num, frames=8, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(num, 1, 1, 1, 3, generator=g) * 200 + 20  # a colour per clip
    ramp = torch.linspace(0, 30, size).view(1, 1, 1, size, 1)  # a horizontal gradient that moves
    shift = torch.arange(frames).view(1, frames, 1, 1, 1) * 2.0
    video = base + ramp + shift + torch.rand(num, frames, size, size, 3, generator=g) * 10
    return list(video.clamp(0, 255).to(torch.uint8))


def _noisy(clips, level, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(c.float() + level * torch.randn(c.shape, generator=g)).clamp(0, 255).to(torch.uint8) for c in clips]


def test_fvd_zero_on_itself_and_grows_with_noise(network_file):
    protocol = FeatureProtocol(clip_length=8, resolution=16, batch_size=16)
    clips = _clips(48)
    assert fvd(clips, clips, network_file, protocol)["fvd"] == pytest.approx(0.0, abs=1e-6)
    values = [fvd(clips, _noisy(clips, level), network_file, protocol)["fvd"] for level in (4, 16, 48, 96)]
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert values[0] > 0


def test_protocol_resizes_and_counts(network_file):
    network = load_network(network_file)
    clips = _clips(10, frames=12, size=24)
    feats = extract_features(clips, network, FeatureProtocol(clip_length=8, resolution=16, num_samples=6, batch_size=4))
    assert feats.shape == (6, 16)
    with pytest.raises(InputError, match="num_samples"):
        extract_features(clips, network, FeatureProtocol(clip_length=8, resolution=16, num_samples=20))
    with pytest.raises(InputError, match="clip_length"):
        extract_features(clips, network, FeatureProtocol(clip_length=13, resolution=16))


def test_non_finite_features_are_refused_in_one_error():
    """A network that returns NaN reached the covariance's eigen-solver: LinAlgError and a traceback."""
    clips = _clips(6)
    with pytest.raises(InputError, match=r"NaN or infinite features for clips 0\.\.3"):
        extract_features(clips, lambda x: torch.where(torch.arange(len(x))[:, None] > 0, float("nan"), 0.0)
                         .expand(len(x), 4), FeatureProtocol(clip_length=8, resolution=16, batch_size=4))


def test_refuses_non_torchscript(tmp_path, network_file):
    pickled = tmp_path / "state.pt"
    torch.save(_TinyFeatures().state_dict(), pickled)
    with pytest.raises(InputError, match="not a TorchScript archive"):
        load_network(pickled)
    text = tmp_path / "net.pt"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a zip"):
        load_network(text)
    with pytest.raises(InputError, match="missing.pt: file not found"):
        load_network(tmp_path / "missing.pt")
    with pytest.raises(InputError, match=f"^--network: {tmp_path}: is a directory, not a file$"):
        load_network(tmp_path)  # was "feature network file not found"
    assert isinstance(load_network(network_file), torch.jit.ScriptModule)


def test_clips_of_two_sizes_are_resized_each_and_batching_changes_nothing(network_file):
    """A folder of clips of two sizes stacked them before the resize (a RuntimeError traceback); batched or one by
    one, the features are the same."""
    network = load_network(network_file)
    clips = _clips(3, frames=8, size=24) + _clips(3, frames=8, size=20, seed=5)
    together = extract_features(clips, network, FeatureProtocol(clip_length=8, resolution=16, batch_size=6))
    alone = extract_features(clips, network, FeatureProtocol(clip_length=8, resolution=16, batch_size=1))
    assert together.shape == (6, 16) and torch.allclose(together, alone, atol=1e-5)


def test_eval_fvd_on_a_device_this_machine_lacks_says_so(network_file, tmp_path, capsys):
    """--device cuda on a CPU machine was reported as a TorchScript file that could not be loaded."""
    import torch

    from vidiff.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for name in ("real", "fake"):
        (tmp_path / name).mkdir()
    rc = main(["eval", "fvd", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--network",
               str(network_file), "--device", "cuda"])
    assert rc == 2 and "--device cuda: CUDA is not available here" in capsys.readouterr().err
