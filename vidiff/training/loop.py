"""The training loop: one readable function over Hugging Face Accelerate.

A *stage* (the `Stage` protocol of stage.py: stages.py for vae / keyframes / interpolation, toy.py for tests)
supplies `model`, `dataset`, `loss(model, batch, draws, step) -> (B,)`, `export(folder, state_dict)`, `preview`
and `to(device)`. The loop owns everything else: data order, per-sample randomness, the optimizer, LR, EMA, the non-finite
guard, checkpoints, metrics and previews.

Data order: the run is a stream of global sample ids, each rank loading its own (sample_stream.py), so the loop
position is fully given by the step, which makes resume exact.
"""
from __future__ import annotations

import copy
import logging
import math
import shutil
import time
import warnings
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vidiff.config import save_yaml
from vidiff.errors import InputError, VidiffError
from vidiff.models.recompute import set_activation_recompute
from vidiff.training import checkpoint as ckpt
from vidiff.training import run_folder
from vidiff.training.accelerator import make_accelerator, plain_module, prepare_for_accelerate
from vidiff.training.config import TrainConfig, config_hash
from vidiff.training.ema import EMA
from vidiff.training.logging import MetricsLogger
from vidiff.training.lr import lr_at, set_lr
from vidiff.training.optimizer import adamw_implementation, align_gradients, keep_implementation
from vidiff.training.sample_stream import check_same_data, data_record, make_loader
from vidiff.training.sharding import (check_processes, fsdp_requested, full_state, full_tensor, peer_failure,
                                      shard_model, shard_optimizer_state)
from vidiff.training.stage import Stage
from vidiff.random import SampleDraws, derive_seed

log = logging.getLogger(__name__)


class TrainingDiverged(VidiffError):
    """Too many non-finite steps in a row; the last good checkpoint is left as it was."""


class ProcessesLost(VidiffError):
    """A collective failed because another process of the run died or stopped answering."""


# ---- the loop --------------------------------------------------------------------------------------------

def train(cfg: TrainConfig, *, resume: str | None = None, force: bool = False, stage=None) -> Path:
    """Runs (or resumes) the stage described by `cfg`; returns the run folder. `stage` overrides the one
    built from the config (tests)."""
    t, o = cfg.train, cfg.optimizer
    accelerator = make_accelerator(cfg)
    check_processes(accelerator)  # before anything is written
    run_dir = Path(cfg.output_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"output_dir {run_dir}: is a file, not a folder")
    run_folder.refuse_foreign_output(run_dir)  # before the lock file: a user's folder is left as it was
    created, lock = not run_dir.exists(), None
    try:
        lock = run_folder.lock_for_all_ranks(accelerator, run_dir)  # in here: a lock file that cannot be written
        try:
            return _train_in(run_dir, cfg, accelerator, resume, force, stage)
        except RuntimeError as e:  # a collective whose peer was killed or hung: gloo's traceback said only that
            why = peer_failure(e, accelerator.num_processes)
            if why is None:
                raise
            last = ckpt.latest_checkpoint(run_dir / "checkpoints")
            raise ProcessesLost(
                f"process {accelerator.process_index} of {accelerator.num_processes}: {why}: one was killed, "
                f"crashed or hangs, its own output says why; last checkpoint: "
                f"{last or 'none'}{', go on with --resume auto' if last else ''}") from None
    except BaseException:
        # refused before anything was written: no empty folder left. Only by the lock's holder: a run refused the
        # lock of a folder made at the same moment removed the holder's lock file and folder under it
        if created and lock is not None and accelerator.is_main_process:
            run_folder.remove_if_unused(run_dir)
        raise
    finally:
        if lock is not None:
            lock.release()


