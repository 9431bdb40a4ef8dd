"""VideoPipeline: text / image / video -> uint8 frames, hierarchically.

1. the keyframe part samples K keyframe latents (known keyframes enter as cond_latents / cond_mask), with
   frame_stride = the keyframe stride;
2. the interpolation part fills each gap between neighbouring keyframes with both ends known, frame_stride = the
   spacing of the window's frames (1 for a direct pass, as trained; docs/training.md), recursively for gaps larger
   than it was trained on (vidiff/pipeline/layout.py);
3. the VAE decodes the latents frame-sliced; known frames are returned exactly as given.

A pipeline folder is pipeline.yaml + vae/ + keyframes/ + interpolation/ (vidiff/pipeline/config.py).
"""
from __future__ import annotations

from pathlib import Path

import torch

from vidiff.errors import InputError
from vidiff.pipeline.config import (
    PipelineConfig, check_safetensors_header, part_paths, read_pipeline_folder, text_encoder_ref, write_pipeline_yaml,
)
from vidiff.pipeline.layout import Layout, extension_windows, interpolation_levels, resolve_layout
from vidiff.pipeline.request import Request, StepBar, check_frames, check_image, prompts_and_seeds
from vidiff.pipeline.stage import DiffusionStage, generators
from vidiff.pipeline.seam import carry_seam_residual, check_seam_fade


