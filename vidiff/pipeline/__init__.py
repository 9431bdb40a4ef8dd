"""The generation pipeline: keyframes -> interpolation -> decode (docs/architecture.md).

video_pipeline.py  VideoPipeline: orchestration of the stages, every entry point in inference mode
request.py         one keyword-only request object holding every check of a generation call
layout.py          frame layouts: keyframe grid, gap splitting, extension windows
stage.py           one diffusion stage (a part sampled with its settings, per-row noise)
seam.py            the extension seam fade
config.py          the pipeline folder format (pipeline.yaml), read without torch
export.py          a pipeline folder assembled from training run folders

`VideoPipeline` is imported lazily so that `vidiff.pipeline.config` (argument checks before any weights
load) never imports torch.
"""
from __future__ import annotations

__all__ = ["VideoPipeline"]


def __getattr__(name: str):
    if name == "VideoPipeline":
        from vidiff.pipeline.video_pipeline import VideoPipeline

        return VideoPipeline
    raise AttributeError(f"module 'vidiff.pipeline' has no attribute {name!r}")


def __dir__():
    """The lazy names too: dir() (and a notebook's tab completion) listed no VideoPipeline."""
    return sorted({*globals(), *__all__})
