"""The steps of the real-interp recipe (issue 18), run in order by tools/train_real_interp.sh:

    python tools/real_interp.py prep   --samples third_party_samples --out WORK/corpus
    python tools/real_interp.py vae    --config configs/real-vae.yaml --corpus WORK/corpus --run WORK/vae
    python tools/real_interp.py vae    --config configs/real-vae-temporal.yaml --corpus WORK/corpus --run WORK/vae_temporal
                                       --set init_weights=WORK/vae/export
    python tools/real_interp.py cache  --corpus WORK/corpus --vae WORK/vae/export --out WORK/windows
    python tools/real_interp.py interp --config configs/real-interpolation.yaml --cache WORK/windows
                                       --vae WORK/vae/export --run WORK/interpolation
    python tools/real_interp.py interp --config configs/real-interpolation.yaml --cache WORK/windows
                                       --vae WORK/vae/export --run WORK/interpolation_mean
                                       --set init_weights=WORK/interpolation/export (+ the mean phase's --set)
    python tools/real_interp.py export --vae WORK/vae_temporal --interp WORK/interpolation_mean -o OUT

prep decodes the training corpus only (vidiff/data/real_footage.py: TRAIN_CLIPS + scikit-image's bundled stills;
the held-out clips are refused). vae and interp run `vidiff train`'s loop (vidiff.training.loop.train) with the
config's data section pointed at the corpus (data.kind real_corpus) or the window cache (window_cache), as
`vidiff train` would; both resume from their newest checkpoint.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def prep(args) -> None:
    from vidiff.data.real_footage import prepare_corpus

    manifest = prepare_corpus(args.samples, args.out, short_side=args.short_side)
    for clip in manifest["clips"]:
        print(f"{clip['name']}: {clip['frames']} frames {clip['source_size']} -> {clip['size']} at {clip['fps']:g} fps")
    print(f"{len(manifest['stills'])} still images")


def _config(path, overrides):
    from vidiff.training.config import load_train_config

    return load_train_config(path, overrides)


def train_vae(args) -> None:
    from vidiff.training.loop import train

    # `vidiff train --config CONFIG --set data.root=CORPUS --set output_dir=RUN --resume auto` does the same
    train(_config(args.config, [f"output_dir={args.run}", f"data.root={args.corpus}", *args.set]), resume="auto",
          force=args.force)


def cache(args) -> None:
    import torch

    from vidiff.data.real_windows import build_window_cache
    from vidiff.vae import AutoencoderKL

    vae = AutoencoderKL.load(args.vae).eval()
    with torch.inference_mode():
        build_window_cache(args.corpus, vae, args.out, size=args.size, window=args.window, hop=args.hop,
                           variants=args.variants, seed=args.seed, pixels=args.pixels)


def train_interp(args) -> None:
    from vidiff.training.loop import train

    # `vidiff train --config CONFIG --set data.root=CACHE --set vae=VAE --set output_dir=RUN --resume auto`
    train(_config(args.config, [f"output_dir={args.run}", f"data.root={args.cache}", f"vae={args.vae}", *args.set]),
          resume="auto", force=args.force)


def export(args) -> None:
    out = export_interpolation_pipeline(Path(args.vae), Path(args.interp), Path(args.output), args.steps, args.fps,
                                        carry_residual=not args.no_carry_residual, sampler=args.sampler,
                                        half=args.half, sigma_max=args.sigma_max)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote pipeline {out} ({size / 2**20:.1f} MiB)")


def export_interpolation_pipeline(vae_run: Path, interp_run: Path, out: Path, steps: int, fps: float,
                                  carry_residual: bool = True, sampler: str = "dpmpp_2m", half: bool = False,
                                  sigma_max: float = 80.0) -> Path:
    """An interpolation-only pipeline folder (pipeline.yaml with parts.keyframes null, vae/, interpolation/) from
    the two run folders, with every setting training fixed; written under a temporary name, then renamed.
    carry_residual: fill_between adds the known ends' VAE error to the frames between (vidiff/pipeline/residual.py).
    half: weights stored in float16 (loaded back into float32), except the VAE's encoder side, whose exact bytes
    name the latent space the interpolation part learned (trained_on.yaml). sigma_max: the top of the sampling
    grid (one Euler step from there gives the part's estimate of the mean in-between frame)."""
    import dataclasses

    import yaml

    from vidiff.pipeline.export import SamplingDefaults, pipeline_config, write_pipeline_folder
    from vidiff.safe_yaml import load_file
    from vidiff.training.config import load_train_config

    # the interpolation-only pipeline `vidiff export` writes, at the 128 px the held-out clips are measured at
    it = load_train_config(interp_run / "config.yaml")
    config = pipeline_config({"interpolation": (interp_run, it)}, SamplingDefaults(
        interpolation_steps=steps, interpolation_sampler=sampler, sigma_max=sigma_max, fps=fps))
    config = dataclasses.replace(config, height=128, width=128,
                                 interpolation=dataclasses.replace(config.interpolation, carry_residual=carry_residual))

    def decode_eight_frames_at_a_time(tmp: Path) -> None:
        # 8 frames at a time: the temporal decoder trained on 8-frame windows, and memory stays bounded
        vae_cfg = load_file(tmp / "vae" / "config.yaml")
        vae_cfg["frame_chunk"] = 8
        (tmp / "vae" / "config.yaml").write_text(yaml.safe_dump(vae_cfg, sort_keys=False))
        if half:
            store_in_half(tmp / "vae" / "model.safetensors", keep=("encoder.", "quant_conv."))
            store_in_half(tmp / "interpolation" / "model.safetensors")

    parts = {"vae": vae_run / "export", "interpolation": interp_run / "export"}
    return write_pipeline_folder(out, parts, config, edit=decode_eight_frames_at_a_time)


def store_in_half(path: Path, keep: tuple[str, ...] = ()) -> None:
    """Rewrites a safetensors file with its float32 tensors in float16, except names starting with `keep`."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for name, t in tensors.items():
        if t.dtype == torch.float32 and not name.startswith(keep):
            if t.abs().max() > torch.finfo(torch.float16).max:
                raise ValueError(f"{path}: {name} does not fit float16")
            tensors[name] = t.half()
    save_file(tensors, str(path), metadata=metadata)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prep")
    p.add_argument("--samples", default="third_party_samples")
    p.add_argument("--out", required=True)
    p.add_argument("--short-side", type=int, default=576)
    p.set_defaults(func=prep)
    for name, fn in (("vae", train_vae), ("interp", train_interp)):
        p = sub.add_parser(name)
        p.add_argument("--config", required=True)
        p.add_argument("--run", required=True)
        p.add_argument("--set", action="append", default=[])
        p.add_argument("--force", action="store_true",
                       help="resume even though the config changed (e.g. train.max_steps raised)")
        if name == "vae":
            p.add_argument("--corpus", required=True)
        else:
            p.add_argument("--cache", required=True)
            p.add_argument("--vae", required=True)
        p.set_defaults(func=fn)
    p = sub.add_parser("cache")
    p.add_argument("--corpus", required=True)
    p.add_argument("--vae", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--window", type=int, default=9)
    p.add_argument("--hop", type=int, default=1)
    p.add_argument("--variants", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pixels", action="store_true", help="also store the window frames (64 px crops), which a "
                   "model trained with the flow anchor needs")
    p.set_defaults(func=cache)
    p = sub.add_parser("export")
    p.add_argument("--vae", required=True, help="the VAE run folder")
    p.add_argument("--interp", required=True, help="the interpolation run folder")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--sampler", default="dpmpp_2m")
    p.add_argument("--half", action="store_true", help="store the weights in float16 (the VAE encoder side stays "
                                                       "float32: it names the latent space)")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--sigma-max", type=float, default=80.0, help="top of the sampling grid")
    p.add_argument("--no-carry-residual", action="store_true", help="decode the in-between frames as they are")
    p.set_defaults(func=export)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
