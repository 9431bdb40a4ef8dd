"""Checking and completing what a caller asks the pipeline for, before anything is sampled.

`Request.build` resolves every setting (the pipeline.yaml defaults, then the caller's overrides) and raises
InputError naming the bad parameter. Importing this module does not import torch, so the command line runs the
same checks in well under a second, before any weights load.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from vidiff.errors import InputError
from vidiff.limits import (
    MAX_FRAMES, MAX_KEYFRAMES, MAX_SIDE, MAX_STEPS, MAX_STRIDE, check_flag, check_scale, check_seed, is_int,
    plain_number, short_repr,
)
from vidiff.pipeline.config import MAX_CHURN, MAX_PC_STEPS, SAMPLERS, PipelineConfig
from vidiff.video_writer import FPS_MAX, FPS_MIN
from vidiff.pipeline.input_checks import check_image, frame_of_clip
from vidiff.pipeline.layout import API_NAMES, Layout, check_layout_limit


def prompts_and_seeds(prompt, seed, name: str = "prompt") -> tuple[list[str], list[int], bool]:
    """Broadcasts a prompt / list of prompts against a seed / list of seeds -> (prompts, seeds, batched)."""
    batched = isinstance(prompt, (list, tuple)) or isinstance(seed, (list, tuple))
    prompts = list(prompt) if isinstance(prompt, (list, tuple)) else [prompt]
    seeds = [plain_number(s) for s in (seed if isinstance(seed, (list, tuple)) else [seed])]
    if not prompts or not seeds:
        raise InputError(f"{name} / seed: got an empty list")
    for p in prompts:
        if not isinstance(p, str):
            raise InputError(f"{name}: expected a string, got {type(p).__name__} {short_repr(p)}")
        try:
            p.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError(f"{name}: not valid UTF-8 text (undecodable byte at character {e.start})") from None
    for s in seeds:
        check_seed(s, "seed")
    if len(prompts) == 1:
        prompts = prompts * len(seeds)
    elif len(seeds) == 1:
        seeds = seeds * len(prompts)
    elif len(prompts) != len(seeds):
        raise InputError(f"prompt / seed: {len(prompts)} prompts and {len(seeds)} seeds; give one of either or equal counts")
    return prompts, seeds, batched


def check_zero_text_guidance(negative: bool, negative_name: str = "negative_prompt",
                             guidance_name: str = "guidance_scale") -> None:
    """For keyframes sampled at text guidance 0 (no guidance_interval): guidance keeps only its side without the
    prompt, so the prompt sets nothing they show (4 clips of "a red circle moving left" came out in random colours,
    shapes and directions) and a negative prompt, standing on that side, is what they follow (4 of 4 clips drew the
    negative "a blue square moving up"). Refused with a negative prompt, warned without; the words are the command
    line's and the library's alike, so the CLI says the warning once."""
    if negative:
        raise InputError(f"{negative_name}: at text guidance 0 the keyframes follow the negative prompt and not the "
                         f"prompt (guidance keeps only its side without the prompt, where the negative prompt stands); "
                         f"give a {guidance_name} above 0, or no negative prompt")
    from vidiff.caller_warning import warn_at_caller

    warn_at_caller("text guidance 0 samples the keyframes without the prompt (guidance keeps only its side without "
                   "it), so the prompt sets nothing they show; guidance 1 follows the prompt without guidance")


def check_range(value, name: str, low: float, high: float):
    """None, or a finite number in [low, high] as a float."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InputError(f"{name}: must be a number in [{low:g}, {high:g}], got {short_repr(value)}")
    return float(value)


def check_guidance(value, name: str):
    return None if value is None else check_scale(value, name)


