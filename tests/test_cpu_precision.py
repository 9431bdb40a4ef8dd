"""Half precision on a CPU without native kernels falls back to fp32 with a warning (vidiff/cpu_precision.py)."""
import warnings

import pytest
import torch

from vidiff import cpu_precision
from vidiff.commands.device_args import dtype_name, torch_dtype
from vidiff.config import from_dict
from vidiff.training.config import TrainConfig, validate
from vidiff.training.accelerator import make_accelerator


@pytest.fixture
def no_half_kernels(monkeypatch):
    monkeypatch.setattr(cpu_precision, "cpu_has_fast", lambda dtype: dtype == torch.float32)


@pytest.fixture
def half_kernels(monkeypatch):
    monkeypatch.setattr(cpu_precision, "cpu_has_fast", lambda dtype: True)


def test_the_probe_is_onednns_own_answer():
    assert cpu_precision.cpu_has_fast(torch.float32) is True
    assert cpu_precision.cpu_has_fast(torch.bfloat16) is bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert cpu_precision.cpu_has_fast(torch.float16) is bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())


def test_dtype_falls_back_to_fp32_only_on_the_cpu_and_only_without_kernels(no_half_kernels):
    with pytest.warns(UserWarning) as said:
        assert torch_dtype("bf16", "cpu") == torch.float32
        assert torch_dtype("fp16", "cpu") == torch.float32
    text = " ".join(str(w.message) for w in said)
    assert "--dtype bf16: this CPU has no native bfloat16 kernels (oneDNN needs AVX512-BF16 or AMX-BF16)" in text
    assert "--dtype fp16: this CPU has no native float16 kernels (oneDNN needs AVX512-FP16 or AMX-FP16)" in text
    assert "float32 instead" in text
    assert torch_dtype("bf16", "cuda") == torch.bfloat16  # a GPU has its own kernels
    assert torch_dtype("fp32", "cpu") == torch.float32
    assert dtype_name(torch_dtype("bf16", "cpu")) == "fp32"  # what the sidecar records: the dtype that ran


def test_dtype_is_kept_where_the_cpu_has_kernels(half_kernels):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch_dtype("bf16", "cpu") == torch.bfloat16


def _accelerator(precision):
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # each test builds its own
    cfg = validate(from_dict(TrainConfig, {"stage": "toy", "model": {"dim": 4, "width": 8},
                                           "data": {"kind": "synthetic", "num_samples": 10},
                                           "train": {"mixed_precision": precision}}))
    try:
        return make_accelerator(cfg).mixed_precision
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback is for CPU training")
def test_bf16_training_config_trains_in_fp32_without_kernels(no_half_kernels):
    with pytest.warns(UserWarning, match="train.mixed_precision=bf16"):
        assert _accelerator("bf16") == "no"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback is for CPU training")
def test_bf16_training_config_keeps_bf16_with_kernels(half_kernels):
    assert _accelerator("bf16") == "bf16"
    assert _accelerator("no") == "no"


def test_auto_dtype_is_bf16_only_where_the_cpu_computes_it_natively(monkeypatch):
    """`vidiff interpolate --dtype auto` (its default): bf16 on AMX-BF16 / AVX512-BF16 CPUs, where the fill ran 2.4x
    faster with frames 52 dB from fp32's; fp32 on AVX-512 or AVX2 alone, where oneDNN converts or emulates."""
    import torch

    from vidiff import cpu_precision
    from vidiff.commands.device_args import torch_dtype

    monkeypatch.setattr(cpu_precision, "cpu_has_fast", lambda dtype: True)
    for flags, expected in (({"avx512f", "amx_bf16"}, torch.bfloat16), ({"avx512f", "avx512_bf16"}, torch.bfloat16),
                            ({"avx512f"}, torch.float32), ({"avx2"}, torch.float32), (set(), torch.float32)):
        monkeypatch.setattr(cpu_precision, "cpu_flags", lambda flags=flags: flags)
        assert torch_dtype("auto", "cpu") == expected, flags
    monkeypatch.setattr(cpu_precision, "cpu_flags", lambda: {"amx_bf16"})
    monkeypatch.setattr(cpu_precision, "cpu_has_fast", lambda dtype: False)  # a torch whose oneDNN lacks the kernels
    assert torch_dtype("auto", "cpu") == torch.float32
    import warnings

    with warnings.catch_warnings():  # said "no native float32 kernels ... slower than float32" when the probe said no
        warnings.simplefilter("error")
        assert torch_dtype("fp32", "cpu") == torch.float32  # an explicit choice is kept
