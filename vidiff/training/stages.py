"""Per-stage batch preparation and loss: vae, keyframes, interpolation (and the test-only toy stage)."""
from __future__ import annotations


def build_stage(cfg):
    """The stage object the loop trains (see loop.py for the protocol)."""
    if cfg.stage == "toy":
        from vidiff.training.toy import ToyStage

        return ToyStage(cfg)
    raise NotImplementedError(cfg.stage)
