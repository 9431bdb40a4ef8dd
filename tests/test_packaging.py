"""vidiff as a pip user has it: a wheel in site-packages, run from the user's own project folder, no clone around."""
import glob
import warnings
from pathlib import Path

import numpy as np
import pytest

from vidiff.cli import main
from vidiff.io import write_video

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "vidiff" / "bundled"


def _pyproject():
    pytest.importorskip("setuptools")
    from setuptools.config.pyprojecttoml import read_configuration

    return read_configuration(REPO / "pyproject.toml")


def _package_files() -> list[Path]:
    """The files under vidiff/ that a clean clone has (git's list where this is a checkout: a stray .DS_Store or a
    local scratch file is no package data); every file found, elsewhere."""
    import subprocess

    try:
        listed = subprocess.run(["git", "ls-files", "-z", "vidiff"], cwd=REPO, capture_output=True, check=True,
                                timeout=30).stdout.decode().split("\0")
    except (OSError, subprocess.SubprocessError):
        return list((REPO / "vidiff").rglob("*"))
    return [REPO / name for name in listed if name] or list((REPO / "vidiff").rglob("*"))


def test_every_data_file_in_the_package_is_declared_as_package_data():
    """The wheel holds a package's non-Python files only where pyproject's package-data names them: the bundled
    pipelines (weights, pipeline.yaml, config.yaml, trained_on.yaml) must all be in it, or `vidiff generate`
    from a pip install finds no pipeline. Expanded as setuptools does (glob, recursive)."""
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["vidiff"]
    declared = {p for pattern in patterns for p in glob.glob(pattern, root_dir=REPO / "vidiff", recursive=True)
                if (REPO / "vidiff" / p).is_file()}
    data = {str(p.relative_to(REPO / "vidiff")) for p in _package_files()
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


def _here(tmp_path, part):
    installed = (BUNDLED / part).resolve()
    steps = " / ".join(f'"{p}"' for p in ("bundled", *Path(part).parts))
    return f' here ({tmp_path}); the bundled one is importlib.resources.files("vidiff") / {steps}: {installed}'


def _recipe(tmp_path, name, **keys):
    text = (REPO / "configs" / name).read_text() + "".join(f"{k}: {v}\n" for k, v in keys.items())
    (tmp_path / name).write_text(text)
    return name


def test_the_docs_bundled_paths_say_where_the_installed_folder_is_in_every_command(tmp_path, monkeypatch, capsys):
    """The docs write bundled folders from a clone's root (`--vae vidiff/bundled/shapes/vae`, `init_weights:
    vidiff/bundled/real-interp/vae`, configs/shapes-control-keyframes.yaml's `base:`). From a project folder only
    `--model` of generate / interpolate said where the installed one is; `eval`, `data cache`, `export` and
    `train` said "no such folder", and a latent stage's `vae:` "model.safetensors not found"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clips").mkdir()
    write_video(tmp_path / "clips" / "a.gif", np.zeros((4, 64, 64, 3), np.uint8), fps=8)
    cases = [
        (["eval", "reconstruction", "--vae", "vidiff/bundled/shapes/vae", "--videos", "clips"],
         "--vae vidiff/bundled/shapes/vae: no such folder" + _here(tmp_path, "shapes/vae")),
        (["eval", "interpolation", "--model", "vidiff/bundled/real-interp", "--videos", "clips", "--stride", "2"],
         "--model vidiff/bundled/real-interp: no such folder" + _here(tmp_path, "real-interp")),
        (["data", "cache", "--videos", "clips", "--vae", "vidiff/bundled/shapes/vae", "--frames", "4", "--size", "64",
          "--out", "latents"],
         "--vae vidiff/bundled/shapes/vae: no such folder" + _here(tmp_path, "shapes/vae")),
        (["export", "vidiff/bundled/shapes/vae", "runs/kf", "runs/it", "-o", "pipe"],
         "RUN_DIR vidiff/bundled/shapes/vae: no such folder" + _here(tmp_path, "shapes/vae")),
        (["train", "--config", _recipe(tmp_path, "shapes-vae.yaml", init_weights="vidiff/bundled/shapes/vae")],
         "init_weights: part folder not found: vidiff/bundled/shapes/vae" + _here(tmp_path, "shapes/vae")),
        (["train", "--config", _recipe(tmp_path, "shapes-control-keyframes.yaml")],
         "base: stage control needs a part folder (the frozen U-Net / VAE), got 'vidiff/bundled/shapes/keyframes'"
         + _here(tmp_path, "shapes/keyframes")),
        # a path under vidiff/bundled that no bundle has: nothing more to say
        (["eval", "reconstruction", "--vae", "vidiff/bundled/shapes/nope", "--videos", "clips"],
         "--vae vidiff/bundled/shapes/nope: no such folder"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.strip() == f"vidiff: error: {message}", argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips", "shapes-control-keyframes.yaml", "shapes-vae.yaml"]


def test_a_latent_stage_vae_from_the_docs_names_the_installed_one(tmp_path, monkeypatch):
    """configs/shapes-one-stage.yaml's `vae: vidiff/bundled/shapes/vae` in a project folder was refused as
    "VAE part folder ...: model.safetensors not found", as if the folder were there and incomplete."""
    from vidiff.errors import InputError
    from vidiff.pipeline.trained import latent_space_id

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as e:
        latent_space_id("vidiff/bundled/shapes/vae")
    assert str(e.value) == "VAE part folder vidiff/bundled/shapes/vae: no such folder" + _here(tmp_path, "shapes/vae")