class VideoPipeline:
    def __init__(self, config: PipelineConfig, vae, keyframe_net, interpolation_net, text_encoder,
                 folder: str | Path | None = None, batch_invariant: bool = True):
        """batch_invariant: run the networks one batch row at a time, so that a sample is bit-identical whatever
        the batch around it; False batches the rows (faster on a GPU, same results up to rounding)."""
        self.config = config
        self.vae = vae
        self.text_encoder = text_encoder
        self.keyframes = DiffusionStage(keyframe_net, config.keyframes, batch_invariant, "pipeline.yaml: keyframes")
        self.interpolation = DiffusionStage(interpolation_net, config.interpolation, batch_invariant,
                                            "pipeline.yaml: interpolation")
        self.folder = Path(folder) if folder is not None else None
        check_parts(config, vae.config, keyframe_net.config, interpolation_net.config, text_encoder.dim)

    # ---- folders --------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, folder: str | Path, *, device=None, dtype: torch.dtype | None = None,
                        batch_invariant: bool = True) -> VideoPipeline:
        """Checks pipeline.yaml and every part config (cheap), then loads the text encoder and the weights."""
        from vidiff.config import from_dict
        from vidiff.diffusion import NoiseScheduleConfig
        from vidiff.models import UNet3D, UNet3DConfig
        from vidiff.parts import load_part_config
        from vidiff.text import TextEncoder
        from vidiff.vae import AutoencoderKL, VAEConfig

        folder = Path(folder)
        config = read_pipeline_folder(folder)
        paths = part_paths(folder, config)
        vae_cfg = load_part_config(paths["vae"], VAEConfig)
        net_cfgs = {name: load_part_config(paths[name], UNet3DConfig) for name in ("keyframes", "interpolation")}
        check_parts(config, vae_cfg, net_cfgs["keyframes"], net_cfgs["interpolation"], None)
        for name in ("keyframes", "interpolation"):  # the discrete schedules, if any, before any weights
            from_dict(NoiseScheduleConfig, getattr(config, name).schedule, f"pipeline.yaml: {name}.schedule")
        for path in paths.values():
            check_safetensors_header(path / "model.safetensors")
        text_encoder = TextEncoder.load(text_encoder_ref(folder, config))
        vae = _load_weights(lambda: AutoencoderKL.load(paths["vae"]), paths["vae"])
        nets = {name: _load_net(UNet3D(cfg), paths[name]) for name, cfg in net_cfgs.items()}
        pipe = cls(config, vae, nets["keyframes"], nets["interpolation"], text_encoder, folder, batch_invariant)
        return pipe.to(device, dtype)

    def save_pretrained(self, folder: str | Path) -> Path:
        from vidiff.parts import save_part

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = part_paths(folder, self.config)
        self.vae.save(paths["vae"])
        save_part(paths["keyframes"], self.keyframes.net.config, self.keyframes.net.state_dict())
        save_part(paths["interpolation"], self.interpolation.net.config, self.interpolation.net.state_dict())
        write_pipeline_yaml(self.config, folder)
        return folder

    def to(self, device=None, dtype: torch.dtype | None = None) -> VideoPipeline:
        for module in (self.vae, self.keyframes.net, self.interpolation.net):
            module.to(device=device, dtype=dtype).eval()
        return self

    # ---- public generation API ------------------------------------------------------------------------------
    def text_to_video(self, prompt, *, num_frames=None, seed=0, steps=None, sampler=None, guidance_scale=None,
                      image_guidance_scale=None, num_keyframes=None, keyframe_stride=None, height=None, width=None,
                      fps=None, progress=True, keyframes: dict | None = None):
        """prompt (str or list) -> (frames uint8 (F,H,W,3), or (B,F,H,W,3) for lists of prompts / seeds; fps).

        `keyframes` maps frame indices (multiples of the keyframe stride) to uint8 (H,W,3) images that the
        keyframe part takes as known; they come back unchanged at those indices."""
        req = self.request(prompt, seed, num_frames, num_keyframes, keyframe_stride, steps, sampler,
                           guidance_scale, image_guidance_scale, height, width, fps)
        known = self._known_keyframes(keyframes or {}, req)
        latents = self._generate(req, known, progress)  # (B,C,F,h,w)
        frames = self._decode(latents, progress)  # (B,F,H,W,3)
        for index, image in known.items():
            frames[:, index] = image["pixels"]
        return req.unbatch(frames), req.fps

    def image_to_video(self, image, prompt, **kwargs):
        """Animates a uint8 (H,W,3) image: it is the first keyframe (known) and frame 0 of the result."""
        keyframes = dict(kwargs.pop("keyframes", None) or {})
        keyframes[0] = check_image(image, "image")
        size = (kwargs.get("height") or self.config.height, kwargs.get("width") or self.config.width)
        if tuple(keyframes[0].shape[:2]) != size:
            raise InputError(f"image: {keyframes[0].shape[1]}x{keyframes[0].shape[0]} pixels, the clip is "
                             f"{size[1]}x{size[0]} (resize it, or pass height= and width=)")
        return self.text_to_video(prompt, keyframes=keyframes, **kwargs)

    def extend_video(self, frames, prompt, *, num_frames: int, seed=0, steps=None, sampler=None,
                     guidance_scale=None, image_guidance_scale=None, num_keyframes=None, keyframe_stride=None,
                     fps=None, seam_fade=4, progress=True):
        """Continues uint8 (F,H,W,3) `frames` by `num_frames` new frames; returns input + new frames and fps.

        The clip's last frames (at the keyframe stride) are the first known keyframes of a window of K; longer
        continuations repeat such windows, each overlapping the last by its known keyframes. The VAE error of the
        last input frame is faded out over the first `seam_fade` new frames (pipeline/seam.py; 0 turns it off)."""
        frames = check_frames(frames, "frames")
        seam_fade = check_seam_fade(seam_fade)
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
            raise InputError(f"num_frames: number of new frames must be an integer >= 1, got {num_frames!r}")
        req = self.request(prompt, seed, None, num_keyframes, keyframe_stride, steps, sampler, guidance_scale,
                           image_guidance_scale, frames.shape[1], frames.shape[2], fps)
        windows = extension_windows(frames.shape[0], num_frames, req.layout.num_keyframes, req.layout.keyframe_stride)
        n, total = frames.shape[0], frames.shape[0] + num_frames
        # The last input frame is decoded too: its reconstruction error is what the seam fade carries over. A
        # temporal decoder also sees the input frames its first new frames depend on, so it decodes across the
        # seam as across any other frame.
        context = min(n, 1 + self.vae.decoder.temporal_radius)
        latents = self._extend(frames, windows, req, progress, context)  # (B,C,T,h,w)
        decoded = self._decode(latents[:, :, n - context:total], progress)[:, context - 1:]  # (B,1+new,H,W,3)
        new = carry_seam_residual(frames[-1], decoded, seam_fade)  # (B,new,H,W,3)
        out = torch.cat([frames[None].expand(new.shape[0], -1, -1, -1, -1), new], dim=1)  # (B,total,H,W,3)
        return req.unbatch(out), req.fps

    def fill_between(self, keyframes, stride: int, seed: int = 0, *, prompt: str = "", steps=None, sampler=None,
                     progress=False):
        """Interpolation only: uint8 (K,H,W,3) keyframes -> ((K-1)*stride+1,H,W,3), keyframes kept at 0, stride, ..."""
        keyframes = check_frames(keyframes, "keyframes")
        if keyframes.shape[0] < 2:
            raise InputError(f"keyframes: need at least 2 frames, got {keyframes.shape[0]}")
        req = self.request(prompt, seed, None, keyframes.shape[0], stride, steps, sampler, None, None,
                           keyframes.shape[1], keyframes.shape[2], None)
        kf = self.vae.encode_frames(keyframes.to(self._device)).cpu().float()  # (1,C,K,h,w)
        with self._progress(req, [list(range(kf.shape[2] - 1))], progress, keyframe_stage=False) as bar:
            latents = self._fill(self._timeline(kf, req.layout), req, list(range(kf.shape[2] - 1)), "fill", bar)
        frames = self._decode(latents, progress)[0]  # (F,H,W,3)
        frames[:: req.layout.keyframe_stride] = keyframes
        return frames

    # ---- requests --------------------------------------------------------------------------------------------
    def request(self, prompt, seed, num_frames, num_keyframes, keyframe_stride, steps, sampler, guidance_scale,
                image_guidance_scale, height, width, fps) -> Request:
        """Checks and completes every setting before any sampling (the CLI calls this too)."""
        cfg = self.config
        prompts, seeds, batched = prompts_and_seeds(prompt, seed)
        layout = resolve_layout(num_frames, num_keyframes, keyframe_stride,
                                default=Layout(cfg.num_frames, cfg.num_keyframes, cfg.keyframe_stride),
                                max_gap=cfg.interpolation.max_gap)
        return Request.build(prompts, seeds, batched, layout, cfg, self.vae.downsample_factor, steps=steps,
                             sampler=sampler, guidance_scale=guidance_scale, image_guidance_scale=image_guidance_scale,
                             height=height, width=width, fps=fps)

    def _encode_text(self, req: Request):
        # One prompt per call: a batched transformer pass may round differently for another batch size.
        rows = [self.text_encoder.encode([p]) for p in req.prompts]
        context = torch.cat([c for c, _ in rows])  # (B,L,D)
        mask = torch.cat([m for _, m in rows])  # (B,L)
        null_context, null_mask = self.text_encoder.encode([""])  # (1,L0,D): the dropped-text input
        return dict(context=context, context_mask=mask, null_context=null_context, null_context_mask=null_mask)

    def _known_keyframes(self, keyframes: dict, req: Request) -> dict[int, dict]:
        """{frame index: {"pixels": uint8 (H,W,3), "latents": (1,C,h,w)}} after checking indices and sizes."""
        stride, total = req.layout.keyframe_stride, req.layout.num_frames
        known = {}
        for index, image in sorted(keyframes.items()):
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < total or index % stride:
                raise InputError(f"keyframes: index {index!r} is not a keyframe position; with {total} frames at "
                                 f"stride {stride} they are {req.layout.keyframe_indices}")
            pixels = check_image(image, f"keyframes[{index}]")
            if tuple(pixels.shape[:2]) != (req.height, req.width):
                raise InputError(f"keyframes[{index}]: image is {pixels.shape[1]}x{pixels.shape[0]}, the clip is "
                                 f"{req.width}x{req.height}")
            known[index] = {"pixels": pixels}
        if known and not self.keyframes.takes_known_frames:
            raise InputError("this pipeline's keyframe model takes no known frames (it cannot animate or extend)")
        for item in known.values():
            item["latents"] = self.vae.encode_frames(item["pixels"][None].to(self._device))[:, :, 0]  # (1,C,h,w)
        return known

    # ---- stages ----------------------------------------------------------------------------------------------
    @property
    def _device(self) -> torch.device:
        return next(self.keyframes.net.parameters()).device

    def _latent_shape(self, req: Request, num_frames: int) -> tuple[int, int, int, int]:
        f = self.vae.downsample_factor
        return (self.vae.config.latent_channels, num_frames, req.height // f, req.width // f)

    def _generate(self, req: Request, known: dict[int, dict], progress: bool) -> torch.Tensor:
        k, s = req.layout.num_keyframes, req.layout.keyframe_stride
        batch = len(req.seeds)
        shape = self._latent_shape(req, k)
        known_latents = torch.zeros((batch, *shape))
        known_mask = torch.zeros(batch, k)
        for index, item in known.items():
            known_latents[:, :, index // s] = item["latents"].cpu().float()
            known_mask[:, index // s] = 1.0
        with self._progress(req, [list(range(k - 1))], progress) as bar:
            kf = self._keyframe_stage(req, shape, "keyframes", known_latents, known_mask, bar)  # (B,C,K,h,w)
            return self._fill(self._timeline(kf, req.layout), req, list(range(k - 1)), "interp", bar)

    def _extend(self, frames: torch.Tensor, windows, req: Request, progress: bool, context: int) -> torch.Tensor:
        """The timeline of latents: the input's known keyframes and its last `context` frames (what the decoder
        needs before the new ones) encoded, each input frame once, then the windows sampled and filled."""
        k, s = req.layout.num_keyframes, req.layout.keyframe_stride
        batch, n_in = len(req.seeds), frames.shape[0]
        end = windows[-1].start + (k - 1) * s + 1
        timeline = torch.zeros((batch, *self._latent_shape(req, end)))  # (B,C,T,h,w)
        first = windows[0]
        idx = [first.start + i * s for i in range(first.num_known)]  # input frames that seed the first window
        timeline[:, :, idx] = self.vae.encode_frames(frames[idx].to(self._device)).cpu().float()
        extra = [t for t in range(n_in - context, n_in) if t not in idx]  # the last known keyframe is frame n_in - 1
        if extra:
            timeline[:, :, extra] = self.vae.encode_frames(frames[extra].to(self._device)).cpu().float()
        gaps = [list(range(w.num_known - 1, k - 1)) for w in windows]
        with self._progress(req, gaps, progress) as bar:
            for w_i, w in enumerate(windows):
                pos = [w.start + i * s for i in range(k)]
                known_mask = torch.zeros(batch, k)
                known_mask[:, : w.num_known] = 1.0
                kf = self._keyframe_stage(req, self._latent_shape(req, k), ("extend", w_i), timeline[:, :, pos],
                                          known_mask, bar)  # (B,C,K,h,w)
                window = timeline[:, :, w.start : pos[-1] + 1].clone()
                window[:, :, ::s] = kf.cpu().float()
                timeline[:, :, w.start : pos[-1] + 1] = self._fill(window, req, gaps[w_i], ("extend", w_i), bar)
        return timeline

    def _keyframe_stage(self, req, shape, key, known_latents, known_mask, bar) -> torch.Tensor:
        stage = self.keyframes
        settings = stage.settings(req.steps, req.sampler, req.guidance_scale, req.image_guidance_scale)
        return stage.run(shape, generators(req.seeds, key), settings, **self._encode_text(req),
                         frame_stride=req.layout.keyframe_stride, known=known_latents, known_mask=known_mask,
                         callback=bar.step).cpu().float()

    @staticmethod
    def _timeline(keyframe_latents: torch.Tensor, layout: Layout) -> torch.Tensor:
        """(B,C,K,h,w) keyframes -> (B,C,F,h,w) with keyframes at 0, S, 2S, ... and zeros between."""
        b, c, k, h, w = keyframe_latents.shape
        out = keyframe_latents.new_zeros(b, c, layout.num_frames, h, w)
        out[:, :, :: layout.keyframe_stride] = keyframe_latents
        return out

    def _fill(self, timeline: torch.Tensor, req: Request, gaps: list[int], key, bar) -> torch.Tensor:
        """Returns a copy of timeline (B,C,T,h,w) (keyframes at multiples of S) with the listed keyframe gaps filled,
        coarse level first; all windows of one level go in one call, each row with its own generator."""
        stage, s = self.interpolation, req.layout.keyframe_stride
        levels = interpolation_levels(s, self.config.interpolation.max_gap) or []
        settings = stage.settings(req.steps, req.sampler)
        text = self._encode_text(req)
        timeline = timeline.clone()
        batch = timeline.shape[0]
        for level, (gap, segments) in enumerate(levels):
            step = gap // segments
            starts = [g * s + o for g in gaps for o in range(0, s, gap)]  # every current gap of this size
            rows = [(b, t) for b in range(batch) for t in starts]
            pos = torch.tensor([[t + i * step for i in range(segments + 1)] for _, t in rows])  # (N, segments+1)
            known = torch.stack([timeline[b, :, p] for (b, _), p in zip(rows, pos)])  # (N,C,segments+1,h,w)
            mask = torch.zeros(len(rows), segments + 1)
            mask[:, [0, -1]] = 1.0
            seeds = [req.seeds[b] for b, _ in rows]
            gens = [generators([sd], key, level, t)[0] for sd, (_, t) in zip(seeds, rows)]
            row_text = {name: value[[b for b, _ in rows]] if name.startswith("context") else value
                        for name, value in text.items()}
            # frame_stride: output frames between neighbouring window frames (1 for a direct pass, as trained)
            out = stage.run(tuple(known.shape[1:]), gens, settings, **row_text, frame_stride=step, known=known,
                            known_mask=mask, callback=bar.step).cpu().float()
            for (b, _), p, window in zip(rows, pos, out):
                timeline[b, :, p[1:-1]] = window[:, 1:-1]
        return timeline

    def _decode(self, latents: torch.Tensor, progress: bool) -> torch.Tensor:
        """(B,C,F,h,w) -> uint8 (B,F,H,W,3), one sample at a time, frame-sliced by the VAE's frame_chunk."""
        return torch.cat([self.vae.decode_to_frames(z[None].to(self._device), progress=progress) for z in latents])

    def _progress(self, req: Request, gap_lists: list[list[int]], progress: bool, keyframe_stage: bool = True):
        levels = len(interpolation_levels(req.layout.keyframe_stride, self.config.interpolation.max_gap) or [])
        kf_steps = self.keyframes.settings(req.steps).steps if keyframe_stage else 0
        it_steps = self.interpolation.settings(req.steps).steps
        total = sum(kf_steps + (it_steps * levels if gaps else 0) for gaps in gap_lists)
        return StepBar(total, enabled=progress)


# ---- cheap cross-part checks ---------------------------------------------------------------------------------
def check_parts(config: PipelineConfig, vae_cfg, keyframe_cfg, interpolation_cfg, text_dim: int | None) -> None:
    """The parts agree with each other and with pipeline.yaml; raises InputError naming the mismatch."""
    channels = vae_cfg.latent_channels
    factor = vae_cfg.downsample_factor
    for name, cfg in (("keyframes", keyframe_cfg), ("interpolation", interpolation_cfg)):
        if cfg.in_channels != channels or cfg.out_channels != channels:
            raise InputError(f"{name}/config.yaml: in/out_channels {cfg.in_channels}/{cfg.out_channels} do not match "
                             f"the VAE's latent_channels {channels}")
        if text_dim is not None and cfg.context_dim != text_dim:
            raise InputError(f"{name}/config.yaml: context_dim {cfg.context_dim} does not match the text encoder "
                             f"width {text_dim}")
    if not interpolation_cfg.conditioning:
        raise InputError("interpolation/config.yaml: conditioning must be true (both ends of a gap are known)")
    if config.height % factor or config.width % factor:
        raise InputError(f"pipeline.yaml: height/width {config.height}x{config.width} are not multiples of the VAE's "
                         f"downsampling factor {factor}")


def _load_weights(load, folder: Path):
    from safetensors import SafetensorError

    try:
        return load()
    except (OSError, RuntimeError, ValueError, KeyError, SafetensorError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{folder}/model.safetensors: cannot load weights ({str(e).splitlines()[0]})") from None


def _load_net(net: torch.nn.Module, folder: Path) -> torch.nn.Module:
    from vidiff.parts import load_part_weights

    state = _load_weights(lambda: load_part_weights(folder), folder)
    _load_weights(lambda: net.load_state_dict(state, strict=True), folder)
    return net.eval()
