"""The input files of `vidiff animate | extend | edit`: checked cheaply before any weights load, then read and
fitted to the pipeline's frame size."""
from __future__ import annotations

from pathlib import Path


def check_file(path: Path, what: str) -> None:
    from vidiff.errors import InputError

    from vidiff import io
    from vidiff.errors import VideoDecodeError

    try:
        io.check_file(path)  # regular, non-empty, readable: never opens a FIFO
    except VideoDecodeError as e:
        raise InputError(f"{what} {e}") from None


def probe_clip(path, what: str = "video"):
    """A user's clip's header (io.probe_video, which checks the file first); a file that is no clip it can read is
    an InputError `{what} PATH: reason`, in interpolate, extend, edit, --mask and --control alike."""
    from vidiff import io
    from vidiff.errors import InputError, VideoDecodeError

    try:
        return io.probe_video(path)
    except VideoDecodeError as e:
        raise InputError(f"{what} {e}") from None


def read_clip(path, what: str = "video") -> tuple:
    """A user's clip (extend, edit, --mask, --control) as (uint8 (F,H,W,3), fps), decoded whole with at most
    limits.MAX_FRAMES frames whatever its header says (a header that undercounts is refused while decoding, not
    after holding every frame). A clip that does not decode is an InputError `{what} PATH: reason`, as probe_clip
    says it (extend said its decode errors without the `video ` its other errors have)."""
    from vidiff import io
    from vidiff.errors import InputError, VideoDecodeError
    from vidiff.limits import MAX_FRAMES

    try:
        return io.read_video(path, limits=io.VideoLimits(max_frames=MAX_FRAMES))
    except VideoDecodeError as e:
        raise InputError(f"{what} {e}") from None


def count_clip_frames(path, what: str = "video") -> int:
    """The frames of a user's clip counted by decoding them (the length an edit keeps: a header's count can be an
    estimate, include frames an MP4 edit list hides, or undercount); InputError past limits.MAX_FRAMES or when a
    frame does not decode at the header's size."""
    from vidiff import io
    from vidiff.errors import InputError, VideoDecodeError
    from vidiff.limits import MAX_FRAMES

    try:
        count = io.count_frames(path, at_most=MAX_FRAMES + 1)
    except VideoDecodeError as e:
        raise InputError(f"{what} {e}") from None
    if count > MAX_FRAMES:
        raise InputError(f"{what} {path}: more than {MAX_FRAMES} frames; the limit is {MAX_FRAMES} (cut the clip "
                         "first)")
    return count


def warn_if_audio(info, path) -> None:
    """vidiff writes video only: a user's clip with sound is told so before the work starts."""
    if info.audio:
        import warnings

        from vidiff.output_safety import shown

        warnings.warn(f"video {shown(path)} has an audio track; the output holds the video only", stacklevel=2)


def clip_timing(path, info):
    """(FrameTiming, Header) of the clip's packets (vidiff/frame_timing.py), the header's rate being the probe's (a
    GIF's from its delays, not FFmpeg's guess); None where the packets carry no timestamps. Nothing decoded."""
    from dataclasses import replace

    from vidiff import io
    from vidiff.frame_timing import demuxed_timing

    measured = demuxed_timing(path, io.DEFAULT_LIMITS.max_frames)
    if measured is None:
        return None
    timing, header = measured
    return timing, replace(header, fps=info.fps)


def at_own_rate(path, info, timing, header, so_that: str):
    """`info` with the frames' own mean rate and count where they are far sparser than the header says (an AVI whose
    index skips frame slots; a header whose rate is a timebase's, 1000 fps), warned; else `info` itself. At the
    header's rate such a clip's frames play several times too fast; `so_that` says what the own rate keeps right."""
    from dataclasses import replace

    from vidiff.frame_timing import is_sparse

    if not is_sparse(timing, header):
        return info
    import warnings

    from vidiff.output_safety import shown

    rate = timing.mean_fps
    warnings.warn(f"video {shown(path)}: its {timing.frames} frames span {timing.covered:.1f} s, {rate:.3g} fps on "
                  f"average, where its header says {info.fps:g} fps ({header.frames or info.num_frames} frames): they "
                  f"are taken at their own rate, so that {so_that}", stacklevel=3)
    return replace(info, fps=rate, num_frames=timing.frames)