def _train_in(run_dir: Path, cfg: TrainConfig, accelerator, resume: str | None, force: bool, stage) -> Path:
    t, o = cfg.train, cfg.optimizer
    run_folder.check_writable(run_dir, previews=bool(t.preview_every))  # every rank, so all stop alike; first
    resume_from = run_folder.find_resume(run_dir, resume, force)
    torch.manual_seed(derive_seed(t.seed, "init"))  # weight init depends on the seed only
    if stage is None:
        from vidiff.training.stages import build_stage

        stage = build_stage(cfg)
    if not isinstance(stage, Stage):
        raise TypeError(f"{type(stage).__name__} does not implement the training Stage protocol (training/stage.py)")
    stage.to(accelerator.device)
    model = raw = stage.model
    set_activation_recompute(model, t.activation_recompute)
    chash = config_hash(cfg)
    manifest = tensors = jsons = None
    if resume_from is not None:
        manifest, tensors, jsons = ckpt.load_checkpoint(resume_from)
        run_folder.check_same_config(run_dir, resume_from, manifest["config_hash"], cfg, force)
        ckpt.load_model_weights(raw, tensors["model"], resume_from)  # full weights, before any sharding
    sharded = fsdp_requested()
    if sharded and accelerator.scaler is not None:
        raise InputError("train.mixed_precision=fp16 under FSDP: this path sets up no sharded loss scaler; use bf16")
    model.to(accelerator.device)  # before the EMA copies the weights: its shadow must live where they do
    if sharded:  # the loop's own FSDP2 path (training/sharding.py): the parameters become DTensor shards
        shard_model(model, accelerator.device, accelerator.num_processes)
    trainable = [p for p in model.parameters() if p.requires_grad]  # train.freeze leaves some out
    adamw_flags = adamw_implementation(trainable, sharded=sharded, loss_scaling=accelerator.scaler is not None)
    optimizer = torch.optim.AdamW(trainable, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay, eps=o.eps,
                                  **adamw_flags)
    ema = EMA(model, t.ema_decay)  # sharded like the parameters under FSDP
    model, optimizer = prepare_for_accelerate(accelerator, model, optimizer, sharded)
    # the plain module: the EMA, checkpoints and export name its tensors (a launcher's dynamo_backend compiles the
    # model, and the compiled wrapper's "_orig_mod." names stopped the EMA update at the first step)
    raw = raw if sharded else plain_module(model)

    state = {"step": 0, "opt_steps": 0, "ema_updates": 0, "nonfinite_in_a_row": 0}
    logged = None
    if resume_from is not None:
        try:  # the hashes only say the files are the ones written: a record edited with them is refused in a line
            opt_state = ckpt.unflatten_optimizer_state(tensors["optimizer"], jsons["optimizer"])
            optimizer.load_state_dict(shard_optimizer_state(opt_state, optimizer))
            keep_implementation(optimizer, adamw_flags)
            if not isinstance(jsons["state"], dict):
                raise TypeError("state.json is not a mapping")
            state.update(jsons["state"])
            for key in ("step", "opt_steps", "ema_updates", "nonfinite_in_a_row"):
                if not isinstance(state[key], int) or isinstance(state[key], bool) or state[key] < 0:
                    raise ValueError(f"state.json {key}: expected an integer >= 0, got {str(state[key])[:40]}")
            logged = state.pop("log_window", None)  # None: a checkpoint from before the window was saved
            size = state.pop("latent_size", None)  # a run resumed at its end sees no batch to read it from
            if size is not None and hasattr(stage, "latent_size"):
                stage.latent_size = tuple(int(v) for v in size)
            ema.load_state_dict(tensors["ema"], state["ema_updates"])
            if accelerator.scaler is not None and state.get("grad_scaler"):  # fp16: the loss scale goes on as it was
                accelerator.scaler.load_state_dict(state["grad_scaler"])
        except (TypeError, ValueError, KeyError, IndexError, RuntimeError) as e:
            raise InputError(f"{resume_from}: its optimizer or training state cannot be restored "
                             f"({type(e).__name__}: {str(e)[:200]})") from None
        # the samples a step (train.batch_size x grad_accum x processes) decide the run as the config does: a
        # 2-process run resumed by one process went on at half the batch, its config hash unchanged
        per_step, offset = t.batch_size * t.grad_accum * accelerator.num_processes, state.get("sample_offset")
        if not force and state["step"] and isinstance(offset, int) and offset != state["step"] * per_step:
            before, world = offset // state["step"], accelerator.num_processes
            # the same samples a step with this many processes: the run goes on as it was (docs/training.md)
            same = (f"; or, for the same samples a step, train.batch_size x train.grad_accum = {before // world} "
                    f"with --force" if before % world == 0 else "")
            raise InputError(f"{resume_from}: its run trained on {before} samples a step "
                             f"(train.batch_size x train.grad_accum x processes), this launch on {per_step} "
                             f"({t.batch_size} x {t.grad_accum} x {world}): launch it with as many "
                             f"processes as before{same}; or pass --force to go on at {per_step}")
        check_same_data(resume_from, state.pop("data", None), stage.dataset, force)
        log.info("resumed from %s at step %d", resume_from, state["step"])
        del tensors
    elif force and accelerator.is_main_process and (run_dir / "checkpoints").exists():
        for _, folder in ckpt.list_checkpoints(run_dir / "checkpoints"):  # one by one, under temp names
            ckpt.remove_checkpoint(folder)
        shutil.rmtree(run_dir / "checkpoints")

    main = accelerator.is_main_process
    if main and t.preview_every and (stage.preview is None or sharded):  # else train.preview_every did nothing, unsaid
        why = ("under FSDP no rank holds a whole model to draw with" if stage.preview is not None else
               "only the keyframe stage with a vae draws them" if cfg.stage == "keyframes" else
               f"the {cfg.stage} stage draws none; only the keyframe stage with a vae does")
        warnings.warn(f"train.preview_every {t.preview_every}: this run writes no previews ({why})", stacklevel=1)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if state["step"] < t.max_steps:  # an old export/ is not what this run's config.yaml describes
            run_folder.set_export_aside(run_dir)
            run_folder.remove_hidden_exports(run_dir)
        save_yaml(cfg, run_dir / "config.yaml")
    accelerator.wait_for_everyone()
    metrics = MetricsLogger(run_dir, state["step"] if resume_from else None) if main else None
    world, rank = accelerator.num_processes, accelerator.process_index
    global_batch = t.batch_size * t.grad_accum * world
    loader = make_loader(stage.dataset, cfg, state["step"], rank, world)
    batches = iter(loader)
    bar = tqdm(total=t.max_steps, initial=state["step"], disable=not main, desc=f"train {cfg.stage}")
    window: dict = {"losses": [], "skipped": 0, "t0": time.perf_counter(), "steps": 0, "samples": 0,
                    "grad_norm": float("nan")}
    if logged:  # the steps since the last metrics line before the checkpoint: a resumed row averages the same steps
        window.update(losses=list(logged["losses"]), skipped=logged["skipped"], grad_norm=logged["grad_norm"])

    def save(step_done: int) -> None:
        accelerator.wait_for_everyone()
        if sharded or main:  # under FSDP every rank takes part in gathering; rank 0 writes full safetensors
            opt_tensors, opt_meta = ckpt.flatten_optimizer_state(optimizer.state_dict())
            files = {"model": full_state(raw.state_dict()), "ema": full_state(ema.state_dict()),
                     "optimizer": full_state(opt_tensors)}
        if main:
            pos = {**state, "step": step_done, "ema_updates": ema.num_updates,
                   "epoch": step_done * global_batch // len(stage.dataset),
                   "sample_offset": step_done * global_batch,
                   "data": data_record(stage.dataset),  # a resume on changed data is refused, naming it
                   "grad_scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
                   # checkpoint_every need not be a multiple of log_every: the next metrics line also covers
                   # the steps logged since the last one (Python floats round-trip through JSON exactly)
                   "log_window": {k: window[k] for k in ("losses", "skipped", "grad_norm")},
                   # the training latents' (h, w) that the export records (trained_on.yaml), for a resume at the end
                   "latent_size": getattr(stage, "latent_size", None)}
            ckpt.save_checkpoint(run_dir / "checkpoints", step_done, files, {"optimizer": opt_meta, "state": pos},
                                 chash, t.keep_checkpoints)
        accelerator.wait_for_everyone()

    for step in range(state["step"], t.max_steps):
        set_lr(optimizer, lr_at(state["opt_steps"], o, t.max_steps))
        step_losses = []
        for micro in range(t.grad_accum):
            batch = next(batches)
            draws = SampleDraws(t.seed, batch["epoch"], step, batch["sample_id"])
            # Dropout draws from the global RNG: keyed to (step, micro-step, rank) so a resumed run replays it
            torch.manual_seed(derive_seed(t.seed, step, micro, accelerator.process_index, "dropout"))
            batch = {k: (v.to(accelerator.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    per_sample = stage.loss(model, batch, draws, step)  # (B,)
                accelerator.backward(per_sample.float().mean())
                step_losses.append(accelerator.gather(per_sample.detach().float()))
                if accelerator.sync_gradients:
                    max_norm = o.grad_clip if o.grad_clip > 0 else math.inf
                    grad_norm = float(full_tensor(accelerator.clip_grad_norm_(model.parameters(), max_norm)))
        trained = torch.cat(step_losses)  # every rank's samples (fewer than the batch under train.max_batch_frames)
        loss = float(trained.mean())
        finite = math.isfinite(loss) and math.isfinite(grad_norm)
        if finite or accelerator.scaler is not None:
            if adamw_flags["fused"]:
                align_gradients(trainable)
            optimizer.step()  # with fp16 the scaler itself skips an overflowing step and lowers its scale
        optimizer.zero_grad(set_to_none=True)
        if finite:
            ema.update(raw)
            state["opt_steps"] += 1
            state["nonfinite_in_a_row"] = 0
            window["losses"].append(loss)
            window["grad_norm"] = grad_norm
        else:
            window["skipped"] += 1
            # an fp16 overflow with a finite loss is the scaler's business; anything else counts
            if accelerator.scaler is None or not math.isfinite(loss):
                state["nonfinite_in_a_row"] += 1
        window["steps"] += 1
        window["samples"] += trained.numel()
        step_done = step + 1
        bar.update(1)
        if state["nonfinite_in_a_row"] >= t.max_nonfinite_in_a_row:
            last = ckpt.latest_checkpoint(run_dir / "checkpoints")
            bar.close()
            if metrics:
                metrics.close()
            raise TrainingDiverged(f"{state['nonfinite_in_a_row']} non-finite steps in a row (loss {loss}, grad "
                                   f"norm {grad_norm}) at step {step}; last good checkpoint: {last or 'none'}")
        if main and (step_done % t.log_every == 0 or step_done == t.max_steps):
            dt = time.perf_counter() - window["t0"]
            losses = window["losses"]
            row = {"step": step_done, "loss": sum(losses) / len(losses) if losses else float("nan"),
                   "lr": optimizer.param_groups[0]["lr"], "grad_norm": window["grad_norm"],
                   "samples_per_s": window["samples"] / max(dt, 1e-9), "skipped": window["skipped"],
                   "opt_steps": state["opt_steps"], "epoch": step_done * global_batch // len(stage.dataset),
                   "processes": world}
            metrics.log(row)
            bar.set_postfix(loss=f"{row['loss']:.4g}", lr=f"{row['lr']:.2e}")
            window = {"losses": [], "skipped": 0, "t0": time.perf_counter(), "steps": 0, "samples": 0,
                      "grad_norm": grad_norm}
        # the preview before the checkpoint of the same step: a stop while it is drawn then resumes before that step
        # and draws it again, where a checkpoint written first left that step's preview missing for good
        if main and t.preview_every and stage.preview is not None and step_done % t.preview_every == 0 \
                and not sharded:  # under FSDP no rank holds a whole model to copy: no previews (docs/training.md)
            ema_model = copy.deepcopy(raw)
            ema.copy_to(ema_model)
            stage.preview(ema_model.eval(), run_dir / "previews", step_done)
            del ema_model
        if step_done % t.checkpoint_every == 0 or step_done == t.max_steps:
            save(step_done)
    bar.close()
    if t.max_steps <= state["step"]:
        log.info("nothing to do: the run is already at step %d", state["step"])
    ema_full = full_state(ema.state_dict()) if sharded or main else None  # under FSDP a collective
    if main:
        metrics.close()
        run_folder.write_export(run_dir, stage, ema_full)
    accelerator.wait_for_everyone()
    # the process group torn down here, every rank past the last barrier: left to interpreter exit, Gloo's threads
    # aborted a finished rank ("terminate called without an active exception", 1 of a CI run's 2-process runs)
    accelerator.end_training()
    return run_dir
