"""The loop on the toy stage: kill -9 / resume, exact replay, non-finite guard, no pickle ever executed."""
import json
import os
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from vidiff.config import from_dict
from vidiff.errors import InputError
from vidiff.training import checkpoint as ckpt
from vidiff.training.config import TrainConfig, validate
from vidiff.training.logging import read_metrics
from vidiff.training.loop import TrainingDiverged, train
from vidiff.training.lr import lr_at

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))


def toy(tmp_path, **train_over) -> TrainConfig:
    model = train_over.pop("model", {"dim": 8, "width": 16})
    t = {"max_steps": 12, "batch_size": 3, "log_every": 1, "checkpoint_every": 4, "ema_decay": 0.9}
    t.update(train_over)
    return validate(from_dict(TrainConfig, {
        "stage": "toy", "output_dir": str(tmp_path / "run"), "model": model,
        "data": {"kind": "synthetic", "num_samples": 20}, "optimizer": {"lr": 0.01, "warmup_steps": 4},
        "train": t}))


def test_kill_resume_stress_fast(tmp_path):
    """Three kill -9s (two during a checkpoint save) of real training processes: every resume works, no
    incomplete checkpoint is picked, no temp folder remains, and the losses equal the uninterrupted run's
    bit for bit (exact resume in a fresh process, mid-epoch: 200 samples, 8 per step)."""
    from kill_resume_stress import run_stress

    result = run_stress(tmp_path, kills=3, steps=40, every=5, log=lambda *_: None, dropout=0.1)
    # 2 resumes after kills + the final one; with dropout 0.1 the losses, the final weights and the EMA (checkpoint
    # and export) equal the uninterrupted run's: dropout's global-RNG draws are keyed to (seed, step, micro, rank)
    assert result == {"kills": 3, "during_save": 2, "resumed": 3, "identical_losses": True, "identical_weights": True}


@pytest.mark.slow
def test_kill_resume_stress_20(tmp_path):
    from kill_resume_stress import run_stress

    result = run_stress(tmp_path, kills=20, steps=300, every=10, seed=1, log=lambda *_: None, dropout=0.1)
    assert result["kills"] == 20 and result["during_save"] >= 10 and result["identical_losses"]
    assert result["identical_weights"]


def test_injected_inf_gradients_skip_exactly_those_steps(tmp_path):
    cfg = toy(tmp_path, model={"dim": 8, "width": 16, "inf_grad_steps": [2, 6, 7]})
    run = train(cfg)
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["skipped"] for r in rows] == [1 if s in (2, 6, 7) else 0 for s in range(12)]
    opt_steps = 0
    for step, row in enumerate(rows):  # the LR of step s comes from the number of steps taken before it
        assert row["lr"] == pytest.approx(lr_at(opt_steps, cfg.optimizer, cfg.train.max_steps))
        opt_steps += 0 if step in (2, 6, 7) else 1
    assert rows[-1]["opt_steps"] == 9
    _, tensors, jsons = ckpt.load_checkpoint(ckpt.latest_checkpoint(run / "checkpoints"))
    assert jsons["state"]["ema_updates"] == 9
    assert all(float(v) == 9 for k, v in tensors["optimizer"].items() if k.endswith(".step"))


def test_resume_between_metrics_lines_logs_what_the_uninterrupted_run_logged(tmp_path):
    """checkpoint_every 4, log_every 3: the line at step 9 of a run resumed from step 8 averages the losses of
    steps 8 and 9 and counts the skipped step 7, as the uninterrupted run's does (it had step 9's loss alone)."""
    model = {"dim": 8, "width": 16, "inf_grad_steps": [6]}
    ref = train(toy(tmp_path / "ref", log_every=3, keep_checkpoints=3, model=model))
    resumed = train(toy(tmp_path / "resumed", log_every=3, keep_checkpoints=3, model=model),
                    resume=str(ref / "checkpoints" / ckpt.step_dir_name(8)))
    timeless = lambda rows: [{k: v for k, v in r.items() if k != "samples_per_s"} for r in rows]  # noqa: E731
    want = [r for r in read_metrics(ref / "metrics.jsonl") if r["step"] > 8]
    assert want[0]["step"] == 9 and want[0]["skipped"] == 1
    assert timeless(read_metrics(resumed / "metrics.jsonl")) == timeless(want)


def test_nonfinite_in_a_row_aborts_with_last_good_checkpoint(tmp_path):
    cfg = toy(tmp_path, max_nonfinite_in_a_row=3, model={"dim": 8, "width": 16, "nan_loss_steps": [5, 6, 7, 8]})
    with pytest.raises(TrainingDiverged, match="3 non-finite steps in a row.*step_00000004"):
        train(cfg)
    latest = ckpt.latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert latest.name == "step_00000004" and ckpt.verify(latest)


