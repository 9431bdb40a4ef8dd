"""VideoPipeline: text / image / video -> uint8 frames, hierarchically (docs/architecture.md).

1. the keyframe part samples K keyframe latents (known keyframes enter as known latents + mask), with
   frame_stride = the keyframe stride;
2. the interpolation part fills each gap between neighbouring keyframes with both ends known (timeline.py);
3. the VAE decodes the latents; known frames are returned exactly as given.

This file only orchestrates: requests are checked in request.py (their layout in request_layout.py, against what
the parts were trained on, trained.py), sampling lives in timeline.py and stage.py, loading in load.py, saving in
save.py; the bodies of extend_video, edit_video and fill_between are extension.py, editing.py and filling.py, and
text_to_video's with keyframes off the grid anchored_keyframes.py. Every entry point runs under torch.no_grad():
no autograd graph is built and nothing returned or stored carries one. Not inference_mode: its
tensors refuse in-place writes outside it, and users letterbox or normalise the frames they get back.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping

import torch

from vidiff.errors import InputError
from vidiff.limits import check_flag, plain_number
from vidiff.models.vae import for_inference
from vidiff.pipeline.config import PipelineConfig
from vidiff.pipeline.control import request_control
from vidiff.pipeline.layout import API_NAMES, anchored_span
from vidiff.pipeline.load import check_parts, load_pipeline
from vidiff.pipeline.placement import check_placement, float32_default, warn_if_caller_autocast
from vidiff.pipeline.input_checks import check_image
from vidiff.pipeline.prompt_reading import encoder_prompts, template_still, warn_prompt_notes
from vidiff.pipeline.request import Request, StepBar, check_keyframe_images, prompts_and_seeds
from vidiff.pipeline.request_layout import request_layout
from vidiff.pipeline.stage import DiffusionStage
from vidiff.pipeline.timeline import (
    Timeline, encode_negative, encode_text, place_keyframes, total_steps,
)
from vidiff.pipeline.long_layout import split_long_layout
from vidiff.pipeline.trained_layouts import (
    check_layout, lay_keyframes_around, user_keyframe_pattern, warn_untrained_size,
)


# request()'s own keywords that the pipeline's code sets (an edit's exact length, fill_between's pixel multiple and
# the names its errors give the layout):
# no setting of the public methods (pixel_multiple=4 failed mid-sampling)
INTERNAL_SETTINGS = ("exact_frames", "pixel_multiple", "names")


class VideoPipeline:
    def __init__(self, config: PipelineConfig, vae, keyframe_net, interpolation_net, text_encoder,
                 folder: str | Path | None = None, batch_invariant: bool = True, trained: dict | None = None):
        """batch_invariant: run the networks one batch row at a time, so that a sample is bit-identical whatever
        the batch around it; False batches the rows (faster on a GPU, same results up to rounding).
        trained: each diffusion part's training record (trained.py); requests outside them are refused."""
        batch_invariant = check_flag(batch_invariant, "batch_invariant")
        self.config, self.vae, self.text_encoder = config, for_inference(vae), text_encoder  # as loading gives it
        # keyframe_net None: an interpolation-only pipeline (parts.keyframes null); only fill_between runs
        self.keyframes = (DiffusionStage(keyframe_net, config.keyframes, batch_invariant, "pipeline.yaml: keyframes")
                          if keyframe_net is not None else None)
        self.interpolation = DiffusionStage(interpolation_net, config.interpolation, batch_invariant,
                                            "pipeline.yaml: interpolation")
        self.folder = Path(folder) if folder is not None else None
        self.trained = trained or {}
        check_parts(config, vae.config, keyframe_net.config if keyframe_net is not None else None,
                    interpolation_net.config, text_encoder.dim)

    @classmethod
    @float32_default
    def from_pretrained(cls, folder: str | Path, *, device=None, dtype: torch.dtype | None = None,
                        batch_invariant: bool = True) -> VideoPipeline:
        """Checks pipeline.yaml, every part config and training record (cheap), then loads the weights."""
        check_placement(device, dtype)
        batch_invariant = check_flag(batch_invariant, "batch_invariant")
        config, vae, keyframe_net, interpolation_net, text, trained = load_pipeline(folder, batch_invariant)
        pipe = cls(config, vae, keyframe_net, interpolation_net, text, folder, batch_invariant, trained)
        return pipe.to(device, dtype)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Writes pipeline.yaml and every part (float32 weights, each part's training record) into `folder`."""
        from vidiff.pipeline.save import save_pipeline

        return save_pipeline(self, folder)

    def to(self, device=None, dtype: torch.dtype | None = None) -> VideoPipeline:
        """Moves every part to `device`; the VAE and the U-Nets compute in `dtype` (bf16 / fp16 / fp32), while the
        samplers keep their state, sigmas and guidance in fp32 (stage.py). The text encoder moves, in fp32.
        `pipe.to(torch.bfloat16)` is taken as the dtype, as torch modules and diffusers' pipelines take it."""
        if isinstance(device, torch.dtype):  # it was refused as "device: torch.bfloat16 is not a device"
            if dtype is not None:
                raise InputError(f"to: two dtypes given, {device} and dtype={dtype}")
            device, dtype = None, device
        check_placement(device, dtype)
        self._warn_if_rounded(dtype)
        for module in (self.vae, *self._stage_nets()):
            module.to(device=device, dtype=dtype).eval()
        if device is not None and hasattr(self.text_encoder, "to"):
            self.text_encoder.to(device)
        return self

    def _warn_if_rounded(self, dtype: torch.dtype | None) -> None:
        """A cast up from half precision keeps the rounded weights, as torch modules do: the frames of a pipeline cast
        to bfloat16 and back differed from the float32 pipeline's (Shapes: up to 3 of 255 levels) without a word."""
        if dtype != torch.float32:
            return
        low = {p.dtype for m in (self.vae, *self._stage_nets()) for p in m.parameters()} - {torch.float32}
        if low:
            from vidiff.caller_warning import warn_at_caller

            warn_at_caller(f"to({dtype}): the parts hold {', '.join(sorted(map(str, low)))} weights, whose rounding a "
                           "cast does not undo: the frames differ a little from the float32 pipeline's, and "
                           "save_pretrained refuses it; load the pipeline again for its float32 weights")

    def compile(self) -> VideoPipeline:
        """torch.compile's the two U-Nets (the first call of each shape compiles; later calls are faster)."""
        for stage in (self.keyframes, self.interpolation):
            if stage is not None:
                stage.compile()
        return self

    def _stage_nets(self) -> list[torch.nn.Module]:
        return [stage.net for stage in (self.keyframes, self.interpolation) if stage is not None]

    # ---- public generation API ------------------------------------------------------------------------------
    @float32_default
    def text_to_video(self, prompt, *, keyframes: dict | None = None, control=None, control_scale: float | None = None,
                      progress: bool = True, **settings):
        """prompt (str or list) -> (frames uint8 (F,H,W,3), or (B,F,H,W,3) for lists of prompts / seeds; fps).
        A Shapes pipeline warns of what a prompt leaves to chance, as `vidiff generate` does
        (prompt_reading.prompt_notes).

        settings: seed, num_frames, num_keyframes, keyframe_stride, steps, sampler, guidance_scale,
        image_guidance_scale, height, width, fps, force_layout, negative_prompt, guidance_rescale, churn, pc_steps,
        pc_snr (request.py). `keyframes` maps frame indices to uint8 (H,W,3) images, which come back unchanged at
        those indices: on the keyframe grid (multiples of the stride) the keyframe part takes them as known;
        elsewhere the grid is laid around them (anchored_keyframes.py). `control`: structure-control maps of the whole
        clip, uint8 (F,H,W) / (F,H,W,3) (a channel > 127 = on), float (F,H,W) in [0, 1] or bool, weighted by
        control_scale (control.py; None: pipeline.yaml's control_scale)."""
        return self._text_to_video(prompt, keyframes=keyframes, control=control, control_scale=control_scale,
                                   progress=progress, notes="generate", **settings)

    @torch.no_grad()
    def _text_to_video(self, prompt, *, keyframes: dict | None = None, control=None,
                       control_scale: float | None = None, progress: bool = True, notes: str | None = None,
                       still: tuple[str, str] | None = None, **settings):
        """text_to_video; `notes`: the task whose prompt notes are warned of once the request is checked (None for
        an edit at strength 1 and a long clip's first pass, whose callers said them): they came before a refusal of
        another setting (`text_to_video("a cat", steps=0)` warned of the prompt, then refused the steps). `still`: an
        animated image's (colour, shape) for the prompt template (image_to_video)."""
        self._need_keyframe_part("text to video")
        progress = check_flag(progress, "progress")
        self._check_settings(settings, "text_to_video")
        req = self.request(prompt, **settings)
        if still is not None:
            req = dataclasses.replace(req, still=still)
        pixels = check_keyframe_images({} if keyframes is None else keyframes, req)  # `or`: an array's truth value
        if notes is not None:
            warn_prompt_notes(self.config, prompt, task=notes, by_maps=control is not None)
        if settings.get("num_frames") is not None and settings.get("num_keyframes") is None and not req.force_layout:
            # longer than one pass: continued as `vidiff generate` continues it (the keyframes in the first pass)
            first, extend_by = split_long_layout(self.trained.get("keyframes"), req.layout, pixels, control is not None,
                                                 max_gap=self.config.interpolation.max_gap,
                                                 interpolation=self.trained.get("interpolation"))
            if extend_by:
                from vidiff.pipeline.extension import long_clip

                return long_clip(self, prompt, first, extend_by, progress, settings, pixels)
        if pixels and not self.keyframes.takes_known_frames:
            raise InputError("this pipeline's keyframe model takes no known frames (it cannot animate or extend)")
        control = request_control({"keyframes": self.keyframes, "interpolation": self.interpolation}, control,
                                  control_scale, req, self.config.control_scale)
        if any(index % req.layout.keyframe_stride for index in pixels):
            from vidiff.pipeline.anchored_keyframes import around_keyframes

            return around_keyframes(self, req, pixels, control, progress)
        self._check_trained(req, known=user_keyframe_pattern(pixels))
        k, s, batch = req.layout.num_keyframes, req.layout.keyframe_stride, len(req.seeds)
        shape = self._latent_shape(req, k)
        known, known_mask = torch.zeros((batch, *shape)), torch.zeros(batch, k)
        for index, image in pixels.items():
            known[:, :, index // s] = self.vae.encode_frames(image[None].to(self._device))[:, :, 0].cpu().float()
            known_mask[:, index // s] = 1.0
        with self._timeline(req, [list(range(k - 1))], progress, control=control) as timeline:
            kf = timeline.keyframes(shape, "keyframes", known, known_mask)  # (B,C,K,h,w)
            latents = timeline.fill(place_keyframes(kf, req.layout), list(range(k - 1)), "interp")
        frames = self._decode(latents, progress)  # (B,F,H,W,3)
        for index, image in pixels.items():
            frames[:, index] = image
        return req.unbatch(frames[:, : req.layout.output_frames]), req.fps  # a trimmed layout: cut to the ask

    def keyframe_positions(self, req: Request, keyframes: dict) -> list[int]:
        """The frames the keyframe stage makes or takes for `req` with user `keyframes` ({index: image}): the grid,
        or, with one off it, the layout laid around them (as anchored_keyframes.py runs it). For a clip's record: the
        request's grid alone did not say which layout ran."""
        pixels = check_keyframe_images({} if keyframes is None else keyframes, req)
        if not any(index % req.layout.keyframe_stride for index in pixels):
            return list(range(0, req.layout.num_frames, req.layout.keyframe_stride))
        return lay_keyframes_around(sorted(pixels), anchored_span(req.layout), req.layout.keyframe_stride,
                                    self.config.interpolation.max_gap)  # as around_keyframes lays them, unchecked

    @float32_default
    def image_to_video(self, image, prompt, *, keyframes: dict | None = None, control=None,
                       control_scale: float | None = None, progress: bool = True, **settings):
        """Animates a uint8 (H,W,3) image: it is the first keyframe (known) and frame 0 of the result. `keyframes`
        (further frames the clip must show, not frame 0), `control`, `control_scale`, `progress` and the settings
        are text_to_video's."""
        # first: an interpolation-only pipeline said "resize the image" to an image of another size
        self._need_keyframe_part("animating an image")
        # named as this method (text_to_video's check named text_to_video), before the image is looked at
        self._check_settings(settings, "image_to_video")
        keyframes = {} if keyframes is None else keyframes  # `or {}` asked an array of keyframes its truth value
        if not isinstance(keyframes, dict):  # dict() of a list of images raised "dictionary update sequence ..."
            raise InputError(f"keyframes: expected a dict of frame index -> image, got {type(keyframes).__name__}")
        keyframes = dict(keyframes)
        if 0 in keyframes:  # it was dropped for `image` without a word
            raise InputError("keyframes: frame 0 is the image being animated; give it as `image`, not in keyframes")
        keyframes[0] = check_image(image, "image")
        height, width = (plain_number(settings.get(name)) for name in ("height", "width"))
        size = (self.config.height if height is None else height, self.config.width if width is None else width)
        # a height or width that is no positive integer is request()'s to refuse: compared here, height="64" read
        # as "image: 64x64 pixels, the clip is 64x64"
        if all(type(v) is int and v >= 1 for v in size) and tuple(keyframes[0].shape[:2]) != size:
            raise InputError(f"image: {keyframes[0].shape[1]}x{keyframes[0].shape[0]} pixels, the clip is "
                             f"{size[1]}x{size[0]} (resize it, or pass height= and width=)")
        return self._text_to_video(prompt, keyframes=keyframes, control=control, control_scale=control_scale,
                                   progress=progress, notes="animate", still=template_still(self.config, keyframes[0]),
                                   **settings)

    @float32_default
    @torch.no_grad()
    def extend_video(self, frames, prompt, *, num_frames: int, seam_fade: int = 4, progress: bool = True,
                     strength: float | None = None, **settings):
        """Continues uint8 (F,H,W,3) `frames` by `num_frames` new frames; returns input + new frames and fps.

        The clip's last frames (at the keyframe stride) are the first known keyframes of a window of K; longer
        continuations repeat such windows, each overlapping the last by its known keyframes. The VAE error of the
        last input frame is faded out over the first `seam_fade` new frames (seam.py; 0 turns it off).
        `strength` < 1: each new keyframe starts (SDEdit) from the clip's last frame moved on at the clip's own
        measured velocity (vidiff/motion.py), so the continuation keeps the clip's speed; 1 samples them from noise.
        None: pipeline.yaml's `extension_strength`."""
        from vidiff.pipeline.extension import extend

        progress = check_flag(progress, "progress")
        self._check_settings(settings, "extend_video", fixed=("height", "width"))
        return extend(self, frames, prompt, num_frames=num_frames, seam_fade=seam_fade, progress=progress,
                      settings=settings, strength=strength)

    @float32_default
    @torch.no_grad()
    def edit_video(self, frames, prompt, *, strength: float | None = None, mask=None, feather: int | None = None,
                   control="auto", control_scale: float | None = None, repeats: int | None = None, progress: bool = True,
                   **settings):
        """Redraws uint8 (F,H,W,3) `frames` under `prompt`; returns (frames, fps). editing.py says how.

        Without `mask`: SDEdit over the whole clip; strength (default 0.6) 0 returns the input decoded by the VAE,
        1 is plain text to video (following the clip's structure maps when there are any). With `mask` ((H,W) for
        every frame or (F,H,W), white / True = regenerate; or "foreground": each frame's objects, read off the
        clip): a region edit; the parts must have been trained with region masks; strength defaults to 1 (the
        region from pure noise); beyond `feather` pixels (default 3; with a mask only) outside the mask every
        output pixel is the input's. `repeats` (strength < 1 only): keyframe passes, each from the last.
        `control`: the structure maps the edit follows: "auto" (blob maps read off the clip when the pipeline has
        control parts for them, unless the mask is the user's), None, a map kind read off the clip ("blob",
        "silhouette") or maps as text_to_video takes them; weighted by control_scale (None: pipeline.yaml's).
        F must be a layout length; settings as for text_to_video."""
        from vidiff.pipeline.editing import edit

        # first: an interpolation-only pipeline refused a clip's length and named "this request"
        self._need_keyframe_part("editing a video")
        progress = check_flag(progress, "progress")  # strength 0 returns before any sampling, where it was checked
        self._check_settings(settings, "edit_video", fixed=("num_frames", "height", "width", "exact_frames"))
        warn_prompt_notes(self.config, prompt, task="edit")
        return edit(self, frames, prompt, strength=strength, mask=mask, feather=feather, progress=progress,
                    settings=settings, control=control, control_scale=control_scale, repeats=repeats)

    @float32_default
    @torch.no_grad()
    def fill_between(self, keyframes, stride: int, seed: int = 0, *, prompt: str = "", steps=None, sampler=None,
                     progress=False, force_layout: bool = False, **unknown):
        """Interpolation only: uint8 (K,H,W,3) keyframes -> ((K-1)*stride+1,H,W,3), keyframes kept at 0, stride, ...
        Frames of any size: they are filled with their last row / column repeated out to `frame_multiple`, and cut
        back. A setting it does not take is an InputError naming those it takes, as the other methods answer (it
        was Python's TypeError)."""
        from vidiff.pipeline.filling import fill

        self._check_settings(unknown, "fill_between", request_settings=False)
        return fill(self, keyframes, stride, seed, prompt=prompt, steps=steps, sampler=sampler, progress=progress,
                    force_layout=force_layout)

    # ---- requests --------------------------------------------------------------------------------------------
    def _check_settings(self, settings: dict, method: str, fixed: tuple[str, ...] = (),
                        request_settings: bool = True) -> None:
        """A setting `method` does not take, or takes from its input frames, is named with those it takes: its own
        keywords (with a default, or keyword-only) and, with `request_settings`, request()'s that it passes on (both
        ended in a TypeError naming the internal request(), fill_between's in Python's own)."""
        import inspect

        allowed = [name for name in inspect.signature(self.request).parameters
                   if request_settings and name not in ("prompt", *INTERNAL_SETTINGS, *fixed)]
        own = [q.name for q in inspect.signature(getattr(self, method)).parameters.values()
               if q.kind is not q.VAR_KEYWORD and (q.kind is q.KEYWORD_ONLY or q.default is not q.empty)]
        for key in settings:
            if key in fixed and key not in INTERNAL_SETTINGS:
                raise InputError(f"{key}: {method} takes it from the frames it is given; leave it out")
            if key not in allowed:
                raise InputError(f"{key}: not a setting of {method}; it takes "
                                 f"{', '.join(dict.fromkeys(own + allowed))}")

    def request(self, prompt, *, seed=0, num_frames=None, num_keyframes=None, keyframe_stride=None, steps=None,
                sampler=None, guidance_scale=None, image_guidance_scale=None, height=None, width=None, fps=None,
                force_layout: bool = False, negative_prompt=None, guidance_rescale=None, churn=None, pc_steps=None,
                pc_snr=None, exact_frames: bool = False, pixel_multiple: int | None = None,
                names: Mapping[str, str] = API_NAMES) -> Request:
        """Checks and completes every setting before any sampling (the CLI calls this too). A num_frames that no
        keyframe grid fits is made on the next longer grid and cut (Layout.trim_to), unless exact_frames.
        pixel_multiple: what height and width must be multiples of (default: both parts'; fill_between's frames
        meet the interpolation part only). names: how errors name the layout's settings (layout.API_NAMES)."""
        cfg = self.config
        num_frames, num_keyframes, keyframe_stride, steps, height, width = map(
            plain_number, (num_frames, num_keyframes, keyframe_stride, steps, height, width))
        guidance_scale, image_guidance_scale, fps, guidance_rescale, churn, pc_steps, pc_snr = map(
            plain_number, (guidance_scale, image_guidance_scale, fps, guidance_rescale, churn, pc_steps, pc_snr))
        prompts, seeds, batched = prompts_and_seeds(prompt, seed)
        layout = request_layout(cfg, self.trained, num_frames, num_keyframes, keyframe_stride,
                                force_layout=force_layout, exact_frames=exact_frames, pixel_multiple=pixel_multiple,
                                names=names)
        return Request.build(prompts, seeds, batched, layout, cfg, pixel_multiple or self.size_multiple, steps=steps,
                             sampler=sampler, guidance_scale=guidance_scale, image_guidance_scale=image_guidance_scale,
                             height=height, width=width, fps=fps, force_layout=force_layout,
                             negative_prompt=negative_prompt, guidance_rescale=guidance_rescale, churn=churn,
                             pc_steps=pc_steps, pc_snr=pc_snr, names=names)

    def _need_keyframe_part(self, task: str) -> None:
        if self.keyframes is None:
            raise InputError(f"this pipeline is interpolation-only (no keyframe part): {task} needs a keyframe "
                             "model; it can fill frames between given frames (fill_between, `vidiff interpolate`)")

    def _check_trained(self, req: Request, known: str | None, num_known: int = 0) -> None:
        self._need_keyframe_part("this request")
        check_layout(req.layout, self.config.interpolation.max_gap, self.trained.get("keyframes"),
                     self.trained.get("interpolation"), known=known, num_known=num_known, force=req.force_layout)
        warn_untrained_size(self.trained.get("keyframes"), req.height, req.width, self.vae.downsample_factor)

    # ---- helpers ---------------------------------------------------------------------------------------------
    @property
    def frame_multiple(self) -> int:
        """Pixel multiple a frame's height and width must have for the interpolation part."""
        return self._pixel_multiple([self.interpolation.net])

    @property
    def size_multiple(self) -> int:
        """Pixel multiple a generated clip's height and width must have, for both parts (a 60 px side passed the
        VAE's 4 and failed inside a U-Net that halves twice)."""
        return self._pixel_multiple(self._stage_nets())

    def _pixel_multiple(self, nets) -> int:
        """The VAE's factor times the deepest of `nets`' downsampling."""
        levels = max(len(net.config.block_out_channels) for net in nets)
        return self.vae.downsample_factor * 2 ** (levels - 1)

    @property
    def _device(self) -> torch.device:
        return next(self.interpolation.net.parameters()).device

    def _latent_shape(self, req: Request, num_frames: int) -> tuple[int, int, int, int]:
        f = self.vae.downsample_factor
        return (self.vae.config.latent_channels, num_frames, req.height // f, req.width // f)

    def _timeline(self, req: Request, gap_lists: list[list[int]], progress: bool, keyframe_stage: bool = True,
                  strength: float = 1.0, control=None, spans: list[tuple[int, int]] | None = None,
                  fill_strength: float | None = None, keyframe_passes: int = 1):
        warn_if_caller_autocast(self._device, next(self.interpolation.net.parameters()).dtype)
        max_gap = self.config.interpolation.max_gap
        steps = total_steps(req, gap_lists, self.keyframes.settings(req.steps).steps if keyframe_stage else 0,
                            self.interpolation.settings(req.steps).steps, max_gap, strength, spans, fill_strength,
                            keyframe_passes)
        text, null_text = encode_text(self.text_encoder, encoder_prompts(self.config, req.prompts, req.still))
        negative = encode_negative(self.text_encoder, req.negative_prompts)  # as written: encoder_prompts
        # used as `with pipe._timeline(...) as timeline`: the progress bar closes however the sampling ends
        return Timeline(self.keyframes, self.interpolation, max_gap, req, text, null_text,
                        StepBar(steps, enabled=progress), negative, strength, fill_strength, control)

    def _decode(self, latents: torch.Tensor, progress: bool) -> torch.Tensor:
        """(B,C,F,h,w) -> uint8 (B,F,H,W,3), one sample at a time, frame-sliced by the VAE's frame_chunk."""
        if not bool(torch.isfinite(latents).all()):  # NaN decodes to black frames, which were written with exit 0
            from vidiff.errors import VidiffError

            raise VidiffError("sampling gave NaN or infinite latents (the pipeline's weights or settings overflow); "
                              "no frames were written")
        return torch.cat([self.vae.decode_to_frames(z[None].to(self._device), progress=progress) for z in latents])

