"""vidiff: video diffusion with a factorized 3D U-Net, keyframes + temporal interpolation, on Accelerate.

Importing the package is cheap: heavy modules (torch models, transformers, codecs) load on first use.
"""
__version__ = "0.1.0"

__all__ = ["VideoPipeline", "__version__"]


def __getattr__(name):
    if name == "VideoPipeline":
        from vidiff.pipeline import VideoPipeline

        return VideoPipeline
    raise AttributeError(f"module 'vidiff' has no attribute {name!r}")


def __dir__():
    """The lazy names too: dir() (and a notebook's tab completion) listed no VideoPipeline."""
    return sorted({*globals(), *__all__})
