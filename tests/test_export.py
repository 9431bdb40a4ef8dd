"""`vidiff export`: a pipeline folder from three training run folders, with every setting training fixed."""
import shutil
from pathlib import Path

import pytest

from vidiff.cli import main

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "vidiff" / "bundled" / "shapes"
RECIPES = {"vae": "shapes-vae-temporal.yaml", "keyframes": "shapes-keyframes.yaml",
           "interpolation": "shapes-interpolation.yaml"}


def _runs(tmp_path: Path, interpolation_anchor: str | None = None) -> list[Path]:
    """Run folders as training leaves them: the recipe as config.yaml, the bundled part as export/."""
    runs = []
    for stage, recipe in RECIPES.items():
        run = tmp_path / f"run-{stage}"
        run.mkdir()
        text = (REPO / "configs" / recipe).read_text()  # the start VAE of the decoder fine-tune: the bundled one
        if stage == "interpolation" and interpolation_anchor:
            text = text.replace("diffusion: {", f"diffusion: {{anchor: {interpolation_anchor}, ")
        (run / "config.yaml").write_text(text.replace("runs/shapes-vae/export", str(BUNDLE / "vae")))
        shutil.copytree(BUNDLE / stage, run / "export")
        runs.append(run)
    return runs


def test_export_takes_every_training_setting_from_the_runs(tmp_path, capsys):
    from vidiff.pipeline.config import read_pipeline_folder
    from vidiff.training.config import load_train_config

    runs = _runs(tmp_path, interpolation_anchor="known_blend")
    out = tmp_path / "pipe"
    assert main(["export", *map(str, reversed(runs)), "-o", str(out)]) == 0  # any order of the runs
    cfg = read_pipeline_folder(out)
    kf, it = (load_train_config(run / "config.yaml") for run in runs[1:])
    c = kf.conditioning
    assert (cfg.num_keyframes, cfg.keyframe_stride) == (c.num_keyframes, c.keyframe_stride)
    assert cfg.num_frames == (c.num_keyframes - 1) * c.keyframe_stride + 1 and cfg.height == kf.data.size
    assert cfg.interpolation.max_gap == it.conditioning.max_gap and cfg.text_encoder == kf.text_encoder
    for stage, train_cfg in ((cfg.keyframes, kf), (cfg.interpolation, it)):
        assert stage.parameterization == train_cfg.diffusion.parameterization
        assert stage.sigma_data == train_cfg.diffusion.sigma_data
        assert stage.anchor == train_cfg.diffusion.anchor
        assert stage.schedule == dict(train_cfg.diffusion.noise)
    assert (cfg.keyframes.anchor, cfg.interpolation.anchor) == ("none", "known_blend")
    assert (cfg.keyframes.steps, cfg.interpolation.steps, cfg.keyframes.guidance_scale) == (20, 10, 4.0)
    assert c.captions == "shapes_grammar" and cfg.prompt_vocabulary == "shapes"  # the recipe's captions say so
    for part in RECIPES:
        for name in ("config.yaml", "model.safetensors", "trained_on.yaml"):
            assert (out / part / name).read_bytes() == (BUNDLE / part / name).read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pipe.")]  # no temporary folder left
    # an existing folder is kept unless --force
    assert main(["export", *map(str, runs), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (cfg.keyframes.sampler, cfg.interpolation.sampler) == ("dpmpp_2m", "dpmpp_2m")
    assert cfg.keyframes.guidance_interval is None
    assert main(["export", *map(str, runs), "-o", str(out), "--force", "--keyframe-steps", "7",
                 "--interpolation-sampler", "euler_ancestral", "--extension-strength", "0.2",
                 "--guidance-interval", "1", "1000"]) == 0
    assert "steps: 7" in (out / "pipeline.yaml").read_text()
    again = read_pipeline_folder(out)
    assert (again.keyframes.guidance_interval, again.interpolation.guidance_interval) == ((1.0, 1000.0), None)
    assert (again.keyframes.sampler, again.interpolation.sampler) == ("dpmpp_2m", "euler_ancestral")
    assert (cfg.extension_strength, again.extension_strength) == (1.0, 0.2)
    # a strength outside [0, 1] is refused, naming the key, and the folder written before stays
    assert main(["export", *map(str, runs), "-o", str(out), "--force", "--extension-strength", "nan"]) == 2
    assert "--extension-strength must be in [0, 1], got nan" in capsys.readouterr().err
    assert read_pipeline_folder(out).extension_strength == 0.2
    # keyframes trained on the dataset's own captions: no vocabulary is assumed
    # (the recipe's path_captions_from_step and direction_pairs_from_step go too: only the grammar says paths and
    # directions, so both are refused without it)
    text = (runs[1] / "config.yaml").read_text()
    assert "path_captions_from_step: 4000, direction_pairs_from_step: 4000" in text
    (runs[1] / "config.yaml").write_text(text.replace("captions: shapes_grammar", "captions: dataset")
                                         .replace("path_captions_from_step: 4000, direction_pairs_from_step: 4000",
                                                  "path_captions_from_step: 0"))
    assert main(["export", *map(str, runs), "-o", str(out), "--force"]) == 0
    assert read_pipeline_folder(out).prompt_vocabulary is None


@pytest.mark.parametrize("flag, value, message", [
    ("--fps", "0", "--fps must be in [0.1, 240], got 0"), ("--keyframe-steps", "0", "--keyframe-steps must be in [1, "),
    ("--interpolation-steps", "1000000", "--interpolation-steps must be in [1, "),
    ("--guidance", "nan", "--guidance must be a finite number in [0, "),
    ("--image-guidance", "-1", "--image-guidance must be a finite number in [0, "),
    ("--sigma-max", "0.001", "--sigma-max: need 0 < sigma_min < sigma_max"),
    ("--sigma-max", "inf", "--sigma-max must be finite"),
    ("--extension-strength", "5", "--extension-strength must be in [0, 1], got 5"),
    ("--guidance-interval", "5 1", "--guidance-interval must be [lo, hi] with 0 <= lo < hi, got [5.0, 1.0]")])
def test_sampling_options_are_checked_first_under_their_own_names(tmp_path, capsys, flag, value, message):
    """They were checked once pipeline.yaml was built, after the runs were read: `--fps 0` said
    "pipeline.yaml: fps must be in [0.1, 240]", naming a file the user never wrote."""
    from dataclasses import fields

    from vidiff.commands.export import FLAGS
    from vidiff.pipeline.export import DEFAULT_KEYS, SamplingDefaults

    assert set(FLAGS) == set(DEFAULT_KEYS) == {f.name for f in fields(SamplingDefaults)}  # every option is checked
    missing = [str(tmp_path / f"run{i}") for i in range(3)]  # no run is read before the options are checked
    assert main(["export", *missing, "-o", str(tmp_path / "pipe"), flag, *value.split()]) == 2
    err = capsys.readouterr().err
    assert message in err and "pipeline.yaml" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "pipe").exists()


def test_a_missing_run_folder_or_a_file_is_named_as_such(tmp_path, capsys):
    """Both were told "not a training run folder (no config.yaml)", as an existing folder that is not a run is."""
    runs = _runs(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"x")
    for given, message in ((tmp_path / "nope", "no such folder"), (tmp_path / "clip.mp4", "is a file, not a folder")):
        assert main(["export", str(runs[0]), str(given), str(runs[2]), "-o", str(tmp_path / "pipe")]) == 2
        err = capsys.readouterr().err
        assert f"RUN_DIR {given}: {message}" in err and "training run" not in err
    assert not (tmp_path / "pipe").exists()


@pytest.mark.parametrize("drop, message", [("interpolation", "no interpolation run"), (None, "second keyframes")])
def test_export_names_what_is_missing_or_repeated(tmp_path, capsys, drop, message):
    runs = _runs(tmp_path)
    given = [r for r in runs if not r.name.endswith(drop)] if drop else runs + [runs[1]]
    assert main(["export", *map(str, given), "-o", str(tmp_path / "pipe")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "pipe").exists()


def test_a_stop_while_the_old_folder_goes_leaves_a_whole_pipeline(tmp_path, monkeypatch):
    """--force over an existing pipeline, stopped while the old folder is removed: the old folder was removed in
    place, and a stop after its first files left the rest under its name, loading without keyframes/trained_on.yaml
    (so without the checks of its training ranges). Now the old one is set aside first."""
    from vidiff.pipeline import export
    from vidiff.pipeline.config import read_pipeline_folder

    runs, out = _runs(tmp_path), tmp_path / "pipe"
    assert main(["export", *map(str, runs), "-o", str(out)]) == 0
    rmtree = shutil.rmtree

    def stopped_removing(folder, *args, **kwargs):
        if (Path(folder) / "pipeline.yaml").exists():  # a pipeline folder: its first file goes, then Ctrl-C
            (Path(folder) / "keyframes" / "trained_on.yaml").unlink()
            raise KeyboardInterrupt
        rmtree(folder, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", stopped_removing)
    with pytest.raises(KeyboardInterrupt):
        export.export_pipeline(runs, out, export.SamplingDefaults(keyframe_steps=7), overwrite=True)
    assert read_pipeline_folder(out).keyframes.steps == 7  # the new folder, whole
    for part in RECIPES:
        for name in ("config.yaml", "model.safetensors", "trained_on.yaml"):
            assert (out / part / name).read_bytes() == (BUNDLE / part / name).read_bytes()


def test_folders_a_killed_export_left_go_on_the_next_one_once_a_day_old(tmp_path):
    """A SIGKILL mid-export left its hidden `.pipe.*.tmp` folder (or the old pipeline set aside as `.pipe.*.old`)
    beside the output for good. The next export removes those over a day old; a younger one may be another export
    still running, and a `.old` whose pipeline folder is missing is the only copy of that pipeline: both stay."""
    import os
    import time

    from vidiff.pipeline.export import remove_stale_exports

    out = tmp_path / "pipe"
    day_old = time.time() - 2 * 24 * 3600
    folders = {name: tmp_path / name for name in (".pipe.a1.tmp", ".pipe.b2.tmp", ".pipe.c3.old", ".other.d4.tmp")}
    for name, folder in folders.items():
        (folder / "vae").mkdir(parents=True)
        if name != ".pipe.b2.tmp":
            os.utime(folder, (day_old, day_old))
    assert remove_stale_exports(out) == [folders[".pipe.a1.tmp"]]  # no pipe/: its .old is kept
    out.mkdir()
    assert remove_stale_exports(out) == [folders[".pipe.c3.old"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.d4.tmp", ".pipe.b2.tmp", "pipe"]
    assert remove_stale_exports(out, older_than_s=0) == [folders[".pipe.b2.tmp"]]


def test_an_export_removes_what_a_killed_export_left_whatever_its_age(tmp_path):
    """Exports in one folder take turns (a flock on the folder), so whatever one finds there was left by a killed
    one: a SIGKILL mid-copy left `.pipe.*.tmp`, a Ctrl-C just after the swap `.pipe.*.old` (22 MiB each), kept a
    day by the age rule alone."""
    runs = _runs(tmp_path)
    out = tmp_path / "pipe"
    assert main(["export", *map(str, runs), "-o", str(out)]) == 0
    for name in (".pipe.killed.tmp", ".pipe.stopped.old"):
        shutil.copytree(out, tmp_path / name)  # fresh: minutes old at most
    assert main(["export", *map(str, runs), "-o", str(out), "--force"]) == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".pipe.")]


def test_a_stop_during_the_swap_leaves_no_old_pipeline_behind(tmp_path, monkeypatch):
    """A Ctrl-C landing while the old pipeline (set aside) was being removed stopped the removal half-way; now the
    swap and the removal finish first, then the Ctrl-C acts."""
    import os
    import signal

    from vidiff.pipeline import export

    runs = _runs(tmp_path)
    out = tmp_path / "pipe"
    assert main(["export", *map(str, runs), "-o", str(out)]) == 0
    real_rmtree = shutil.rmtree

    def interrupted_rmtree(path, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C as the removal starts
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", interrupted_rmtree)
    with pytest.raises(KeyboardInterrupt):
        export.export_pipeline(runs, out, overwrite=True)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".pipe.")]
    assert (out / "pipeline.yaml").is_file()


def test_damaged_weights_are_refused_before_the_old_folder_is_touched(tmp_path, capsys):
    """A run's export/model.safetensors cut or overwritten: the export said it wrote the pipeline (exit 0), and with
    --force the folder it replaced was gone; the pipeline then failed to load."""
    runs, out = _runs(tmp_path), tmp_path / "pipe"
    assert main(["export", *map(str, runs), "-o", str(out)]) == 0  # the pipeline --force would replace
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    weights = runs[-1] / "export" / "model.safetensors"
    for damaged in (b"garbage\n", weights.read_bytes()[:-100]):
        weights.write_bytes(damaged)
        assert main(["export", *map(str, runs), "-o", str(out), "--force"]) == 2
        assert "model.safetensors is not a readable safetensors file" in capsys.readouterr().err
        assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(tmp_path.glob(".pipe.*"))  # no temporary left beside it


def test_force_replaces_a_pipeline_folder_only(tmp_path, capsys, monkeypatch):
    """--force renamed whatever folder -o named away and deleted it: a user's folder with everything in it; `-o .`
    (or `-o ""`) inside a pipeline folder ended in a traceback from renaming the working folder."""
    runs = _runs(tmp_path)
    mine = tmp_path / "videos"
    mine.mkdir()
    (mine / "holiday.mp4").write_bytes(b"not to be lost")
    for extra in ([], ["--force"]):
        assert main(["export", *map(str, runs), "-o", str(mine), *extra]) == 2
        err = capsys.readouterr().err
        assert "holds what a pipeline folder does not (holiday.mp4), so it is kept (--force too)" in err, err
        assert [p.name for p in mine.iterdir()] == ["holiday.mp4"]
    out = tmp_path / "pipe"
    assert main(["export", *map(str, runs), "-o", str(out)]) == 0
    monkeypatch.chdir(out)
    for name in (".", str(out)):
        assert main(["export", *map(str, runs), "-o", name, "--force"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is the working folder or holds it" in err, err
    assert (out / "pipeline.yaml").is_file()
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", *map(str, runs), "-o", str(empty), "--force"]) == 0  # nothing in it to lose
    assert main(["export", *map(str, runs), "-o", str(out), "--force"]) == 0  # an earlier pipeline: replaced
    assert (out / "pipeline.yaml").is_file()


def test_without_a_keyframes_run_export_writes_an_interpolation_only_pipeline(tmp_path, capsys):
    import torch

    from vidiff.errors import InputError
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.config import read_pipeline_folder
    from vidiff.training.config import load_train_config

    runs = [r for r in _runs(tmp_path) if not r.name.endswith("keyframes")]
    out = tmp_path / "fill"
    assert main(["export", *map(str, runs), "-o", str(out), "--interpolation-steps", "4"]) == 0
    cfg = read_pipeline_folder(out)
    it = load_train_config(runs[1] / "config.yaml")
    assert cfg.parts.keyframes is None and not (out / "keyframes").exists()
    assert cfg.interpolation.max_gap == it.conditioning.max_gap and cfg.interpolation.steps == 4
    assert cfg.interpolation.sigma_data == it.diffusion.sigma_data and cfg.height == it.data.size
    for name in ("config.yaml", "model.safetensors", "trained_on.yaml"):
        assert (out / "interpolation" / name).read_bytes() == (BUNDLE / "interpolation" / name).read_bytes()
    pipe = VideoPipeline.from_pretrained(out)
    ends = torch.from_numpy(__import__("numpy").random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype="uint8"))
    filled = pipe.fill_between(ends, stride=4)
    assert filled.shape == (5, 64, 64, 3) and torch.equal(filled[0], ends[0]) and torch.equal(filled[4], ends[1])
    with pytest.raises(InputError, match="interpolation-only"):
        pipe.text_to_video("a red circle moving left", progress=False)


def test_a_vae_part_folder_stands_for_the_vae_run(tmp_path):
    """Caches and runs are built on a VAE part such as the bundled one; export took run folders only and called the
    part "a run with no export/ (train it to the end first)"."""
    from vidiff.pipeline.config import read_pipeline_folder

    runs = _runs(tmp_path)
    out = tmp_path / "pipe"
    assert main(["export", str(BUNDLE / "vae"), *map(str, runs[1:]), "-o", str(out)]) == 0
    assert (out / "vae" / "model.safetensors").read_bytes() == (BUNDLE / "vae" / "model.safetensors").read_bytes()
    assert read_pipeline_folder(out).parts.keyframes == "keyframes"


def test_a_fine_tuned_run_is_exported_without_its_start_part(tmp_path, capsys, monkeypatch):
    """Export read each run's config.yaml as `vidiff train` reads a recipe, checking the folders it names: a decoder
    fine-tune exported away from where it trained, or after its start part was deleted, was refused as
    "init_weights: part folder not found: runs/shapes-vae/export", a folder export has no use for."""
    runs = _runs(tmp_path)
    (runs[0] / "config.yaml").write_text((REPO / "configs" / RECIPES["vae"]).read_text())  # as trained
    monkeypatch.chdir(tmp_path)  # no runs/shapes-vae/export here
    assert main(["export", *map(str, runs), "-o", str(tmp_path / "pipe")]) == 0, capsys.readouterr().err
    assert (tmp_path / "pipe" / "vae" / "model.safetensors").is_file()
    (runs[1] / "config.yaml").write_text("stage: keyframes\ntrain: {max_step: 3}\n")  # a run's config, edited
    assert main(["export", *map(str, runs), "-o", str(tmp_path / "pipe2")]) == 2
    assert capsys.readouterr().err.startswith(f"vidiff: error: {runs[1] / 'config.yaml'}: unknown config key(s) "
                                              "train.max_step for TrainSection")


def test_a_run_without_export_is_told_how_to_write_it(tmp_path, capsys):
    """A finished run killed before its export/ was in place (or whose export/ was deleted) was told "train it to
    the end first", though it was at its end; the error now gives the command that writes the export."""
    runs = _runs(tmp_path)
    shutil.rmtree(runs[1] / "export")
    assert main(["export", *map(str, runs), "-o", str(tmp_path / "pipe")]) == 2
    err = capsys.readouterr().err
    assert f"{runs[1]}: the run has no export/; `vidiff train --config {runs[1] / 'config.yaml'} --set " \
           f"output_dir={runs[1]} --resume auto` trains it to the end and writes it" in err
    assert not (tmp_path / "pipe").exists()


def test_a_text_encoder_given_relative_to_training_is_named_absolute_in_the_pipeline(tmp_path, monkeypatch):
    """Trained with `text_encoder: te` (a folder beside where training ran), the export wrote `te` into pipeline.yaml,
    where paths are the pipeline folder's: the pipeline could not load, and naming the folder absolutely was then
    refused by the parts' records ("trained with text encoder 'te'")."""
    import shutil
    from types import SimpleNamespace

    from test_text import _tiny_bert

    from vidiff.errors import InputError
    from vidiff.pipeline.export import _text_encoder
    from vidiff.pipeline.trained import encoder_reference, same_text_encoder

    _tiny_bert(tmp_path / "te", 0)
    _tiny_bert(tmp_path / "other", 1)
    monkeypatch.chdir(tmp_path)
    assert _text_encoder(SimpleNamespace(text_encoder="te")) == str(tmp_path / "te") == encoder_reference("te")
    assert _text_encoder(SimpleNamespace(text_encoder="default")) == "default"
    with pytest.raises(InputError, match="the runs' text_encoder gone is not a folder here"):
        _text_encoder(SimpleNamespace(text_encoder="gone"))
    shutil.copytree(tmp_path / "te", tmp_path / "pipe" / "te")  # shipped inside the pipeline folder
    assert same_text_encoder(str(tmp_path / "te"), str(tmp_path / "pipe" / "te"))  # the same weights
    assert not same_text_encoder(str(tmp_path / "te"), str(tmp_path / "other"))
    assert not same_text_encoder(str(tmp_path / "te"), "default")
    assert same_text_encoder("/elsewhere/te", str(tmp_path / "pipe" / "te"))  # recorded on another machine
    assert same_text_encoder("te", str(tmp_path / "pipe" / "te"))  # a part recorded before the paths were absolute


def test_a_full_disk_during_export_is_one_line_and_keeps_the_old_pipeline(tmp_path, capsys, file_size_limit):
    """`vidiff export --force` on a disk that fills while the parts are copied (here the file-size limit, `ulimit
    -f`): an OSError traceback naming the hidden copy; now one line naming the file, the old pipeline as it was and
    no hidden folder left."""
    runs = _runs(tmp_path)
    out = tmp_path / "pipe"
    assert main(["export", *map(str, runs), "-o", str(out)]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    limit = 2 * (BUNDLE / "vae" / "model.safetensors").stat().st_size  # the VAE fits, the keyframes part does not
    assert (BUNDLE / "keyframes" / "model.safetensors").stat().st_size > limit
    with file_size_limit(limit):
        code = main(["export", *map(str, runs), "-o", str(out), "--force"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{out / 'keyframes' / 'model.safetensors'}: cannot write (file too large: over the file-size limit" in err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pipe.")]


def test_two_exports_to_one_new_folder_at_once_replace_nothing_without_force(tmp_path, capsys, monkeypatch):
    """Two `vidiff export -o X` (no --force) started together both found no X, took turns under the folder lock, and
    the second replaced the first's pipeline, both saying "wrote pipeline". The second is refused now."""
    import vidiff.pipeline.export as export

    runs, out, find_runs = _runs(tmp_path), tmp_path / "pipe", export.find_runs
    other = []

    def another_export_meanwhile(run_dirs):  # after this export found no `out`, before it takes the lock
        if not other:
            other.append("started")
            other.append(main(["export", *map(str, runs), "-o", str(out), "--keyframe-steps", "5"]))
        return find_runs(run_dirs)

    monkeypatch.setattr(export, "find_runs", another_export_meanwhile)
    assert main(["export", *map(str, runs), "-o", str(out), "--keyframe-steps", "7"]) == 2
    assert other == ["started", 0] and f"-o {out}: already exists (--force replaces it)" in capsys.readouterr().err
    assert "  steps: 5\n" in (out / "pipeline.yaml").read_text()


def test_an_exported_pipeline_is_as_readable_as_any_new_folder(tmp_path):
    """The pipeline folder kept the mode of its hidden staging copy (mkdtemp's 0700): under the usual umask 022,
    other users of a shared models folder could not open it. It gets a new folder's mode now."""
    import os
    import stat

    runs, out = _runs(tmp_path), tmp_path / "pipe"
    mask = os.umask(0o022)
    try:
        assert main(["export", *map(str, runs), "-o", str(out)]) == 0
    finally:
        os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o004 for p in out.rglob("*"))  # every part file readable by others


def test_only_this_outputs_leftovers_go_whatever_its_name(tmp_path):
    """The leftovers were found by a glob of the output's name: a killed export of "pipe[2]" left its copy for good
    (the `[2]` read as a pattern), and an export of "pipe" removed `.pipe.v2.*.old`, the only copy of the pipeline
    "pipe.v2" when a stop in its swap had left no "pipe.v2"."""
    from vidiff.pipeline.export import remove_stale_exports

    for name in (".pipe[2].k3j_x9qa.tmp", ".pipe.v2.ab12cd34.old", ".pipe.v2.ef56gh78.tmp", ".pipe.qq11ww22.old"):
        (tmp_path / name / "vae").mkdir(parents=True)
    (tmp_path / "pipe").mkdir()
    assert remove_stale_exports(tmp_path / "pipe[2]", older_than_s=-1) == [tmp_path / ".pipe[2].k3j_x9qa.tmp"]
    assert remove_stale_exports(tmp_path / "pipe", older_than_s=-1) == [tmp_path / ".pipe.qq11ww22.old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pipe.v2.ab12cd34.old", ".pipe.v2.ef56gh78.tmp", "pipe"]


def test_leftovers_are_not_looked_for_in_a_folder_that_cannot_be_listed(tmp_path, monkeypatch):
    """An export beside others in a folder it may write but not list (mode -wx, a drop box; folder_lock takes no lock
    there) went on, as a glob finds nothing there; listing it by name raised PermissionError before the export."""
    import os

    from vidiff.pipeline.export import remove_stale_exports

    (tmp_path / ".pipe.ab12cd34.tmp").mkdir()
    real_listdir, real_scandir = os.listdir, os.scandir

    def refused(real):
        def call(path="."):
            if Path(path) == tmp_path:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)
        return call

    monkeypatch.setattr(os, "listdir", refused(real_listdir))
    monkeypatch.setattr(os, "scandir", refused(real_scandir))
    assert remove_stale_exports(tmp_path / "pipe", older_than_s=-1) == []
    assert (tmp_path / ".pipe.ab12cd34.tmp").is_dir()