@dataclass(frozen=True)
class Request:
    prompts: list[str]
    seeds: list[int]
    batched: bool  # lists were given: return (B,F,H,W,3) even for B == 1
    layout: Layout
    steps: int | None  # overrides both stages' steps
    sampler: str | None  # overrides both stages' sampler
    guidance_scale: float | None  # overrides the keyframe stage's text guidance
    image_guidance_scale: float | None  # overrides the keyframe stage's image guidance
    height: int
    width: int
    fps: float
    force_layout: bool = False  # run a layout outside the parts' training records, with a warning
    negative_prompts: list[str] | None = None  # per row: what the keyframe stage's guidance steers away from
    guidance_rescale: float | None = None  # overrides the keyframe stage's guidance rescale phi
    churn: float | None = None  # overrides both stages' EDM churn (heun sampler)
    pc_steps: int | None = None  # overrides both stages' corrector steps (pc sampler)
    pc_snr: float | None = None  # overrides both stages' corrector signal-to-noise ratio (pc sampler)
    still: tuple[str, str] | None = None  # animate: the image's (colour, shape), for the prompt template

    @classmethod
    def build(cls, prompts, seeds, batched, layout: Layout, config: PipelineConfig, downsample: int | None, *,
              steps=None, sampler=None, guidance_scale=None, image_guidance_scale=None, height=None, width=None,
              fps=None, force_layout: bool = False, negative_prompt=None, guidance_rescale=None, churn=None,
              pc_steps=None, pc_snr=None, names: Mapping[str, str] = API_NAMES) -> Request:
        if steps is not None and (not is_int(steps) or not 1 <= steps <= MAX_STEPS):
            raise InputError(f"steps: must be an integer in [1, {MAX_STEPS}], got {short_repr(steps)}")
        check_layout_limit(layout, names)  # a length cut from a longer grid is named as the caller gave it
        if layout.num_frames > MAX_FRAMES or layout.num_keyframes > MAX_KEYFRAMES or layout.keyframe_stride > MAX_STRIDE:
            raise InputError(f"{names['frames']} / {names['keyframes']} / {names['stride']}: {layout.num_frames} / "
                             f"{layout.num_keyframes} / {layout.keyframe_stride} exceed the limits {MAX_FRAMES} / "
                             f"{MAX_KEYFRAMES} / {MAX_STRIDE}")
        if sampler is not None and sampler not in SAMPLERS:
            raise InputError(f"sampler: unknown {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        guidance_scale = check_guidance(guidance_scale, "guidance_scale")
        image_guidance_scale = check_guidance(image_guidance_scale, "image_guidance_scale")
        height = config.height if height is None else height
        width = config.width if width is None else width
        for name, value in (("height", height), ("width", width)):
            if not is_int(value) or not 1 <= value <= MAX_SIDE:
                raise InputError(f"{name}: must be an integer in [1, {MAX_SIDE}], got {short_repr(value)}")
            if downsample and value % downsample:
                raise InputError(f"{name}: {value} is not a multiple of {downsample} (the VAE's factor times the "
                                 f"U-Nets' downsampling), e.g. {max(downsample, value // downsample * downsample)}")
        fps = config.fps if fps is None else fps
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not FPS_MIN <= fps <= FPS_MAX:
            raise InputError(f"fps: must be a number in [{FPS_MIN:g}, {FPS_MAX:g}], got {short_repr(fps)}")
        force_layout = check_flag(force_layout, "force_layout")
        negatives = None
        if negative_prompt is not None:
            if isinstance(negative_prompt, (list, tuple)) and len(negative_prompt) not in (1, len(prompts)):
                # prompts_and_seeds would name "prompt / seed" and call the negative prompts prompts
                raise InputError(f"negative_prompt: {len(negative_prompt)} negative prompts for {len(prompts)} "
                                 "prompts; give one for all or one per prompt")
            negatives, _, _ = prompts_and_seeds(negative_prompt, [0] * len(prompts), "negative_prompt")
            if len(negatives) != len(prompts):
                raise InputError(f"negative_prompt: {len(negatives)} negative prompts for {len(prompts)} prompts")
        guidance_rescale = check_range(guidance_rescale, "guidance_rescale", 0.0, 1.0)
        churn = check_range(churn, "churn", 0.0, MAX_CHURN)
        pc_snr = check_range(pc_snr, "pc_snr", 1e-6, 1.0)
        if pc_steps is not None and (not is_int(pc_steps) or not 1 <= pc_steps <= MAX_PC_STEPS):
            raise InputError(f"pc_steps: must be an integer in [1, {MAX_PC_STEPS}], got {short_repr(pc_steps)}")
        for stage in (config.keyframes, config.interpolation):
            method = sampler or stage.sampler
            if churn and method != "heun":
                raise InputError(f"churn: applies to the heun sampler (EDM stochastic sampling), not {method!r}")
            if (pc_steps is not None or pc_snr is not None) and method != "pc":  # they were taken and did nothing
                raise InputError(f"pc_steps / pc_snr: apply to the pc sampler (predictor-corrector), not {method!r}")
        return cls(prompts, seeds, batched, layout, steps, sampler, guidance_scale, image_guidance_scale,
                   height, width, float(fps), force_layout, negatives, guidance_rescale, churn, pc_steps, pc_snr)

    def unbatch(self, frames):
        """(B,F,H,W,3) -> (F,H,W,3) when one prompt and one seed were given."""
        return frames if self.batched else frames[0]

    def settings(self, config: PipelineConfig) -> dict:
        """Every resolved setting, for the sidecar next to each output."""
        kf, it = config.keyframes, config.interpolation
        pick = lambda override, default: default if override is None else override  # noqa: E731
        return {
            "num_frames": self.layout.output_frames,
            **({"layout_frames": self.layout.num_frames} if self.layout.trim_to is not None else {}),
            "num_keyframes": self.layout.num_keyframes,
            "keyframe_stride": self.layout.keyframe_stride,
            "height": self.height,
            "width": self.width,
            "fps": self.fps,
            "keyframes": {
                "steps": pick(self.steps, kf.steps),
                "sampler": pick(self.sampler, kf.sampler),
                "guidance_scale": pick(self.guidance_scale, kf.guidance_scale),
                "image_guidance_scale": pick(self.image_guidance_scale, kf.image_guidance_scale),
                "cond_sigma": kf.cond_sigma,
                "guidance_rescale": pick(self.guidance_rescale, kf.guidance_rescale),
                "guidance_interval": list(kf.guidance_interval) if kf.guidance_interval else None,
                **self._sampler_settings(kf),
            },
            "interpolation": {
                "steps": pick(self.steps, it.steps),
                "sampler": pick(self.sampler, it.sampler),
                "guidance_scale": it.guidance_scale,
                "image_guidance_scale": it.image_guidance_scale,
                "cond_sigma": it.cond_sigma,
                "max_gap": it.max_gap,
                **self._sampler_settings(it),
            },
            "negative_prompts": self.negative_prompts,
        }

    def _sampler_settings(self, stage) -> dict:
        """The stochastic sampler options a stage ran with (only those of its sampler)."""
        method = self.sampler or stage.sampler
        if method == "heun":
            return {"churn": stage.churn if self.churn is None else self.churn}
        if method == "pc":
            return {"pc_steps": stage.pc_steps if self.pc_steps is None else self.pc_steps,
                    "pc_snr": stage.pc_snr if self.pc_snr is None else self.pc_snr}
        return {}


def check_keyframe_images(keyframes: dict, req: Request) -> dict:
    """{frame index: uint8 (H,W,3)} after checking that every index is a frame of the request's clip (a negative one
    counts from its end: -1 is the last frame) and every image has the request's size."""
    total = req.layout.output_frames
    pixels = {}
    if not isinstance(keyframes, dict):
        raise InputError(f"keyframes: expected a dict of frame index -> image, got {type(keyframes).__name__}")
    for index, image in keyframes.items():
        index = plain_number(index)  # np.int64(5) was refused as "not a frame of the clip (0..15)"
        if isinstance(index, bool) or not isinstance(index, int):
            raise InputError(f"keyframes: index {short_repr(index)} is not a frame index (an int)")
        frame = frame_of_clip(index, total, f"keyframes: index {index}")
        image = check_image(image, f"keyframes[{index}]")  # named as given: keyframes[-1]
        if frame in pixels:
            raise InputError(f"keyframes: frame {frame} is given twice")
        if tuple(image.shape[:2]) != (req.height, req.width):
            raise InputError(f"keyframes[{frame}]: image is {image.shape[1]}x{image.shape[0]}, the clip is "
                             f"{req.width}x{req.height}")
        pixels[frame] = image
    return dict(sorted(pixels.items()))


class StepBar:
    """One tqdm bar over every sampler step of a generation; `step` is the samplers' callback."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="sampling", unit="step", leave=False)

    def step(self, _info=None) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def __enter__(self) -> StepBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