class _Bomb:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _plant(folder: Path, name: str, marker: Path, in_manifest: bool) -> None:
    (folder / name).write_bytes(pickle.dumps(_Bomb(marker)))
    if in_manifest:  # an attacker who also rewrites the manifest to match
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["files"][name] = ckpt.file_sha256(folder / name)
        manifest["sizes"][name] = (folder / name).stat().st_size
        (folder / "manifest.json").write_text(json.dumps(manifest))


def test_planted_pickles_are_never_executed(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "exploded"
    cfg = toy(tmp_path, max_steps=4)
    folder = ckpt.latest_checkpoint(train(cfg) / "checkpoints")
    # stray pickles under the names other tools use: never opened, the resume works
    for name in ["random_states_0.pkl", "pytorch_model.bin", "optimizer.pt", "scheduler.bin", "model.ckpt"]:
        _plant(folder, name, marker, in_manifest=False)
    train(toy(tmp_path, max_steps=6), resume=str(folder), force=True)
    assert not marker.exists()
    # a pickle in place of a file the manifest names (manifest rewritten): refused with a clear error
    for name in ["model.safetensors", "optimizer.json", "state.json"]:
        cfg = toy(tmp_path / name, max_steps=4)
        folder = ckpt.latest_checkpoint(train(cfg) / "checkpoints")
        _plant(folder, name, marker, in_manifest=True)
        with pytest.raises(InputError, match=f"{name}: not a valid"):
            train(cfg, resume=str(folder))
        assert not marker.exists()


def test_resume_refuses_a_changed_config(tmp_path):
    train(toy(tmp_path, max_steps=4))
    changed = toy(tmp_path, max_steps=8, batch_size=2)
    with pytest.raises(InputError, match="config changed"):
        train(changed, resume="auto")
    with pytest.raises(InputError, match="--resume auto"):
        train(changed)
    train(changed, resume="auto", force=True)


def _stopped(method, when):
    """`method` of the toy stage, raising KeyboardInterrupt (Ctrl-C) as soon as `when(*args)` holds."""
    def stopped(self, *args):
        if when(*args):
            raise KeyboardInterrupt
        return method(self, *args)
    return stopped


def test_a_restarted_run_stopped_early_leaves_no_export_of_the_old_weights(tmp_path, monkeypatch):
    """`--force` under a changed config, stopped at step 3: the finished run's export/ used to stay beside the new
    config.yaml, and `vidiff export` took the old weights for a finished run of the new settings."""
    from vidiff.training.toy import ToyStage

    run = train(toy(tmp_path, max_steps=4))
    assert (run / "export" / "model.safetensors").is_file()
    monkeypatch.setattr(ToyStage, "loss", _stopped(ToyStage.loss, lambda model, batch, draws, step: step == 3))
    with pytest.raises(KeyboardInterrupt):
        train(toy(tmp_path, max_steps=8, batch_size=2), force=True)
    assert sorted(p.name for p in run.iterdir() if "export" in p.name) == []


def test_an_export_stopped_halfway_leaves_no_export_folder(tmp_path, monkeypatch):
    """Stopped after model.safetensors, before config.yaml (save_part's order), of a run whose folder held an
    older export/: export/ used to hold the new weights with the old config.yaml. `--resume auto` then exports the
    weights the uninterrupted run exports."""
    from safetensors.torch import load_file, save_file

    from vidiff import parts

    ref = train(toy(tmp_path / "ref"))
    run = train(toy(tmp_path, max_steps=4))
    save_part = parts.save_part

    def stopped_after_the_weights(folder, config, state_dict):
        Path(folder).mkdir(parents=True, exist_ok=True)
        save_file(state_dict, str(Path(folder) / parts.WEIGHTS_NAME))
        raise KeyboardInterrupt

    monkeypatch.setattr("vidiff.training.toy.save_part", stopped_after_the_weights)
    with pytest.raises(KeyboardInterrupt):
        train(toy(tmp_path), force=True)
    assert sorted(p.name for p in run.iterdir() if "export" in p.name) == []
    monkeypatch.setattr("vidiff.training.toy.save_part", save_part)
    train(toy(tmp_path), resume="auto")
    got, want = load_file(run / "export" / "model.safetensors"), load_file(ref / "export" / "model.safetensors")
    assert got.keys() == want.keys() and all(got[k].equal(want[k]) for k in want)


def test_resume_from_a_truncated_checkpoint_names_the_file_and_the_way_out(tmp_path):
    """A checkpoint copied or written only in part: the refusal names the file that does not match (it named only
    the folder) and says --resume auto takes the newest complete checkpoint."""
    run = train(toy(tmp_path, max_steps=4))
    folder = run / "checkpoints" / ckpt.step_dir_name(4)
    weights = folder / "model.safetensors"
    size = weights.stat().st_size
    os.truncate(weights, size // 2)
    with pytest.raises(InputError) as e:
        train(toy(tmp_path, max_steps=4), resume=str(folder))
    assert f"{weights} holds {size // 2} bytes, manifest.json says {size}" in str(e.value)
    assert "--resume auto takes the newest complete one" in str(e.value)


def test_force_stopped_while_it_clears_the_checkpoints_leaves_none_in_part(tmp_path, monkeypatch):
    """--force removed checkpoints/ in place: a stop after a file of a checkpoint left the rest as step_X, which
    a later --resume auto skipped as corrupt (with a warning). Each goes under a temp name first."""
    import shutil

    run = train(toy(tmp_path, keep_checkpoints=3))
    rmtree = shutil.rmtree

    def stopped_after_one_file(folder, *args, **kwargs):
        next(Path(folder).rglob("*.safetensors")).unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", stopped_after_one_file)
    with pytest.raises(KeyboardInterrupt):
        train(toy(tmp_path, keep_checkpoints=3), force=True)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    left = ckpt.list_checkpoints(run / "checkpoints")
    assert len(left) == 2 and all(ckpt.verify(folder) for _, folder in left)


def test_fp16_on_cpu_says_it_computes_in_fp32(tmp_path):
    """Accelerate has no fp16 autocast or GradScaler on CPU: the run warns, computes in fp32 (the same losses as
    mixed_precision=no) and the non-finite guard still skips the injected inf step. (On CUDA the scaler skips it
    and its state goes into the checkpoint's state JSON as `grad_scaler`.) A fresh process: Accelerate's
    precision is fixed once per process."""
    from vidiff.config import save_yaml

    model = {"dim": 8, "width": 16, "inf_grad_steps": [3]}
    cfg = toy(tmp_path / "fp16", mixed_precision="fp16", model=model)
    save_yaml(cfg, tmp_path / "fp16.yaml")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "vidiff.train", "--config", str(tmp_path / "fp16.yaml")],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fp16 needs a CUDA device" in proc.stderr
    rows = read_metrics(Path(cfg.output_dir) / "metrics.jsonl")
    assert [r["skipped"] for r in rows] == [1 if s == 3 else 0 for s in range(12)] and rows[-1]["opt_steps"] == 11
    plain = read_metrics(train(toy(tmp_path / "fp32", model=model)) / "metrics.jsonl")
    assert [r["loss"] for r in rows] == [r["loss"] for r in plain]


def test_a_launchers_gradient_accumulation_gives_way_to_the_configs(tmp_path, monkeypatch, caplog):
    """ACCELERATE_GRADIENT_ACCUMULATION_STEPS (Accelerate's own setting, also from a DeepSpeed accelerate config)
    overrode the accelerator's count while the loop ran train.grad_accum micro-steps a step: the first step stopped
    with UnboundLocalError (grad_norm), as the accelerator had not synced yet."""
    plain = read_metrics(train(toy(tmp_path / "plain", grad_accum=2)) / "metrics.jsonl")
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4")
    rows = read_metrics(train(toy(tmp_path / "env", grad_accum=2)) / "metrics.jsonl")
    assert [r["loss"] for r in rows] == [r["loss"] for r in plain] and rows[-1]["opt_steps"] == 12
    assert "the launcher's gradient accumulation 4 (ACCELERATE_GRADIENT_ACCUMULATION_STEPS) is not used: the " \
           "training config's train.grad_accum decides (2)" in caplog.text


def test_a_launchers_dynamo_backend_compiles_and_the_run_saves_plain_names(tmp_path):
    """`accelerate launch --dynamo_backend X` (or an accelerate config's dynamo_backend) has prepare() compile the
    model; the EMA update then met the compiled wrapper's "_orig_mod." names and stopped at the first step with a
    KeyError. A fresh process: Accelerate reads the backend once. The eager backend needs no compiler."""
    from safetensors.torch import load_file

    from vidiff.config import save_yaml

    cfg = toy(tmp_path / "dynamo")
    save_yaml(cfg, tmp_path / "dynamo.yaml")
    env = dict(os.environ, OMP_NUM_THREADS="1", ACCELERATE_DYNAMO_BACKEND="EAGER")
    proc = subprocess.run([sys.executable, "-m", "vidiff.train", "--config", str(tmp_path / "dynamo.yaml")],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = Path(cfg.output_dir)
    plain = train(toy(tmp_path / "plain"))
    assert [r["loss"] for r in read_metrics(run / "metrics.jsonl")] == \
        [r["loss"] for r in read_metrics(plain / "metrics.jsonl")]
    exported, expected = load_file(run / "export" / "model.safetensors"), load_file(plain / "export" / "model.safetensors")
    assert sorted(exported) == sorted(expected) == ["net.0.bias", "net.0.weight", "net.3.bias", "net.3.weight"]
    assert all(float((exported[k] - expected[k]).abs().max()) <= 1e-6 for k in expected)


def test_a_run_trains_under_an_accelerate_without_keep_torch_compile(tmp_path, monkeypatch):
    """pyproject allows accelerate>=0.30; unwrap_model's keep_torch_compile came in 1.3, and the loop's call with it
    stopped every run there with a TypeError. The plain module is taken out of the compiled wrapper and DDP by the
    loop itself (plain_module), with no call to unwrap_model."""
    import torch
    from accelerate import Accelerator

    from vidiff.training.accelerator import plain_module

    plain = read_metrics(train(toy(tmp_path / "plain")) / "metrics.jsonl")
    monkeypatch.setattr(Accelerator, "unwrap_model", lambda self, model, keep_fp32_wrapper=True: model)  # 1.2's
    rows = read_metrics(train(toy(tmp_path / "old")) / "metrics.jsonl")
    assert [r["loss"] for r in rows] == [r["loss"] for r in plain]
    net = torch.nn.Linear(2, 2)
    assert plain_module(torch.compile(net, backend="eager")) is net and plain_module(net) is net


def test_a_users_folder_with_its_own_export_or_config_is_not_overwritten(tmp_path):
    """train() into a folder holding export/my_video.mp4 and the user's config.yaml removed the one and replaced
    the other, without a word."""
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "export" / "my_video.mp4").write_bytes(b"mine")
    with pytest.raises(InputError, match=r"export/ holds files no run writes \(my_video.mp4\)"):
        train(toy(tmp_path))
    (run / "export" / "my_video.mp4").unlink()
    (run / "config.yaml").write_text("my: own config\n")
    with pytest.raises(InputError, match="config.yaml is not a training config a run wrote"):
        train(toy(tmp_path), force=True)
    assert (run / "config.yaml").read_text() == "my: own config\n" and not (run / "metrics.jsonl").exists()
    (run / "config.yaml").unlink()
    train(toy(tmp_path))  # its own folder again: a second run over a finished one is refused as before
    with pytest.raises(InputError, match="already has checkpoints"):
        train(toy(tmp_path))


def test_changed_config_names_the_keys_and_bookkeeping_may_change(tmp_path):
    """The refusal says which keys changed; when and how many checkpoints are kept do not change the run, so they
    may change on resume without --force (and the run resumes)."""
    train(toy(tmp_path, max_steps=4))
    cfg = toy(tmp_path, max_steps=4)
    changed = replace(cfg, optimizer=replace(cfg.optimizer, lr=0.02))
    with pytest.raises(InputError, match=r"changed: optimizer\.lr\)") as e:
        train(changed, resume="auto")
    assert "hash" not in str(e.value)
    longer = replace(changed, train=replace(changed.train, max_steps=8))
    with pytest.raises(InputError, match=r"changed: optimizer\.lr, train\.max_steps\)"):
        train(longer, resume="auto")
    run = train(toy(tmp_path, max_steps=4, checkpoint_every=2, keep_checkpoints=5), resume="auto")
    assert [s for s, _ in ckpt.list_checkpoints(run / "checkpoints")] == [4]  # resumed at 4: nothing to do


def test_a_run_that_recorded_a_home_path_as_written_resumes(tmp_path, monkeypatch):
    """A run whose config.yaml holds "~/clips" as written (before recipes read "~" as the home folder) was refused on
    resume as "changed: data.root", the recipe's path now being read as the home folder's."""
    from vidiff.training.config import home_expanded

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = toy(tmp_path, max_steps=4)
    old = replace(cfg, data=replace(cfg.data, root="~/clips"))
    train(old)
    now = home_expanded(replace(old, train=replace(old.train, max_steps=6, checkpoint_every=2)))
    assert now.data.root == str(tmp_path / "home" / "clips")
    with pytest.warns(UserWarning, match=r"train\.max_steps 4 -> 6"):
        run = train(now, resume="auto")
    assert [s for s, _ in ckpt.list_checkpoints(run / "checkpoints")][-1] == 6
    with pytest.raises(InputError, match=r"changed: data\.root\)"):  # another folder is still a change
        train(replace(now, data=replace(now.data, root=str(tmp_path / "clips"))), resume="auto")


def test_a_run_is_trained_longer_without_force_and_told_of_its_schedule(tmp_path):
    """Raising train.max_steps is how a run is trained longer; it needed --force, which also let any other change
    through. It resumes now, with a warning, and the learning rate follows the schedule over the new length."""
    from vidiff.training.lr import lr_at

    train(toy(tmp_path, max_steps=4))
    more = toy(tmp_path, max_steps=8, checkpoint_every=2, keep_checkpoints=5)
    with pytest.warns(UserWarning, match=r"train\.max_steps 4 -> 8: resuming at step 4 and training to 8"):
        run = train(more, resume="auto")
    assert [s for s, _ in ckpt.list_checkpoints(run / "checkpoints")][-1] == 8
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    late = [r for r in rows if r["step"] > 4]
    # the LR of a step comes from the optimizer steps taken before it (no step here is skipped)
    assert late and all(r["lr"] == pytest.approx(lr_at(r["opt_steps"] - 1, more.optimizer, 8)) for r in late)
    with pytest.raises(InputError, match=r"train\.max_steps 6: the checkpoint step_0+8 is at step 8 already"):
        train(toy(tmp_path, max_steps=6, checkpoint_every=2, keep_checkpoints=5), resume="auto")


def test_a_second_trainer_in_the_same_folder_is_refused(tmp_path):
    """Two trainers in one output_dir rotated each other's checkpoints away: the second is refused while the first
    holds the folder's lock (taken here by another process), and the folder is usable once it is released."""
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(run / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'4242'); print('held', flush=True)\n"
                               "sys.stdin.readline()\n"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=r"another training run \(pid 4242\) is using this folder"):
            train(toy(tmp_path))
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing of the refused run was written
    finally:
        holder.communicate("\n", timeout=30)
    assert (train(toy(tmp_path)) / "export" / "model.safetensors").exists()


