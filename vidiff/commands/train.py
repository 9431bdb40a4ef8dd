"""`vidiff train --config FILE [--set key=value ...] [--resume auto|PATH] [--force] [--dry-run]`."""
from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

from vidiff.commands import path_argument, whole_number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=path_argument, required=True,
                        help="training recipe (YAML), e.g. configs/shapes-vae.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.max_steps=200 (repeatable)")
    parser.add_argument("--resume", type=path_argument, default=None, metavar="auto|PATH",
                        help="continue from the newest complete checkpoint (auto) or from a checkpoint folder (default: a "
                             "fresh run, refused where the run folder has checkpoints)")
    parser.add_argument("--force", action="store_true",
                        help="start over in a run folder that has checkpoints, or resume under a changed config")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the model on the meta device; print parameter count and memory per GPU")
    parser.add_argument("--dry-run-batch", type=whole_number, default=None, help="batch size for --dry-run (default: config)")


def register(sub) -> None:
    parser = sub.add_parser("train", help="train a stage (vae, keyframes, interpolation, control) with Accelerate")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def missing_folders(cfg) -> list[tuple[str, str]]:
    """(key, path) of the folders the config reads that are not on this machine."""
    folders = [("data.root", cfg.data.root if cfg.data.kind not in ("shapes", "synthetic") else None),
               ("vae", cfg.vae), ("init_weights", cfg.init_weights), ("base", cfg.base),
               ("text_encoder", None if cfg.text_encoder == "default" else cfg.text_encoder)]
    return [(key, folder) for key, folder in folders if folder and not Path(folder).is_dir()]


def run(args: argparse.Namespace) -> int:
    import os

    from vidiff.training.config import load_train_config

    if args.dry_run_batch is not None:
        from vidiff.limits import MAX_BATCH, check_int

        check_int(args.dry_run_batch, "--dry-run-batch", 1, MAX_BATCH)  # 0 read as "the config's", -3 a traceback
    cfg = load_train_config(args.config, args.overrides, folders_here=not args.dry_run)
    if args.dry_run:
        from vidiff.training.dryrun import estimate, format_estimate

        print(format_estimate(estimate(cfg, batch_size=args.dry_run_batch)))
        for key, folder in missing_folders(cfg):  # the run would stop on them; a plan may be for another machine
            warnings.warn(f"{key}: {folder} does not exist here; the run would stop on it", stacklevel=1)
        return 0
    from vidiff.training.loop import train

    main_process = os.environ.get("RANK", "0") == "0"  # the others' progress lines would repeat the main one's
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING, handlers=[handler])
    run_dir = train(cfg, resume=args.resume, force=args.force)
    if main_process:  # one summary, also under `accelerate launch`
        print(f"run folder: {run_dir} ({run_summary(run_dir)})")
    return 0


class OneLineFormatter(logging.Formatter):
    """The run's log lines as the CLI's warnings are: one line each, control characters escaped (a metadata.jsonl
    file_name holding a terminal escape sequence reached stderr raw in the 'name no clip' warning)."""

    def formatMessage(self, record) -> str:
        from vidiff.output_safety import one_line

        return one_line(super().formatMessage(record))


def run_summary(run_dir) -> str:
    """What the run folder holds of what a run writes ("loss.png" was named where matplotlib, an extra, was not
    there to draw it)."""
    from importlib.util import find_spec
    from pathlib import Path

    names = [n for n in ("metrics.jsonl", "loss.png", "previews/", "checkpoints/", "export/")
             if (Path(run_dir) / n.rstrip("/")).exists()]
    if not (Path(run_dir) / "loss.png").exists() and find_spec("matplotlib") is None:
        names.append("no loss.png: matplotlib is not installed, pip install 'vidiff[plots]' draws it")
    return ", ".join(names)