def warn_if_anamorphic(info, path, suffix: str) -> None:
    """A clip with non-square pixels keeps their shape in an .mp4 output (the writer stores the ratio); a .webm or
    .gif shows them square, so the user is told before the work starts."""
    if info.sample_aspect is not None and suffix != ".mp4":
        import warnings

        from vidiff.output_safety import shown

        warnings.warn(f"video {shown(path)} has non-square pixels (width / height {info.sample_aspect}): a "
                      f"{suffix} output shows them square, so the picture looks narrower or wider than the clip; "
                      ".mp4 keeps the shape", stacklevel=2)


def check_image(path: Path) -> None:
    from vidiff import io

    check_file(path, "image")
    io.check_image(path)  # header and structure only: size, mode, decompression bombs


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def check_fits_clip(flag: str, path, size: tuple[int, int], frames: int | None, clip_size: tuple[int, int],
                    clip_frames: int, frames_hint: str, info=None, clip_fps: float | None = None) -> None:
    """A per-frame input file (mask, control maps) against the clip: its (width, height) and, unless None, its
    frame count; InputError naming the flag and the file otherwise. `info` (the file's io.VideoInfo) and
    `clip_fps`: to say when a GIF lasts as long as the clip in fewer frames (merged_gif_note)."""
    from vidiff.errors import InputError

    if tuple(size) != tuple(clip_size):
        raise InputError(f"{flag} {path}: {size[0]}x{size[1]} pixels, the clip is {clip_size[0]}x{clip_size[1]}")
    if frames is not None and frames != clip_frames:
        raise InputError(f"{flag} {path}: {frames} frame{'s' if frames != 1 else ''}, the clip has {clip_frames} "
                         f"{frames_hint}{merged_gif_note(info, clip_frames, clip_fps)}")


def merged_gif_note(info, clip_frames: int, clip_fps: float | None) -> str:
    """'' unless `info` is a GIF that lasts as long as the clip in another frame count: GIF writers (Pillow,
    ImageMagick) store a frame repeated in a row once with the delays added, so a mask or maps GIF written frame
    by frame holds fewer frames than were written (a mask still for 8 frames, then another: 2 frames)."""
    if info is None or info.container != "gif" or not info.duration or not clip_fps:
        return ""
    if abs(info.duration * clip_fps - clip_frames) >= 1:
        return ""
    return (f"; it lasts {info.duration:g} s, as the clip's {clip_frames} frames at {clip_fps:g} fps do: a GIF "
            "writer stores a frame repeated in a row once, so give one frame per clip frame in another format "
            "(.mp4)")


def stated_frames(path, info, what: str) -> int:
    """The frame count of a per-frame input file (mask, control maps): the header's, or counted by decoding (bounded)
    where the header has none and `info` only estimates it from duration x fps (Matroska / WebM): a 16-frame WebM
    whose frames are unevenly spaced was refused as "120 frames, the clip has 16"."""
    return count_clip_frames(path, what) if info.estimated else info.num_frames


def check_mask_file(path: Path, clip) -> None:
    """`vidiff edit --mask`: an image of the clip's size, or a video of its size and frame count (headers only).
    clip: the edited video's io.VideoInfo."""
    from vidiff import io

    check_file(path, "mask")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        io.check_image(path)
        width, height = io.image_size(path)  # upright, as read_mask reads it
        frames = None
    else:
        info = probe_clip(path, "mask")
        width, height, frames = info.width, info.height, stated_frames(path, info, "mask")
    check_fits_clip("--mask", path, (width, height), frames, (clip.width, clip.height), clip.num_frames,
                    "(or give one image for every frame)", None if frames is None else info, clip.fps)


