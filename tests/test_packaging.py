"""vidiff as a pip user has it: a wheel in site-packages, run from the user's own project folder, no clone around."""
import glob
import warnings
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "vidiff" / "bundled"


def _pyproject():
    pytest.importorskip("setuptools")
    from setuptools.config.pyprojecttoml import read_configuration

    return read_configuration(REPO / "pyproject.toml")


def test_every_data_file_in_the_package_is_declared_as_package_data():
    """The wheel holds a package's non-Python files only where pyproject's package-data names them: the bundled
    pipelines (weights, pipeline.yaml, config.yaml, trained_on.yaml) must all be in it, or `vidiff generate`
    from a pip install finds no pipeline. Expanded as setuptools does (glob, recursive)."""
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["vidiff"]
    declared = {p for pattern in patterns for p in glob.glob(pattern, root_dir=REPO / "vidiff", recursive=True)
                if (REPO / "vidiff" / p).is_file()}
    data = {str(p.relative_to(REPO / "vidiff")) for p in (REPO / "vidiff").rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert "bundled/shapes/keyframes/trained_on.yaml" in data and "bundled/real-interp/pipeline.yaml" in data
    assert data - declared == set()


def test_pyproject_builds_without_setuptools_deprecations():
    """`license = {text = ...}` was a SetuptoolsDeprecationWarning on every build, with a date (2027-02-18) after
    which setuptools refuses the project: `pip install .` and the wheel build would stop working."""
    from setuptools.warnings import SetuptoolsDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", SetuptoolsDeprecationWarning)
        from setuptools.config.pyprojecttoml import apply_configuration
        from setuptools.dist import Distribution

        apply_configuration(Distribution(), REPO / "pyproject.toml")