def test_a_run_refused_the_lock_of_a_folder_made_at_the_same_moment_leaves_it_to_its_holder(tmp_path, monkeypatch):
    """Two runs started at once on a new output_dir both saw it missing; the one refused the lock then removed the
    holder's .lock and folder as 'a folder this run created', and a third run could lock it too."""
    from vidiff.training import run_folder

    run, holder = tmp_path / "run", None
    take = run_folder.lock_for_all_ranks

    def another_run_locks_first(accelerator, run_dir):
        nonlocal holder
        holder = subprocess.Popen([sys.executable, "-c",
                                   "import fcntl, os, sys\n"
                                   f"os.makedirs({str(run)!r})\n"
                                   f"fd = os.open({str(run / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
                                   "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'4242'); print('held', flush=True)\n"
                                   "sys.stdin.readline()\n"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        return take(accelerator, run_dir)

    monkeypatch.setattr(run_folder, "lock_for_all_ranks", another_run_locks_first)
    try:
        with pytest.raises(InputError, match=r"another training run \(pid 4242\) is using this folder"):
            train(toy(tmp_path))
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # the holder's, left where it is
    finally:
        if holder is not None:
            holder.communicate("\n", timeout=30)


def test_a_lock_file_that_cannot_be_created_leaves_no_folder(tmp_path, monkeypatch):
    """Out of inodes or over quota at .lock: the folder the run had just made was left behind."""
    import errno

    from vidiff.training import run_folder

    real_open = os.open

    def no_lock(path, *args, **kwargs):
        if str(path).endswith("/.lock"):
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(run_folder.os, "open", no_lock)
    with pytest.raises(InputError, match=r"cannot create the run folder's lock file \(Disk quota exceeded\)"):
        train(toy(tmp_path))
    monkeypatch.undo()
    assert not (tmp_path / "run").exists()


def test_a_run_refused_before_writing_leaves_no_folder(tmp_path):
    cfg = toy(tmp_path)
    with pytest.raises(InputError, match="ftw"):
        train(cfg, stage=_Refusing())
    assert not (tmp_path / "run").exists()


class _Refusing:  # a stage whose construction fails, as a dataset that refuses its files does
    def __getattr__(self, name):
        raise InputError("ftw")


def test_a_finished_run_without_checkpoints_is_not_replaced(tmp_path):
    """Checkpoints deleted after a run finished (to save space): a new start would have replaced export/ and
    metrics.jsonl without a word; it is refused unless --force."""
    run = train(toy(tmp_path, max_steps=4))
    weights = (run / "export" / "model.safetensors").read_bytes()
    for _, folder in ckpt.list_checkpoints(run / "checkpoints"):
        ckpt.remove_checkpoint(folder)
    for resume in (None, "auto"):
        with pytest.raises(InputError, match="holds a finished run"):
            train(toy(tmp_path, max_steps=4, seed=5), resume=resume)
    assert (run / "export" / "model.safetensors").read_bytes() == weights
    train(toy(tmp_path, max_steps=4, seed=5), force=True)
    assert (run / "export" / "model.safetensors").read_bytes() != weights


def test_rolling_back_to_an_earlier_checkpoint_is_refused_while_later_ones_are_there(tmp_path):
    run = train(toy(tmp_path, max_steps=12, keep_checkpoints=3))
    steps = dict(ckpt.list_checkpoints(run / "checkpoints"))
    assert sorted(steps) == [4, 8, 12]
    with pytest.raises(InputError, match=r"later checkpoints \(step_0*8, step_0*12\)"):
        train(toy(tmp_path, max_steps=12, keep_checkpoints=3), resume=str(steps[4]))
    with pytest.raises(InputError, match="nowhere: no such folder"):
        train(toy(tmp_path, max_steps=12), resume=str(tmp_path / "nowhere"))
    with pytest.raises(InputError, match="metrics.jsonl: is a file, not a folder"):  # was "not a complete checkpoint"
        train(toy(tmp_path, max_steps=12), resume=str(run / "metrics.jsonl"))
    train(toy(tmp_path, max_steps=12, keep_checkpoints=3), resume=str(steps[12]))  # the newest: nothing later


def test_resuming_a_run_folder_names_what_to_give_instead(tmp_path):
    """`--resume RUN_FOLDER` said "not a complete checkpoint (... incomplete checkpoint (no manifest.json))", as if
    the folder were a broken checkpoint: it says it is a run folder and names --resume auto and its newest one."""
    run = train(toy(tmp_path, max_steps=8))
    newest = run / "checkpoints" / ckpt.step_dir_name(8)
    with pytest.raises(InputError, match=rf"--resume {run}: a run folder, not a checkpoint; to continue that run give "
                                         rf"--resume auto \(.*\), or --resume {newest} \(its newest checkpoint\)$"):
        train(toy(tmp_path, max_steps=8), resume=str(run))
    elsewhere = replace(toy(tmp_path, max_steps=8), output_dir=str(tmp_path / "other"))
    with pytest.raises(InputError, match=rf"--resume auto --set output_dir={run} \("):
        train(elsewhere, resume=str(run))


def test_later_checkpoints_of_the_run_there_are_not_called_this_run_s(tmp_path):
    """A checkpoint of run A resumed into run B's folder, which holds later checkpoints, was refused as "later
    checkpoints ... of another course of this run": they are the run trained there, the checkpoint another run's."""
    a = train(toy(tmp_path, max_steps=8))
    b_cfg = replace(toy(tmp_path, max_steps=8), output_dir=str(tmp_path / "b"))
    train(b_cfg)
    with pytest.raises(InputError, match=rf"later checkpoints \(step_0*8\) of the run trained there, and this "
                                         rf"checkpoint is another run's \({a}\); move them"):
        train(b_cfg, resume=str(a / "checkpoints" / ckpt.step_dir_name(4)))


def test_a_checkpoint_of_another_model_is_refused_in_one_line(tmp_path):
    run = train(toy(tmp_path, max_steps=4))
    other = replace(toy(tmp_path, max_steps=4, model={"dim": 8, "width": 32}), output_dir=str(tmp_path / "other"))
    with pytest.raises(InputError, match=r"do not fit this stage's model \(.*of another shape"):
        train(other, resume=str(ckpt.latest_checkpoint(run / "checkpoints")), force=True)


def test_a_state_record_edited_with_its_hash_is_refused_in_one_line(tmp_path):
    """The manifest's hashes say the files are the ones written, not that their values make sense: a state.json
    edited together with its hash (step as a string, a negative step) gave a TypeError / numpy traceback."""
    import hashlib

    run = train(toy(tmp_path, max_steps=4))
    folder = ckpt.latest_checkpoint(run / "checkpoints")
    state = json.loads((folder / "state.json").read_text())
    for bad in ({**state, "step": "2"}, {**state, "step": -5}, [1]):
        data = json.dumps(bad).encode()
        (folder / "state.json").write_bytes(data)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["files"]["state.json"] = hashlib.sha256(data).hexdigest()
        manifest["sizes"]["state.json"] = len(data)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(InputError, match="training state cannot be restored"):
            train(toy(tmp_path, max_steps=8), resume=str(folder), force=True)


def test_a_launcher_mixed_precision_the_config_overrides_is_warned_of(tmp_path, monkeypatch, caplog):
    """`accelerate launch --config_file configs/accelerate/ddp.yaml` (mixed_precision: bf16) with a config at
    train.mixed_precision no trained in fp32 without a word: the loop's Accelerator(mixed_precision=...) overrides
    the launcher's. The run now says which one decides and how to ask for the other."""
    import logging

    from vidiff.training.accelerator import make_accelerator

    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    monkeypatch.delenv("RANK", raising=False)
    with caplog.at_level(logging.WARNING, logger="vidiff.training.accelerator"):
        make_accelerator(toy(tmp_path))
    assert "the launcher's mixed precision bf16 (accelerate config or --mixed_precision) is not used: the training " \
           "config's train.mixed_precision decides (no); to train in bf16, --set train.mixed_precision=bf16" \
           in caplog.text
    caplog.clear()
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")  # what the launcher sets when nothing was asked
    with caplog.at_level(logging.WARNING, logger="vidiff.training.accelerator"):
        make_accelerator(toy(tmp_path))
    assert "launcher" not in caplog.text


def test_previews_asked_of_a_stage_that_draws_none_are_warned(tmp_path):
    """train.preview_every on a stage without previews (vae, interpolation, toy; keyframes without a vae) wrote no
    previews/ and said nothing."""
    with pytest.warns(UserWarning, match=r"train.preview_every 2: this run writes no previews \(the toy stage"):
        run = train(toy(tmp_path, max_steps=2, preview_every=2))
    assert not (run / "previews").exists()


def test_a_resume_on_changed_clips_is_refused_naming_the_change(tmp_path, caplog):
    """A clip added to (or removed from, or recaptioned in) the video folder between runs: `--resume auto` went on
    without a word, drawing other samples at every step than the run it continued (the order is a permutation of
    the clips). Refused now without --force, before anything is written; the same clips resume as before."""
    import numpy as np

    from vidiff import io
    from vidiff.training.vae_stage import VAEStage

    clips = tmp_path / "clips"
    clips.mkdir()
    for k in range(3):
        io.write_video(clips / f"c{k}.mp4", np.full((6, 16, 16, 3), 40 * k + 20, np.uint8), fps=8)
        (clips / f"c{k}.txt").write_text(f"clip {k}")

    def run(steps, **kw):
        cfg = validate(from_dict(TrainConfig, {
            "stage": "vae", "output_dir": str(tmp_path / "run"),
            "model": {"latent_channels": 4, "block_out_channels": [8, 8], "layers_per_block": 1, "norm_groups": 4,
                      "mid_attention": False},
            "data": {"kind": "video_folder", "root": str(clips), "num_frames": 2, "size": 16},
            "train": {"max_steps": steps, "batch_size": 2, "log_every": 1, "checkpoint_every": 2, "num_workers": 0}}))
        return train(cfg, stage=VAEStage(cfg), **kw)

    folder = run(2)
    written = {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    (clips / "sub").mkdir()
    io.write_video(clips / "sub" / "c3.mp4", np.full((6, 16, 16, 3), 200, np.uint8), fps=8)
    with pytest.raises(InputError, match=r"^data.root: the data changed since .*step_00000002 was written \(3 clips "
                                         r"then, 4 now\): .*pass --force to go on with the data as it is$"):
        run(4, resume="auto")
    (clips / "sub" / "c3.mp4").unlink()
    (clips / "c1.txt").write_text("clip one")
    with pytest.raises(InputError, match=r"\(as many clips, 3, but other files or captions\)"):
        run(4, resume="auto")
    assert {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} == written  # nothing written
    with caplog.at_level("WARNING", logger="vidiff"):
        run(4, resume="auto", force=True)
    assert "going on with it as it is (--force)" in caplog.text
    run(6, resume="auto")  # the step-4 checkpoint recorded the clips it went on with
    assert [r["step"] for r in read_metrics(folder / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]


def test_a_checkpoint_of_another_run_folder_names_the_keys_that_changed(tmp_path):
    """`--resume PATH` to another run folder's checkpoint (a branch into a new output_dir) read only the new folder's
    config.yaml, which it has none of: the refusal named two hashes, and a longer train.max_steps was refused too."""
    first = train(toy(tmp_path))
    cfg = toy(tmp_path / "branch")
    checkpoint = first / "checkpoints" / "step_00000008"
    other = replace(cfg, optimizer=replace(cfg.optimizer, lr=0.02))
    with pytest.raises(InputError, match=r"step_00000008: the config changed since this checkpoint was written "
                                         r"\(changed: optimizer.lr\); pass --force"):
        train(other, resume=str(checkpoint))
    longer = replace(cfg, train=replace(cfg.train, max_steps=16))
    with pytest.warns(UserWarning, match="train.max_steps 12 -> 16: resuming at step 8"):
        branch = train(longer, resume=str(checkpoint))
    assert [r["step"] for r in read_metrics(branch / "metrics.jsonl")] == list(range(9, 17))


def test_a_run_folder_that_cannot_take_its_files_is_refused_before_the_first_step(tmp_path, monkeypatch):
    """A resumed run whose checkpoints/ could not be written (another user's, read-only) trained up to its first
    checkpoint before saying so, and a loss.png that is a folder was met after the last step, with no export
    written: the steps since the last checkpoint were lost. Both are refused before anything trains now."""
    import vidiff.output_safety

    run = train(toy(tmp_path, max_steps=4))
    before = (run / "metrics.jsonl").read_bytes()
    (run / "loss.png").unlink()
    (run / "loss.png").mkdir()
    with pytest.raises(InputError, match=r"output_dir .*loss\.png: is a folder"):
        train(toy(tmp_path, max_steps=8), resume="auto")
    assert (run / "metrics.jsonl").read_bytes() == before and (run / "export").is_dir()
    (run / "loss.png").rmdir()
    real = vidiff.output_safety._cannot_create_in
    monkeypatch.setattr(vidiff.output_safety, "_cannot_create_in",
                        lambda folder: "Permission denied" if folder.name == "checkpoints" else real(folder))
    with pytest.raises(InputError, match=r"cannot write in folder .*checkpoints \(Permission denied\)"):
        train(toy(tmp_path, max_steps=8), resume="auto")
    assert (run / "metrics.jsonl").read_bytes() == before  # not a step was trained
    assert [s for s, _ in ckpt.list_checkpoints(run / "checkpoints")] == [4] and (run / "export").is_dir()
    monkeypatch.setattr(vidiff.output_safety, "_cannot_create_in", real)
    (run / "checkpoints").rename(tmp_path / "aside")
    (run / "checkpoints").write_text("")
    with pytest.raises(InputError, match=r"checkpoints is not a folder"):
        train(toy(tmp_path, max_steps=8), resume="auto", force=True)


@pytest.mark.parametrize("resume", [None, "auto"])
def test_a_run_killed_while_writing_its_config_starts_again(tmp_path, resume):
    """kill -9 inside the first write of a new run (its config.yaml) leaves the lock and that write's temporary;
    the folder was then refused for good as 'holds files that are not a training run's (.config.yaml....)', by
    `--resume auto` and a new start alike. The rerun trains, and the dead writer's temporary is gone."""
    from vidiff.output_safety import temporary_name

    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").touch()
    left = run / temporary_name(run / "config.yaml")
    left.write_text("stage: to")  # cut mid-write; its writer's lock died with it
    os.utime(left, (left.stat().st_atime - 60, left.stat().st_mtime - 60))
    train(toy(tmp_path), resume=resume)
    assert len(read_metrics(run / "metrics.jsonl")) == 12 and (run / "export" / "model.safetensors").is_file()
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [".lock"]


def test_a_full_disk_at_the_lock_file_names_it_and_leaves_no_folder(tmp_path, monkeypatch):
    """The pid written into a new run's .lock on a full disk: os.write's OSError names no file, so the CLI said
    "vidiff: error: cannot write (no space left on the device)", and the run folder was left holding the lock."""
    import errno

    write = os.write

    def full_at_the_lock(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/.lock"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(fd, data)

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    monkeypatch.setattr(os, "write", full_at_the_lock)
    with pytest.raises(InputError, match=r"run\b.*: cannot write the run folder's lock file \.lock \(no space left "):
        train(toy(tmp_path))
    monkeypatch.undo()
    assert not (tmp_path / "run").exists()


def test_a_stop_while_a_preview_is_drawn_leaves_it_to_the_resumed_run(tmp_path):
    """Stopped while drawing the preview of a step that is also a checkpoint step: the checkpoint used to be written
    first, so `--resume auto` started after that step and its preview was never drawn (previews/ of the resumed
    run lacked step 8, which the uninterrupted run has)."""
    from vidiff.training.stages import build_stage

    def run(stop_at=None):
        cfg = toy(tmp_path, preview_every=4)
        stage = build_stage(cfg)

        def preview(model, folder, step):
            if step == stop_at:
                raise KeyboardInterrupt
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"step_{step:08d}.txt").write_text("drawn\n")

        stage.preview = preview
        return cfg, stage

    cfg, stage = run(stop_at=8)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, stage=stage)
    assert ckpt.latest_checkpoint(tmp_path / "run" / "checkpoints").name == ckpt.step_dir_name(4)
    cfg, stage = run()
    folder = train(cfg, resume="auto", stage=stage)
    assert sorted(p.name for p in (folder / "previews").iterdir()) == [
        f"step_{s:08d}.txt" for s in (4, 8, 12)]


def test_a_forked_worker_that_outlives_a_killed_trainer_does_not_hold_its_folder(tmp_path):
    """A DataLoader worker is a fork of the trainer and shared its open .lock, so after a kill -9 of the trainer
    `--resume auto` was refused ("another training run (pid N)", N dead) until the workers noticed, up to 5 s
    later, or for good if one hung. A forked child now closes the lock's descriptor; the trainer keeps the lock."""
    import signal
    import time

    from vidiff.training.run_folder import RunFolderLock

    run = tmp_path / "run"
    lock = RunFolderLock(run).acquire()
    started, ready = os.pipe()
    child = os.fork()
    if child == 0:  # the worker: outlives the trainer's lock
        os.write(ready, b"1")  # fork's after-fork handlers have run
        time.sleep(30)
        os._exit(0)
    try:
        assert os.read(started, 1) == b"1"
        with pytest.raises(InputError, match="another training run"):  # still the trainer's while it lives
            RunFolderLock(run).acquire()
        lock.release()  # as the kernel does when the trainer is killed
        RunFolderLock(run).acquire().release()
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_a_forked_child_does_not_hold_a_folder_lock(tmp_path):
    """The same for the folder lock of `vidiff data shapes` / `data cache` / `export`."""
    import signal
    import time

    from vidiff.folder_lock import folder_busy, folder_lock

    started, ready = os.pipe()
    with folder_lock(tmp_path):
        child = os.fork()
        if child == 0:
            os.write(ready, b"1")
            time.sleep(30)
            os._exit(0)
        assert os.read(started, 1) == b"1"
    try:
        assert not folder_busy(tmp_path)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