def read_mask(path: str, frames):
    """The --mask file as a bool (F,H,W) region mask for the clip `frames` (F,H,W,3): any colour channel > 127 is
    "redraw"; in an image with alpha a transparent pixel (alpha <= 127) is "keep" whatever its colour, as in
    control maps. One image is every frame's mask (passed on as (H,W), so no side of it is taken for a frame
    count); a mask that selects nothing is refused (the edit would return the clip unchanged)."""
    import torch

    from vidiff.data.control_maps import maps_from_frames
    from vidiff.errors import InputError
    from vidiff.pipeline.region import check_region_mask

    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        from vidiff.image_io import read_image_rgba

        mask = torch.from_numpy(maps_from_frames(read_image_rgba(path)[None].numpy())[0] > 0.5)  # (H,W)
    else:
        mask = torch.from_numpy(maps_from_frames(read_clip(path, "mask")[0].numpy()) > 0.5)  # (F,H,W): > 127 in any channel
    if not bool(mask.any()):
        raise InputError(f"--mask {path}: no pixel is white (> 127), so nothing would be redrawn; white marks the "
                         "region to redraw")
    return check_region_mask(mask, *frames.shape[:3])


def read_inputs(args, model: Path, video_fps: float | None = None):
    """(sidecar record of the inputs, the input tensor) for animate / extend / edit; ({}, None) for generate.
    `video_fps`: the clip's rate as the checks found it (its frames' own where its header's is far off), else the
    header's."""
    from vidiff import io
    from vidiff.errors import InputError
    from vidiff.pipeline.config import read_pipeline_folder

    config = read_pipeline_folder(model)
    if args.task == "animate":
        image = io.read_image(args.image)  # (H,W,3)
        record = {"image": str(Path(args.image).resolve()), "image_size": [int(image.shape[1]), int(image.shape[0])]}
        return record, fit_image(image, config.height, config.width, f"image {args.image}")
    if args.task in ("extend", "edit"):
        frames, fps = read_clip(args.video)  # (F,H,W,3)
        if tuple(frames.shape[1:3]) != (config.height, config.width):
            raise InputError(f"video {args.video}: frames are {frames.shape[2]}x{frames.shape[1]}, this pipeline "
                             f"makes {config.width}x{config.height}; resize the clip first")
        record = {"video": str(Path(args.video).resolve()), "input_frames": int(frames.shape[0]),
                  "fps": video_fps or fps}
        sample_aspect = io.probe_video(args.video).sample_aspect  # the output keeps the clip's pixel shape
        if sample_aspect is not None:
            record["sample_aspect"] = str(sample_aspect)
        return record, frames
    return {}, None


def read_keyframe_images(paths: dict, model: Path, record: dict) -> dict | None:
    """--keyframe images {index: path} -> {index: uint8 (H,W,3)} fitted to the pipeline's frame size (as animate's
    image); adds their paths to the sidecar record. None when there are none."""
    from vidiff import io
    from vidiff.pipeline.config import read_pipeline_folder

    if not paths:
        return None
    config = read_pipeline_folder(model)
    record["keyframes"] = {str(i): str(Path(p).resolve()) for i, p in sorted(paths.items())}
    return {i: fit_image(io.read_image(p), config.height, config.width, f"--keyframe {i}={p}")
            for i, p in sorted(paths.items())}


def fit_image(image, height: int, width: int, name: str = "image"):
    """Center-crops uint8 (H,W,3) to the target aspect ratio, then resizes (bicubic) to (height, width, 3); warns,
    naming the image as `name`, when the crop keeps under a quarter of its area."""
    import warnings

    import numpy as np
    import torch
    from PIL import Image

    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    scale = min(h / height, w / width)
    ch, cw = max(1, round(height * scale)), max(1, round(width * scale))
    if ch * cw * 4 < h * w:
        warnings.warn(f"{name} is {w}x{h}: the centre crop to the model's {width}x{height} shape keeps {cw}x{ch} "
                      f"({100 * ch * cw / (h * w):.2g}% of it); crop or pad the image to that shape first to choose "
                      "what is kept", stacklevel=1)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = Image.fromarray(image[top : top + ch, left : left + cw].numpy())
    return torch.from_numpy(np.asarray(crop.resize((width, height), Image.BICUBIC)).copy())
