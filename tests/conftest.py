import os
import signal
from pathlib import Path

import pytest

# One intra-op thread: test tensors are small, and OpenMP threads spin badly on a shared 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# A suite started with Ctrl-C ignored (a shell's background job, `make test &` without job control) passed the ignore
# on to every command the tests start, and the tests of what Ctrl-C does saw none arrive (exit 0, not 130). A
# handler, unlike an ignore, is not inherited through exec: the commands start with Ctrl-C at its default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "third_party_samples"


@pytest.fixture(scope="session")
def load_tool():
    """load_tool(name): imports the script tools/<name>.py as a module (tools/ is not a package)."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def free_port():
    """free_port(): a TCP port nothing listens on now, for `accelerate launch --main_process_port`, so that two
    launches in parallel test workers do not both take the default 29500."""
    import socket

    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return pick


@pytest.fixture(scope="session")
def sample_videos() -> Path:
    """Folder of real clips from Debian packages (tools/fetch_sample_videos.sh); skips when absent."""
    if not (SAMPLES / "vtest.avi").is_file():
        pytest.skip("real sample clips not available (run `make samples`)")
    return SAMPLES


@pytest.fixture(autouse=True)
def _seed_torch():
    import torch

    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def flow_pipe(tmp_path_factory, load_tool):
    """A tiny random interpolation-only pipeline whose interpolation part reads and denoises around the flow
    anchor; its network predicts zero (the U-Net's zero start), so the fill is the anchor itself."""
    import dataclasses
    import shutil

    import yaml

    from vidiff.models import UNet3D, UNet3DConfig
    from vidiff.parts import load_part_config, save_part

    make = load_tool("make_random_pipeline")
    folder = make.write_random_pipeline(tmp_path_factory.mktemp("pipe") / "flow", tiny=True, steps=1)
    shutil.rmtree(folder / "keyframes")
    cfg = yaml.safe_load((folder / "pipeline.yaml").read_text())
    cfg["parts"]["keyframes"] = None
    cfg["interpolation"].update(anchor="known_flow", sampler="euler", steps=1, carry_residual=True, sigma_data=0.3)
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    part = folder / "interpolation"
    net_cfg = dataclasses.replace(load_part_config(part, UNet3DConfig), anchor_input=True)
    save_part(part, net_cfg, UNet3D(net_cfg).state_dict())
    return folder


@pytest.fixture
def file_size_limit():
    """file_size_limit(nbytes): a context manager under which this process cannot write a file past nbytes (the
    soft RLIMIT_FSIZE, `ulimit -f`; Python ignores SIGXFSZ, so a write past it fails with EFBIG as on a full disk).
    Skips where there is no such limit."""
    from contextlib import contextmanager

    resource = pytest.importorskip("resource")

    @contextmanager
    def limited(nbytes: int):
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    return limited


@pytest.fixture(scope="session")
def grammar_captions():
    """grammar_captions(draws, seed) -> every ((colour, shape, direction), caption) of the Shapes caption grammar:
    for each attribute set, `draws` training and held-out captions and the plain template, for the checks that a
    prompt note never fires on what training says (no false alarms)."""
    import itertools

    def captions(draws: int, seed: int):
        import torch

        from vidiff.data.captions import draw_caption, heldout_prompt
        from vidiff.data.shapes import COLOURS, DIRECTIONS, SHAPES, prompt_for

        gen = torch.Generator().manual_seed(seed)
        for c, s, d in itertools.product(COLOURS, SHAPES, DIRECTIONS):
            for _ in range(draws):
                for prompt in (draw_caption(c, s, d, gen), heldout_prompt(c, s, d, gen), prompt_for(c, s, d)):
                    yield (c, s, d), prompt

    return captions


@pytest.fixture(scope="session")
def run_named_command():
    """run_named_command(error): runs the `python -c '...'` command an error message names (the step it tells the
    user to take), in this process, so a test can check that the step does what the message says."""
    import shlex

    def run(error) -> None:
        exec(shlex.split(str(error).split("python -c ", 1)[1])[0], {})

    return run


@pytest.fixture(scope="session")
def as_pickle_only():
    """as_pickle_only(weights, state_dict, bin_name): the folder's safetensors file replaced by a pickle file of
    the same tensors, as older Hub folders ship them (pytorch_model.bin, diffusion_pytorch_model.bin)."""
    import torch

    def swap(weights, state_dict, bin_name: str) -> None:
        weights.unlink()
        torch.save(state_dict, weights.parent / bin_name)

    return swap
