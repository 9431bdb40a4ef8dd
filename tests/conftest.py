import os
from pathlib import Path

import pytest

# One intra-op thread: test tensors are small, and OpenMP threads spin badly on a shared 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

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
