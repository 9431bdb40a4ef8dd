"""VideoPipeline: keyframe layout, pipeline.yaml, sidecars, seeding, and generation with tiny random parts."""
import dataclasses
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from vidiff.config import ConfigError
from vidiff.errors import InputError
from vidiff.pipeline.config import (
    SAMPLERS, PipelineConfig, pipeline_config_from_dict, read_pipeline_folder, write_pipeline_yaml,
)
from vidiff.pipeline.input_checks import DEFAULT_FEATHER, check_edit_options
from vidiff.pipeline.layout import (
    CLI_NAMES, Layout, anchored_positions, extension_windows, interpolation_levels, resolve_layout,
)
from vidiff.sidecar import contact_sheet, numbered_outputs, sidecar_path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = Layout(16, 4, 5)


# ---- layout arithmetic ---------------------------------------------------------------------------------------
def test_layout_completes_from_what_is_given():
    assert resolve_layout(None, None, None, default=DEFAULT, max_gap=5) == DEFAULT
    assert resolve_layout(21, None, None, default=DEFAULT, max_gap=5) == Layout(21, 5, 5)
    assert resolve_layout(16, 6, None, default=DEFAULT, max_gap=5) == Layout(16, 6, 3)
    assert resolve_layout(None, 3, 2, default=DEFAULT, max_gap=5) == Layout(5, 3, 2)
    assert resolve_layout(16, None, 1, default=DEFAULT, max_gap=5) == Layout(16, 16, 1)
    # a length no grid at the default stride fits: the next longer grid, cut to the length asked
    twenty = resolve_layout(20, None, None, default=DEFAULT, max_gap=5)
    assert twenty == Layout(21, 5, 5, trim_to=20) and twenty.output_frames == 20
    assert resolve_layout(17, None, None, default=DEFAULT, max_gap=5) == Layout(21, 5, 5, trim_to=17)
    assert resolve_layout(16, None, None, default=DEFAULT, max_gap=5).output_frames == 16


def test_layout_misfit_says_which_counts_fit():
    # named as the Python API's arguments by default, as the command line's flags when the CLI asks
    with pytest.raises(InputError, match=r"^num_frames 20 .*fit: 16, 21"):
        resolve_layout(20, None, None, default=DEFAULT, max_gap=5, exact=True)
    with pytest.raises(InputError, match=r"^--frames 20 .*fit: 16, 21"):
        resolve_layout(20, None, None, default=DEFAULT, max_gap=5, exact=True, names=CLI_NAMES)
    with pytest.raises(InputError, match=r"^num_frames 16 does not fit 4 keyframes at stride 4 .* = 13"):
        resolve_layout(16, 4, 4, default=DEFAULT, max_gap=5)
    with pytest.raises(InputError, match="^num_frames must be an integer >= 2"):
        resolve_layout(0, None, None, default=DEFAULT, max_gap=5)
    with pytest.raises(InputError, match="^--keyframes must be an integer >= 2"):
        resolve_layout(None, 1, None, default=DEFAULT, max_gap=5, names=CLI_NAMES)
    with pytest.raises(InputError, match=r"^keyframe_stride 7 .*strides that work: 1, 2, 3, 4, 5, 6, 8"):
        resolve_layout(None, None, 7, default=DEFAULT, max_gap=5)


def test_layout_misfit_suggests_only_trained_strides():
    """--frames 20 --keyframes 4 suggested 19 and 22 (strides 6 and 7), which a part trained on strides 3..5 then
    refused; with the part's recorded strides only counts at those strides are suggested."""
    with pytest.raises(InputError, match=r"fit: 16, 19, 22$"):
        resolve_layout(20, 4, None, default=DEFAULT, max_gap=8)  # no record: every fillable stride
    for frames, fits in ((20, "10, 13, 16"), (2, "10, 13, 16"), (33, "10, 13, 16")):
        with pytest.raises(InputError, match=f"fit: {fits}$"):
            resolve_layout(frames, 4, None, default=DEFAULT, max_gap=8, strides=(3, 5))
    with pytest.raises(InputError, match=r"fit: 25, 33, 41$"):
        resolve_layout(80, 9, None, default=DEFAULT, max_gap=8, strides=(3, 5))


def test_unfillable_stride_suggests_only_trained_strides():
    """--stride 11 listed strides 1..10, 12, ... while the keyframe part takes only 3..5 (each then refused as
    untrained); with the part's recorded strides only those are suggested, and every fillable one without."""
    with pytest.raises(InputError, match=r"^--stride 11 .*strides that work: 3, 4, 5 \(the fillable strides the "
                                         r"keyframe part was trained on\)$"):
        resolve_layout(None, None, 11, default=DEFAULT, max_gap=8, names=CLI_NAMES, strides=(3, 5))
    with pytest.raises(InputError, match=r"strides that work: 6, 8, 9, 10, 12 \(the fillable"):
        resolve_layout(None, None, 7, default=DEFAULT, max_gap=5, strides=(6, 14))
    with pytest.raises(InputError, match=r"strides that work: 1, 2, .*, 21$"):
        resolve_layout(None, None, 11, default=DEFAULT, max_gap=8)  # no record


def test_anchored_positions_lay_the_grid_around_user_keyframes():
    # all keyframes the user's and every stretch within one fill: nothing is generated
    assert anchored_positions([0, 7, 15], 16, 5, 8) == [0, 7, 15]
    # otherwise every stretch longer than the stride is split evenly, the clip's ends always keyframes
    assert anchored_positions([7], 16, 5, 8) == [0, 4, 7, 11, 15]
    assert anchored_positions([0, 12], 16, 5, 8) == [0, 4, 8, 12, 15]
    assert anchored_positions([0, 15], 16, 5, 8) == [0, 5, 10, 15]
    for anchors, frames, stride in (([2], 33, 4), ([5, 6, 30], 41, 3), ([0, 9], 10, 5)):
        positions = anchored_positions(anchors, frames, stride, 8)
        assert set(anchors) | {0, frames - 1} <= set(positions) and positions == sorted(set(positions))
        assert max(b - a for a, b in zip(positions, positions[1:])) <= stride
    with pytest.raises(InputError, match="no user keyframes"):
        anchored_positions([], 16, 5, 8)


def test_anchored_layouts_outside_the_training_ranges_are_named():
    from vidiff.pipeline.trained import TrainedOn
    from vidiff.pipeline.trained_layouts import anchored_problems

    kf = TrainedOn(stage="keyframes", num_frames=(3, 9), frame_strides=(3, 5), known_patterns=("random_subset",))
    it = TrainedOn(stage="interpolation", num_frames=(3, 9), frame_strides=(1, 1))
    assert anchored_problems([0, 4, 7, 11, 15], [7], kf, it) == []
    assert anchored_problems([0, 7, 15], [0, 7, 15], kf, it) == []  # no keyframe pass: only the fills count
    assert anchored_problems([0, 9, 18], [0, 9, 18], kf, it) == [
        "a fill of 10 frames (the interpolation part was trained on windows of 3..9 frames spaced 1 apart)"]
    problems = anchored_problems([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [4], kf, it)
    assert problems[0].startswith("11 keyframes") and "1.00 frames apart" in problems[1]
    kf_first = TrainedOn(stage="keyframes", num_frames=(3, 9), frame_strides=(3, 5), known_patterns=("first",))
    assert "known keyframes as 'random_subset'" in anchored_problems([0, 4, 7, 11, 15], [7], kf_first, it)[0]
    assert anchored_problems([0, 4, 8, 12, 15], [0], kf_first, it) == []


def test_interpolation_levels_multiply_to_the_gap():
    assert interpolation_levels(1, 5) == []
    assert interpolation_levels(5, 5) == [(5, 5)]
    assert interpolation_levels(10, 5) == [(10, 5), (2, 2)]
    assert interpolation_levels(7, 5) is None
    for gap in range(2, 60):
        levels = interpolation_levels(gap, 4)
        if levels is None:
            continue
        assert np.prod([n for _, n in levels]) == gap
        assert all(n <= 4 for _, n in levels)
        assert all(g // n == nxt for (g, n), (nxt, _) in zip(levels, levels[1:]))


@pytest.mark.parametrize("num_input,num_new", [(1, 1), (8, 12), (16, 40), (3, 5)])
def test_extension_windows_cover_the_new_frames(num_input, num_new):
    windows = extension_windows(num_input, num_new, 4, 5)
    last = num_input - 1
    for w in windows:
        assert w.start + (w.num_known - 1) * 5 == last  # the last known keyframe is the current last frame
        assert w.start >= 0 and 1 <= w.num_known <= 2
        last = w.start + 3 * 5
    assert last >= num_input - 1 + num_new > last - 5 * (4 - windows[-1].num_known)


# ---- pipeline.yaml -------------------------------------------------------------------------------------------
def test_pipeline_yaml_round_trip_and_errors(tmp_path):
    cfg = PipelineConfig(num_frames=21, num_keyframes=5)
    write_pipeline_yaml(cfg, tmp_path)
    for part in ("vae", "keyframes", "interpolation"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "config.yaml").write_text("{}")
        (tmp_path / part / "model.safetensors").write_bytes(b"garbage")
    assert read_pipeline_folder(tmp_path) == cfg
    with pytest.raises(ConfigError, match="keyframes.stepz"):
        pipeline_config_from_dict({"keyframes": {"stepz": 3}})
    with pytest.raises(ConfigError, match="num_frames 17 does not fit"):
        pipeline_config_from_dict({"num_frames": 17})
    with pytest.raises(ConfigError, match="interpolation.steps"):
        pipeline_config_from_dict({"interpolation": {"steps": 0}})
    (tmp_path / "keyframes" / "model.safetensors").unlink()
    with pytest.raises(InputError, match="part 'keyframes' is missing"):
        read_pipeline_folder(tmp_path)
    (tmp_path / "keyframes" / "model.safetensors").mkdir()  # was called missing too
    with pytest.raises(InputError, match="part 'keyframes': .*model.safetensors is a folder, not a file"):
        read_pipeline_folder(tmp_path)
    (tmp_path / "keyframes" / "model.safetensors").rmdir()
    os.mkfifo(tmp_path / "keyframes" / "model.safetensors")
    with pytest.raises(InputError, match="model.safetensors is not a regular file"):
        read_pipeline_folder(tmp_path)


def test_sampler_names_match_the_diffusion_module():
    diffusion = pytest.importorskip("vidiff.diffusion")
    assert set(SAMPLERS) == set(diffusion.SAMPLERS)


# ---- sidecar helpers -----------------------------------------------------------------------------------------
def test_contact_sheet_places_frames_in_a_grid():
    frames = np.stack([np.full((4, 6, 3), i * 10, np.uint8) for i in range(5)])
    sheet = contact_sheet(frames, columns=3, gap=1, background=255)
    assert sheet.shape == (2 * 4 + 3, 3 * 6 + 4, 3)
    assert (sheet[1:5, 1:7] == 0).all() and (sheet[1:5, 15:21] == 20).all()
    assert (sheet[6:10, 8:14] == 40).all()  # frame 4: row 1, column 1
    assert (sheet[6:10, 15:21] == 255).all()  # the empty sixth cell


def test_output_names():
    assert numbered_outputs("o/out.mp4", 1) == [Path("o/out.mp4")]
    assert numbered_outputs("o/out.gif", 3)[2] == Path("o/out_002.gif")
    assert numbered_outputs("o/out.gif", 1000)[-1] == Path("o/out_999.gif")
    # past 1000 every name gets the digits of the last, so names sort as the samples do (out_1000 sat between
    # out_100 and out_101)
    many = numbered_outputs("out.mp4", 1001)
    assert many[0] == Path("out_0000.mp4") and many[-1] == Path("out_1000.mp4") and sorted(many) == many
    assert sidecar_path("o/out.mp4") == Path("o/out.mp4.json")


def test_derived_seeds_are_stable_and_distinct():
    from vidiff.random import derive_seed

    assert derive_seed(3, "keyframes") == derive_seed(3, "keyframes")
    seeds = {derive_seed(s, k) for s in range(50) for k in ("keyframes", "interp", ("extend", 0))}
    assert len(seeds) == 150 and all(0 <= s < 2**63 for s in seeds)
    # the stream of a key is the sha256 of its repr (what the bundled hashes were made with)
    import hashlib

    assert derive_seed(3, "keyframes") == int.from_bytes(hashlib.sha256(b"(3, 'keyframes')").digest()[:8], "little") >> 1


# ---- generation with tiny random parts -------------------------------------------------------------------------
class HashText:
    """Test text encoder: a fixed random embedding per prompt (no model download, deterministic)."""

    dim = 384
    identifier = "hash-text"

    def encode(self, prompts):
        rows = [torch.randn(5, self.dim, generator=torch.Generator().manual_seed(sum(map(ord, p)) + len(p)))
                for p in prompts]
        return torch.stack(rows), torch.ones(len(prompts), 5, dtype=torch.bool)  # (B,5,D), (B,5)


@pytest.fixture(scope="module")
def pipe(load_tool):
    pytest.importorskip("vidiff.models.unet3d")
    from vidiff.pipeline import VideoPipeline

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny layers on a shared 2-core machine: one thread is the fastest
    tool = load_tool("make_random_pipeline")
    vae, kf, it = tool.random_parts(tiny=True, seed=0)
    yield VideoPipeline(tool.pipeline_config(steps=2), vae, kf, it, HashText())
    torch.set_num_threads(threads)


def test_edit_of_a_short_or_misfit_clip_offers_only_trained_layouts(pipe):
    """A 2-frame clip was offered "frame counts that fit: 6, 11" by edit_video, and 6 frames (2 keyframes) is then
    refused by the layout check: a clip shorter than every trained grid is now called too short, with the shortest
    length the parts take, and a misfit length is offered only the lengths and strides within the records."""
    from vidiff.pipeline.trained import TrainedOn

    kf = TrainedOn("keyframes", num_frames=(3, 9), frame_strides=(3, 5), known_patterns=("none", "first"))
    it = TrainedOn("interpolation", num_frames=(3, 9), frame_strides=(1, 1))
    saved = pipe.trained
    try:
        pipe.trained = {"keyframes": kf, "interpolation": it}
        for n in (1, 2, 6):  # 1 frame was told 2 frames or more
            counted = "1 frame" if n == 1 else f"{n} frames"
            with pytest.raises(InputError, match=rf"^frames: the clip has {counted}: too short for this pipeline, "
                                                 r"which edits clips of 7 frames or more \(3 keyframes at stride 3,"):
                pipe.edit_video(torch.zeros(n, 64, 64, 3, dtype=torch.uint8), "x", progress=False)
        with pytest.raises(InputError, match=r"stride 5 .*clip lengths that fit at stride 5: 11$"):
            pipe.edit_video(torch.zeros(8, 64, 64, 3, dtype=torch.uint8), "x", progress=False)
        with pytest.raises(InputError, match=r"keyframe_stride=3 fits it; clip lengths that fit at stride 5: 11$"):
            pipe.edit_video(torch.zeros(7, 64, 64, 3, dtype=torch.uint8), "x", progress=False)
    finally:
        pipe.trained = saved


def test_same_seed_same_frames_whatever_the_batch(pipe):
    a, fps = pipe.text_to_video("a red circle moving left", seed=7, progress=False)
    b, _ = pipe.text_to_video("a red circle moving left", seed=7, progress=False)
    both, _ = pipe.text_to_video(["a red circle moving left", "a blue square moving up"], seed=[7, 8], progress=False)
    other, _ = pipe.text_to_video("a red circle moving left", seed=8, progress=False)
    assert a.shape == (16, 64, 64, 3) and a.dtype == torch.uint8 and fps == 8.0
    assert torch.equal(a, b) and torch.equal(a, both[0])
    assert both.shape == (2, 16, 64, 64, 3)
    assert not torch.equal(a, other)


def test_animate_keeps_the_image_as_known_first_keyframe(pipe, monkeypatch):
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    decoded = []
    decode = pipe.vae.decode_to_frames
    monkeypatch.setattr(pipe.vae, "decode_to_frames", lambda z, **kw: decoded.append(z.clone()) or decode(z, **kw))
    frames, _ = pipe.image_to_video(image, "a red circle moving left", seed=1, progress=False)
    assert frames.shape == (16, 64, 64, 3) and torch.equal(frames[0], image)
    expected = pipe.vae.encode_frames(image[None])[0, :, 0]  # (C,h,w)
    assert torch.equal(decoded[0][0, :, 0], expected)
    assert not torch.equal(decoded[0][0, :, 5], expected)


def test_user_keyframe_images_are_checked(pipe):
    image = torch.zeros(64, 64, 3, dtype=torch.uint8)
    with pytest.raises(InputError, match=r"keyframes: index 16 is not a frame of the clip of 16 frames \(0\.\.15, or -1\.\.-16 from its end\)"):
        pipe.text_to_video("x", keyframes={16: image}, progress=False)
    with pytest.raises(InputError, match=r"index -17 is not a frame of the clip"):
        pipe.text_to_video("x", keyframes={-17: image}, progress=False)
    with pytest.raises(InputError, match=r"keyframes: index 1.5 is not a frame index"):
        pipe.text_to_video("x", keyframes={1.5: image}, progress=False)
    with pytest.raises(InputError, match=r"keyframes: frame 15 is given twice"):
        pipe.text_to_video("x", keyframes={15: image, -1: image}, progress=False)
    with pytest.raises(InputError, match="image: 32x64 pixels, the clip is 64x64"):
        pipe.image_to_video(image[:, :32], "x", progress=False)
    with pytest.raises(InputError, match="^height: must be an integer .*got '64'"):  # was "image: 64x64 ..., the clip is 64x64"
        pipe.image_to_video(image, "x", height="64", progress=False)
    with pytest.raises(InputError, match="^width: must be an integer .*got 0"):
        pipe.image_to_video(image, "x", width=0, progress=False)
    with pytest.raises(InputError, match="keyframes\\[7\\]: image is 32x64"):
        pipe.text_to_video("x", keyframes={7: image[:, :32]}, progress=False)
    with pytest.raises(InputError, match="^keyframes: expected a dict of frame index -> image, got list"):
        pipe.image_to_video(image, "x", keyframes=[image], progress=False)
    # a stack of images asked for its truth value (`keyframes or {}`): RuntimeError / ValueError "ambiguous"
    stack = torch.zeros(4, 64, 64, 3, dtype=torch.uint8)
    for given, named in ((stack, "Tensor"), (stack.numpy(), "ndarray")):
        with pytest.raises(InputError, match=f"^keyframes: expected a dict of frame index -> image, got {named}$"):
            pipe.text_to_video("x", keyframes=given, progress=False)
        with pytest.raises(InputError, match=f"^keyframes: expected a dict of frame index -> image, got {named}$"):
            pipe.image_to_video(image, "x", keyframes=given, progress=False)


def test_numpy_scalars_are_taken_as_the_numbers_they_hold(pipe):
    # strength / repeats / feather / control_scale / a keyframe index from numpy were refused with messages that
    # contradicted themselves: "strength: must be a number in [0, 1], got np.float32(0.0)"
    from vidiff.pipeline.control import check_control_scale

    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8))
    a, _ = pipe.edit_video(frames, "x", strength=np.float32(0.0), repeats=np.int64(2), progress=False)
    b, _ = pipe.edit_video(frames, "x", strength=0.0, repeats=2, progress=False)
    assert torch.equal(a, b)
    mask = np.zeros((64, 64), bool)
    mask[16:32, 16:32] = True
    a, _ = pipe.edit_video(frames, "x", mask=mask, strength=np.float32(0.0), feather=np.int64(2), progress=False)
    b, _ = pipe.edit_video(frames, "x", mask=mask, strength=0.0, feather=2, progress=False)
    assert torch.equal(a, b)
    assert check_control_scale(np.float32(0.5)) == 0.5
    a, _ = pipe.text_to_video("x", keyframes={np.int64(5): frames[0]}, seed=3, progress=False)
    b, _ = pipe.text_to_video("x", keyframes={5: frames[0]}, seed=3, progress=False)
    assert torch.equal(a, b) and torch.equal(a[5], frames[0])


def test_numpy_and_tensor_bools_are_taken_as_the_flags_they_hold(pipe):
    # progress=np.False_ (a numpy comparison, a flag read from an array) was refused as "expected True or False,
    # got np.False_"; the flag is kept as a Python bool, and a value that is no bool is still refused
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8))
    a, _ = pipe.text_to_video("x", seed=3, progress=np.False_, force_layout=np.bool_(False))
    b, _ = pipe.text_to_video("x", seed=3, progress=False, force_layout=False)
    assert torch.equal(a, b)
    assert pipe.request("x", force_layout=torch.tensor(True)).force_layout is True
    assert torch.equal(pipe.fill_between(frames[::5], 5, progress=np.False_, force_layout=np.array(False)),
                       pipe.fill_between(frames[::5], 5))
    a, _ = pipe.edit_video(frames, "x", strength=0.0, progress=torch.tensor(False))
    assert torch.equal(a, pipe.edit_video(frames, "x", strength=0.0, progress=False)[0])
    for flag in (np.int64(0), np.array([False]), torch.tensor([True])):
        with pytest.raises(InputError, match="^progress: expected True or False, got "):
            pipe.text_to_video("x", progress=flag)


def test_arrays_of_objects_or_strings_are_refused_naming_the_argument(pipe):
    # torch.from_numpy raised TypeError "can't convert np.ndarray of type numpy.object_"
    with pytest.raises(InputError, match=r"image: expected a uint8 image \(H,W,3\), got numpy object \(64, 64, 3\)"):
        pipe.image_to_video(np.full((64, 64, 3), None, dtype=object), "x", progress=False)
    with pytest.raises(InputError, match="frames: expected uint8 frames .*got numpy <U1"):
        pipe.extend_video(np.full((6, 64, 64, 3), "a"), "x", num_frames=5, progress=False)
    frames = torch.zeros(16, 64, 64, 3, dtype=torch.uint8)
    with pytest.raises(InputError, match="mask: expected a bool, uint8 or float array, got object"):
        pipe.edit_video(frames, "x", mask=np.full((64, 64), True, dtype=object), progress=False)
    # a uint16 image in big-endian order: torch's ValueError "byte order different from the native byte order"
    with pytest.raises(InputError, match=r"^image: expected a uint8 image \(H,W,3\), got numpy >u2 \(64, 64, 3\)$"):
        pipe.image_to_video(np.zeros((64, 64, 3), ">u2"), "x", progress=False)


def test_a_float64_default_dtype_of_the_caller_changes_nothing(pipe):
    """Under torch.set_default_dtype(torch.float64), text_to_video made other frames (its known latents and noise
    buffers were float64) and extend_video failed mid-way ("Index put requires the source and destination dtypes
    match"). Every entry point runs with the float32 default and gives the caller's back, also after an error."""
    clip = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8))
    calls = {"text_to_video": lambda: pipe.text_to_video("x", seed=2, progress=False)[0],
             "image_to_video": lambda: pipe.image_to_video(clip[0], "x", seed=2, progress=False)[0],
             "extend_video": lambda: pipe.extend_video(clip[:6], "x", num_frames=5, seed=2, progress=False)[0],
             "edit_video": lambda: pipe.edit_video(clip, "x", seed=2, progress=False)[0],
             "fill_between": lambda: pipe.fill_between(clip[::5], 5, seed=2)}
    expected = {name: call() for name, call in calls.items()}
    torch.set_default_dtype(torch.float64)
    try:
        for name, call in calls.items():
            assert torch.equal(call(), expected[name]), name
            assert torch.get_default_dtype() == torch.float64, name
        with pytest.raises(InputError, match="^steps"):
            pipe.text_to_video("x", steps=0, progress=False)
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(torch.float32)


def test_a_prompt_that_is_no_string_is_refused_naming_it(pipe):
    # the prompt notes deduplicated the prompts first: a list, dict or array (or a list holding one) raised
    # TypeError "unhashable type" before request() could name the prompt
    frames = torch.zeros(16, 64, 64, 3, dtype=torch.uint8)
    calls = {"text_to_video": lambda p: pipe.text_to_video(p, progress=False),
             "image_to_video": lambda p: pipe.image_to_video(frames[0], p, progress=False),
             "edit_video": lambda p: pipe.edit_video(frames, p, progress=False)}
    for name, call in calls.items():
        for prompt in (np.array(["x"]), [["x"]], {"x": 1}, ["x", {"y"}]):
            with pytest.raises(InputError, match=r"^prompt: expected a string, got (ndarray|list|dict|set) "):
                call(prompt)


def test_tensors_on_the_meta_device_are_refused_before_encoding(pipe):
    # they have a shape but no values: torch failed with NotImplementedError once the VAE encoded them
    meta = lambda *shape: torch.empty(*shape, dtype=torch.uint8, device="meta")  # noqa: E731
    with pytest.raises(InputError, match="image: a tensor on the meta device has no data"):
        pipe.image_to_video(meta(64, 64, 3), "x", progress=False)
    with pytest.raises(InputError, match="keyframes\\[5\\]: a tensor on the meta device"):
        pipe.text_to_video("x", keyframes={5: meta(64, 64, 3)}, progress=False)
    with pytest.raises(InputError, match="frames: a tensor on the meta device"):
        pipe.extend_video(meta(6, 64, 64, 3), "x", num_frames=5, progress=False)
    with pytest.raises(InputError, match="frames: a tensor on the meta device"):
        pipe.edit_video(meta(16, 64, 64, 3), "x", progress=False)
    with pytest.raises(InputError, match="keyframes: a tensor on the meta device"):
        pipe.fill_between(meta(3, 64, 64, 3), 5)
    frames = torch.zeros(16, 64, 64, 3, dtype=torch.uint8)
    with pytest.raises(InputError, match="mask: a tensor on the meta device"):
        pipe.edit_video(frames, "x", mask=torch.empty(64, 64, device="meta"), progress=False)


def _record_stage_runs(pipe, monkeypatch):
    """[(stage name, latent shape, frame_stride, known_mask)] of every stage call of the next request."""
    calls = []
    for name in ("keyframes", "interpolation"):
        stage = getattr(pipe, name)
        run = stage.run

        def record(shape, gens, settings, cond, *rest, _name=name, _run=run, **kw):
            calls.append((_name, tuple(shape), cond.frame_stride.tolist(), cond.known_mask.clone()))
            return _run(shape, gens, settings, cond, *rest, **kw)

        monkeypatch.setattr(stage, "run", record)
    return calls


def test_user_keyframes_off_the_grid_get_a_grid_laid_around_them(pipe, monkeypatch):
    rng = np.random.default_rng(3)
    images = {i: torch.from_numpy(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for i in (0, 7, 15)}
    calls = _record_stage_runs(pipe, monkeypatch)
    frames, _ = pipe.text_to_video("a red circle moving left", keyframes=images, seed=1, progress=False)
    assert frames.shape == (16, 64, 64, 3) and all(torch.equal(frames[i], images[i]) for i in images)
    # max_gap 5, stride 5: stretches 7 and 8 get one keyframe each, at 4 and 11; the user's are known
    name, shape, stride, known = calls[0]
    assert name == "keyframes" and shape[1] == 5 and stride == [3.75]
    assert known.tolist() == [[1.0, 0.0, 1.0, 0.0, 1.0]]
    # then the gaps 4, 3, 4, 4 of 0, 4, 7, 11, 15: one call per gap size, windows of gap + 1 frames
    fills = [(c[1][1], len(c[3])) for c in calls[1:]]
    assert [c[0] for c in calls[1:]] == ["interpolation"] * 2 and fills == [(5, 3), (4, 1)]
    # a negative index counts from the end: -1 is frame 15, the same clip
    from_end, _ = pipe.text_to_video("a red circle moving left", keyframes={0: images[0], 7: images[7], -1: images[15]},
                                     seed=1, progress=False)
    assert torch.equal(from_end, frames)


def test_user_keyframes_close_enough_need_no_keyframe_pass(pipe, monkeypatch):
    rng = np.random.default_rng(4)
    images = {i: torch.from_numpy(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for i in (0, 3, 7, 11, 15)}
    calls = _record_stage_runs(pipe, monkeypatch)
    decoded = []
    decode = pipe.vae.decode_to_frames
    monkeypatch.setattr(pipe.vae, "decode_to_frames", lambda z, **kw: decoded.append(z.clone()) or decode(z, **kw))
    frames, _ = pipe.text_to_video("a red circle moving left", keyframes=images, seed=1, progress=False)
    assert [c[0] for c in calls] == ["interpolation"] * 2  # gaps 3 and 4: no keyframe is generated
    assert all(torch.equal(frames[i], images[i]) for i in images)
    for i, image in images.items():  # the timeline holds each user frame's latents exactly as encoded
        assert torch.equal(decoded[0][0, :, i], pipe.vae.encode_frames(image[None])[0, :, 0])


def test_extend_keeps_the_input_and_adds_the_new_frames(pipe, monkeypatch):
    clip = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8))
    decoded = []
    decode = pipe.vae.decode_to_frames
    monkeypatch.setattr(pipe.vae, "decode_to_frames", lambda z, **kw: decoded.append(z.clone()) or decode(z, **kw))
    out, fps = pipe.extend_video(clip, "a red circle moving left", num_frames=12, seed=2, progress=False)
    assert out.shape == (20, 64, 64, 3) and torch.equal(out[:8], clip)
    # before anything is pasted: the timeline decoded from the last input frame on starts with that frame's
    # latents exactly as encoded (the known keyframe the windows were sampled around), then 12 new frames
    assert decoded[0].shape[2] == 1 + 12
    assert torch.equal(decoded[0][0, :, 0], pipe.vae.encode_frames(clip[[2, 7]])[0, :, 1])  # keyframes 2 and 7
    with pytest.raises(InputError, match="num_frames"):
        pipe.extend_video(clip, "x", num_frames=0, progress=False)
    with pytest.raises(InputError, match="seam_fade"):
        pipe.extend_video(clip, "x", num_frames=3, seam_fade=-1, progress=False)
    with pytest.raises(InputError, match=r"seam_fade: .* in \[0, 1024\], got 100000000000000000000"):
        pipe.extend_video(clip, "x", num_frames=3, seam_fade=10**20, progress=False)  # OverflowError after sampling
    plain, _ = pipe.extend_video(clip, "a red circle moving left", num_frames=12, seed=2, seam_fade=0, progress=False)
    assert torch.equal(plain[:8], clip) and torch.equal(plain[12:], out[12:])  # the fade is over after 4 frames
    assert not torch.equal(plain[8:12], out[8:12])
    monkeypatch.undo()


def test_extend_decodes_across_the_seam_with_a_temporal_decoder(pipe):
    """Input frame 5 is no known keyframe (those are 2 and 7): it reaches the new frames only through the decoding
    context of a temporal decoder, and not at all through a per-frame one."""
    import dataclasses

    from vidiff.pipeline import VideoPipeline
    from vidiff.vae import AutoencoderKL

    temporal_vae = AutoencoderKL(dataclasses.replace(pipe.vae.config, temporal_decoder=True)).eval()
    temporal_vae.load_state_dict(pipe.vae.state_dict(), strict=False)
    with torch.no_grad():
        for block in temporal_vae.decoder.temporal:
            block.conv2.weight.normal_(0.0, 0.2, generator=torch.Generator().manual_seed(3))
    temporal = VideoPipeline(pipe.config, temporal_vae, pipe.keyframes.net, pipe.interpolation.net, HashText())
    clip = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8))
    edited = clip.clone()
    edited[5] = 255 - edited[5]
    for p, depends in ((pipe, False), (temporal, True)):
        a, _ = p.extend_video(clip, "a red circle moving left", num_frames=6, seed=2, progress=False)
        b, _ = p.extend_video(edited, "a red circle moving left", num_frames=6, seed=2, progress=False)
        assert torch.equal(a[:5], b[:5]) and torch.equal(a[6:8], b[6:8])  # the input comes back as given
        assert torch.equal(a[8:], b[8:]) != depends


def test_seam_fade_makes_the_first_step_a_decoded_step():
    from vidiff.pipeline.seam import carry_seam_residual

    g = torch.Generator().manual_seed(0)
    last = torch.randint(100, 156, (4, 5, 3), generator=g).to(torch.uint8)
    decoded = torch.randint(100, 156, (2, 7, 4, 5, 3), generator=g).to(torch.uint8)  # last as decoded, then 6 new
    new = carry_seam_residual(last, decoded, fade=4)
    assert new.shape == (2, 6, 4, 5, 3)
    # across the seam: exactly the decoded step from the last frame to the first new one
    assert torch.equal(new[:, 0].int() - last.int(), decoded[:, 1].int() - decoded[:, 0].int())
    half = decoded[:, 3].float() + 0.5 * (last.float() - decoded[:, 0].float())  # weight 1 - 2/4
    assert torch.equal(new[:, 2], half.round().clamp(0, 255).to(torch.uint8))
    assert torch.equal(new[:, 4:], decoded[:, 5:])  # weight 0 from frame `fade` on
    assert torch.equal(carry_seam_residual(last, decoded, fade=0), decoded[:, 1:])


@pytest.mark.parametrize("stride", [5, 10])
def test_fill_between_keeps_keyframes(pipe, stride):
    keys = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8))
    frames = pipe.fill_between(keys, stride, seed=4)
    assert frames.shape == (2 * stride + 1, 64, 64, 3)
    assert torch.equal(frames[::stride], keys)
    assert not torch.equal(frames[1], frames[0])


def test_to_names_a_dtype_given_as_a_string(pipe):
    with pytest.raises(InputError, match="^dtype: expected torch.float32, torch.bfloat16 or torch.float16, got str 'float16'"):
        pipe.to(dtype="float16")
    with pytest.raises(InputError, match="got torch.int8"):
        pipe.to(dtype=torch.int8)


def test_to_takes_a_dtype_given_in_the_device_place(pipe):
    """pipe.to(torch.bfloat16), as torch modules and diffusers' pipelines take it, was refused as a device."""
    from vidiff.pipeline import VideoPipeline

    half = VideoPipeline(pipe.config, copy_module(pipe.vae), copy_module(pipe.keyframes.net),
                         copy_module(pipe.interpolation.net), pipe.text_encoder)
    assert half.to(torch.bfloat16) is half
    assert {p.dtype for p in half.keyframes.net.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in half.vae.parameters()} == {torch.bfloat16}
    with pytest.raises(InputError, match="^to: two dtypes given, torch.float16 and dtype=torch.float32"):
        half.to(torch.float16, dtype=torch.float32)
    assert {p.dtype for p in half.interpolation.net.parameters()} == {torch.bfloat16}  # nothing moved


def test_a_cast_back_to_float32_says_the_weights_stay_rounded(pipe):
    """pipe.to(torch.bfloat16) then .to(torch.float32) made frames that differed from the float32 pipeline's (up to 3
    levels on the bundled Shapes pipeline) without a word; the cast back now says so, at the caller's line, once."""
    from vidiff.pipeline import VideoPipeline

    half = VideoPipeline(pipe.config, copy_module(pipe.vae), copy_module(pipe.keyframes.net),
                         copy_module(pipe.interpolation.net), pipe.text_encoder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        half.to(torch.float32)  # float32 to float32: nothing rounded, nothing said
        half.to(torch.bfloat16)
    with pytest.warns(UserWarning, match=r"^to\(torch.float32\): the parts hold torch.bfloat16 weights, whose "
                                         r"rounding a cast does not undo") as said:
        half.to(torch.float32)
    assert len(said) == 1 and said[0].filename == __file__
    assert {p.dtype for p in half.vae.parameters()} == {torch.float32}  # cast all the same
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        half.to(dtype=torch.float32)  # the parts are float32 now: said once, not at every later cast


def test_a_device_the_parts_cannot_run_on_is_refused_before_the_weights_load(pipe, monkeypatch):
    from vidiff.pipeline import VideoPipeline

    # torch raised its own RuntimeError ("Expected one of cpu, cuda, ...") or AssertionError, after the load
    folder = pipe.folder
    monkeypatch.setattr("vidiff.pipeline.video_pipeline.load_pipeline", lambda *a: pytest.fail("weights loaded"))
    for device, message in (("banana", "^device: 'banana' is not a device"), ("meta", "^device: meta holds"),
                            (3.5, "is not a device")):
        with pytest.raises(InputError, match=message):
            VideoPipeline.from_pretrained(folder, device=device)
        with pytest.raises(InputError, match=message):
            pipe.to(device)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="^device: cuda:9: CUDA is not available here"):
            VideoPipeline.from_pretrained(folder, device="cuda:9")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match=r"^device: cuda:9: this machine has 1 CUDA device\(s\), cuda:0 to cuda:0"):
        VideoPipeline.from_pretrained(folder, device="cuda:9")


def test_fill_between_refuses_lists_of_seeds_or_prompts(pipe):
    # it filled a row per seed and returned the first only, as if one seed had been given
    keys = torch.zeros(2, 64, 64, 3, dtype=torch.uint8)
    with pytest.raises(InputError, match="^seed: fill_between fills one clip, give one seed"):
        pipe.fill_between(keys, 5, [1, 2])
    with pytest.raises(InputError, match="^prompt: fill_between fills one clip, give one prompt"):
        pipe.fill_between(keys, 5, prompt=["a", "b"])


def test_bad_settings_are_input_errors(pipe):
    for kwargs, match in [
        (dict(steps=0), "steps"), (dict(sampler="plms"), "sampler"), (dict(guidance_scale=float("nan")), "guidance"),
        (dict(image_guidance_scale=-1.0), "image_guidance"),
        (dict(num_frames=20, num_keyframes=4), "^num_frames 20 "),
        (dict(seed=[1, 2, 3], ), "2 prompts and 3 seeds"), (dict(height=62), "height"),
    ]:
        prompt = ["a", "b"] if "seed" in kwargs else "a"
        with pytest.raises(InputError, match=match):
            pipe.text_to_video(prompt, progress=False, **kwargs)


def test_numpy_scalars_are_the_numbers_they_hold(pipe):
    """np.random's np.int64 seed and an np.float32 scale were refused ("must be a finite number in [0, 100], got
    np.float32(2.0)"); they request exactly what the Python numbers do."""
    plain = pipe.request("a", seed=3, num_frames=16, steps=2, guidance_scale=2.0, fps=8.0)
    numpy = pipe.request("a", seed=np.int64(3), num_frames=np.int32(16), steps=np.int64(2),
                         guidance_scale=np.float32(2.0), fps=np.float32(8.0))
    assert numpy == plain and type(numpy.seeds[0]) is int and type(numpy.guidance_scale) is float
    assert pipe.request("a", seed=[np.int64(1), np.int64(2)]).seeds == [1, 2]
    with pytest.raises(InputError, match="seed"):
        pipe.request("a", seed=np.float64(1.5))


def test_0_dim_torch_tensors_are_the_numbers_they_hold(pipe):
    """guidance_scale=torch.tensor(3.0) and steps=torch.tensor(2) were refused ("must be an integer in [1, 1000],
    got tensor(2)") where np.float32 / np.int64 were taken; a 0-dim tensor now requests what its number does, and
    a tensor of 1 element or a bool one is still refused."""
    plain = pipe.request("a", seed=3, num_frames=16, steps=2, guidance_scale=3.0, fps=8.0)
    tensors = pipe.request("a", seed=torch.tensor(3), num_frames=torch.tensor(16), steps=torch.tensor(2),
                           guidance_scale=torch.tensor(3.0), fps=torch.tensor(8.0))
    assert tensors == plain and type(tensors.steps) is int and type(tensors.guidance_scale) is float
    for bad in (torch.tensor([2]), torch.tensor(True), torch.tensor(2.5)):
        with pytest.raises(InputError, match="^steps"):
            pipe.request("a", steps=bad)


def test_save_and_load_round_trip(pipe, tmp_path):
    pytest.importorskip("vidiff.text")
    from vidiff.pipeline import VideoPipeline

    pipe.save_pretrained(tmp_path / "p")
    rng = torch.get_rng_state()
    loaded = VideoPipeline.from_pretrained(tmp_path / "p")
    assert loaded.config == pipe.config
    # building the modules drew their initial weights from the caller's torch.manual_seed stream
    assert torch.equal(torch.get_rng_state(), rng)
    # under a float64 default (torch.set_default_dtype) the parts were built, loaded and run in float64
    torch.set_default_dtype(torch.float64)
    try:
        again = VideoPipeline.from_pretrained(tmp_path / "p")
        assert torch.get_default_dtype() == torch.float64  # the caller's, given back
    finally:
        torch.set_default_dtype(torch.float32)
    assert {p.dtype for net in (again.vae, *again._stage_nets()) for p in net.parameters()} == {torch.float32}
    for a, b in zip(pipe.keyframes.net.state_dict().values(), loaded.keyframes.net.state_dict().values()):
        assert torch.equal(a, b)
    assert json.loads(json.dumps(loaded.request("x").settings(loaded.config)))["num_frames"] == 16


def test_a_pipeline_folder_under_home_is_saved_and_loaded_there(pipe, tmp_path, monkeypatch):
    """save_pretrained("~/my-pipe") wrote a folder named "~" into the working directory (which `rm -r ~` then
    removes the wrong way), and from_pretrained("~/my-pipe") did not look in the home folder."""
    from vidiff.pipeline import VideoPipeline

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    assert pipe.save_pretrained("~/my-pipe") == home / "my-pipe"
    assert (home / "my-pipe" / "pipeline.yaml").is_file() and list(cwd.iterdir()) == []
    assert VideoPipeline.from_pretrained("~/my-pipe").config == pipe.config


def test_a_save_stopped_halfway_does_not_load(pipe, tmp_path, load_tool, monkeypatch):
    """Ctrl-C while save_pretrained overwrites a pipeline folder, after the VAE: the folder used to load, the new
    VAE under the old U-Nets and pipeline.yaml; now it has no pipeline.yaml until the save ends."""
    from vidiff import parts
    from vidiff.pipeline import VideoPipeline

    pipe.save_pretrained(tmp_path / "p")
    vae, kf, it = load_tool("make_random_pipeline").random_parts(tiny=True, seed=1)
    other = VideoPipeline(pipe.config, vae, kf, it, HashText())
    save_part = parts.save_part

    def stopped_after_the_vae(folder, *args):
        if Path(folder).name != pipe.config.parts.vae:
            raise KeyboardInterrupt
        return save_part(folder, *args)

    monkeypatch.setattr(parts, "save_part", stopped_after_the_vae)
    with pytest.raises(KeyboardInterrupt):
        other.save_pretrained(tmp_path / "p")
    with pytest.raises(InputError, match=r"missing pipeline.yaml\); it holds part folders, as it does while a "
                                         r"save_pretrained writes it .* or save again if one was stopped$"):
        VideoPipeline.from_pretrained(tmp_path / "p")
    monkeypatch.setattr(parts, "save_part", save_part)
    other.save_pretrained(tmp_path / "p")  # the next save completes it
    assert (tmp_path / "p" / "pipeline.yaml").is_file()


def test_discrete_schedule_spacing(pipe):
    from vidiff.diffusion import NoiseScheduleConfig, schedule_sigmas
    from vidiff.pipeline.config import StageConfig
    from vidiff.pipeline.stage import DiffusionStage

    stage = DiffusionStage(pipe.keyframes.net, StageConfig(spacing="trailing", schedule={"kind": "linear"}))
    sigmas = stage.sigmas(4)
    top = schedule_sigmas(NoiseScheduleConfig(kind="linear"))[-1]
    assert sigmas.shape == (5,) and sigmas[-1] == 0 and sigmas[0] == pytest.approx(float(top), rel=1e-5)
    with pytest.raises(ConfigError, match="kindd"):
        DiffusionStage(pipe.keyframes.net, StageConfig(spacing="trailing", schedule={"kindd": "linear"}))


def test_batched_rows_match_rowwise_up_to_rounding(pipe):
    from vidiff.pipeline import VideoPipeline

    fast = VideoPipeline(pipe.config, pipe.vae, pipe.keyframes.net, pipe.interpolation.net, pipe.text_encoder,
                         batch_invariant=False)
    a, _ = pipe.text_to_video(["a red circle", "a blue square"], seed=[1, 2], progress=False)
    b, _ = fast.text_to_video(["a red circle", "a blue square"], seed=[1, 2], progress=False)
    assert (a.int() - b.int()).abs().max() <= 2


def test_conditioning_inputs_follow_the_training_contract(pipe):
    """keyframes: frame_stride = S, cond_sigma 0 when nothing is known; interpolation: windows of S + 1 frames with
    both ends known, frame_stride 1, cond_sigma = the configured augmentation (docs/training.md)."""
    seen = {"kf": [], "it": []}

    def recorder(name):
        def hook(module, args):
            cond = args[2]  # UNet3D.forward(x, c_noise, cond)
            seen[name].append({"frame_stride": cond.frame_stride.clone(), "cond_sigma": cond.cond_sigma.clone(),
                               "cond_mask": cond.known_mask.clone(), "frames": args[0].shape[2]})
        return hook

    handles = [pipe.keyframes.net.register_forward_pre_hook(recorder("kf")),
               pipe.interpolation.net.register_forward_pre_hook(recorder("it"))]
    try:
        pipe.text_to_video("a red circle", seed=0, progress=False)
        kf_plain, it_plain = len(seen["kf"]), len(seen["it"])
        pipe.image_to_video(torch.zeros(64, 64, 3, dtype=torch.uint8), "a red circle", seed=0, progress=False)
    finally:
        for h in handles:
            h.remove()
    for call in seen["kf"]:
        assert call["frames"] == 4 and call["frame_stride"].tolist() == [5.0]
    assert all(c["cond_sigma"].tolist() == [0.0] and not c["cond_mask"].any() for c in seen["kf"][:kf_plain])
    animate_full = [c for c in seen["kf"][kf_plain:] if c["cond_mask"].any()]
    assert animate_full and all(c["cond_mask"].tolist() == [[1.0, 0.0, 0.0, 0.0]] for c in animate_full)
    assert all(c["cond_sigma"].tolist() == [pytest.approx(pipe.config.keyframes.cond_sigma)] for c in animate_full)
    assert it_plain == 3 * pipe.config.interpolation.steps  # 3 gaps, one pass each (scales 1: no guidance passes)
    for call in seen["it"]:
        assert call["frames"] == 6 and call["frame_stride"].tolist() == [1.0]
        assert call["cond_mask"].tolist() == [[1.0, 0.0, 0.0, 0.0, 0.0, 1.0]]
        assert call["cond_sigma"].tolist() == [pytest.approx(pipe.config.interpolation.cond_sigma)]


# ---- inference mode: nothing returned or stored carries an autograd graph ---------------------------------------
def test_no_generation_entry_point_builds_a_graph(pipe, monkeypatch):
    from vidiff.pipeline.stage import DiffusionStage

    seen = []
    run = DiffusionStage.run
    decode = pipe.vae.decode_to_frames
    encode = pipe.vae.encode_frames

    def record(name, value):
        seen.append((name, value.requires_grad, value.grad_fn is None, not torch.is_grad_enabled()))
        return value

    monkeypatch.setattr(DiffusionStage, "run", lambda self, *a, **k: record("stage", run(self, *a, **k)))
    monkeypatch.setattr(pipe.vae, "decode_to_frames", lambda z, **kw: record("decode_in", z) is z and decode(z, **kw))
    monkeypatch.setattr(pipe.vae, "encode_frames", lambda f: record("encode", encode(f)))
    image = torch.zeros(64, 64, 3, dtype=torch.uint8)
    clip = torch.zeros(6, 64, 64, 3, dtype=torch.uint8)
    outputs = [pipe.text_to_video("a", progress=False)[0], pipe.image_to_video(image, "a", progress=False)[0],
               pipe.extend_video(clip, "a", num_frames=5, progress=False)[0], pipe.fill_between(clip[:2], 5)]
    names = {name for name, *_ in seen}
    assert names == {"stage", "decode_in", "encode"}
    for name, requires_grad, no_grad_fn, grad_off in seen:
        assert not requires_grad and no_grad_fn and grad_off, name
    assert all(not o.requires_grad and o.grad_fn is None for o in outputs)
    assert any(p.requires_grad for p in pipe.keyframes.net.parameters())  # the graph was possible, and not built


def test_a_length_with_a_keyframe_count_that_misfits_says_what_the_length_alone_makes():
    """text_to_video(num_frames=64, num_keyframes=12) offered "frame counts that fit: 34, 45, 56", each refused in
    turn (the bundle's keyframe part takes 3..9), and num_frames=200 with 9 keyframes did not say that the length
    alone is made (one pass, then extension windows), as `vidiff generate --frames 200` makes it."""
    from vidiff.pipeline import VideoPipeline

    shapes = VideoPipeline.from_pretrained(REPO / "vidiff" / "bundled" / "shapes")
    with pytest.raises(InputError) as e:
        shapes.request("a", num_frames=64, num_keyframes=12)
    assert str(e.value) == ("num_keyframes 12: the keyframe part was trained on 3..9 keyframes (force_layout=True "
                            "runs more or fewer); without num_keyframes, 64 frames are made as a pass of 41 and "
                            "extension windows")
    with pytest.raises(InputError, match="fit: 25, 33, 41; or without num_keyframes, 200 frames are made as a pass"):
        shapes.request("a", num_frames=200, num_keyframes=9)
    with pytest.raises(InputError, match="counts that fit: 10, 13, 16$"):  # within one pass: the counts alone
        shapes.request("a", num_frames=20, num_keyframes=4)
    with pytest.raises(InputError, match="^keyframe_stride"):  # a stride that is no count is what is said
        shapes.request("a", num_frames=64, num_keyframes=12, keyframe_stride=0)
    with pytest.raises(InputError) as e:  # a grid that fits the length at an untrained stride (64 = 4 x 21)
        shapes.request("a", num_frames=64, num_keyframes=4)
    assert str(e.value).startswith("layout 64 frames = 4 keyframes x stride 21 needs keyframe stride 21")
    assert str(e.value).endswith("; or without num_keyframes, 64 frames are made as a pass of 41 and extension windows")
    assert shapes.request("a", num_frames=64, num_keyframes=4, force_layout=True).layout.keyframe_stride == 21
    for count in (2, 12):  # a length that is no clip is what is said, not offered alone ("1 frames are made")
        with pytest.raises(InputError, match="^num_frames must be an integer >= 2, got 1$"):
            shapes.request("a", num_frames=1, num_keyframes=count)


def test_a_length_past_the_frame_limit_is_named_as_given(pipe):
    """text_to_video(num_frames=1024) (within the 1024-frame limit, laid on the 1026-frame grid) said "num_frames /
    num_keyframes / keyframe_stride: 1026 / 206 / 5 exceed the limits 1024 / 256 / 256", values never given; the
    command line said what fits."""
    with pytest.raises(InputError) as e:
        pipe.request("a", num_frames=1024, keyframe_stride=5)
    assert str(e.value) == ("num_frames 1024 at keyframe stride 5 is sampled as 1026 frames and cut; the limit is 1024: "
                            "give num_frames 1021 or fewer")
    assert pipe.request("a", num_frames=1021, keyframe_stride=5).layout.num_frames == 1021
    with pytest.raises(InputError, match="^num_keyframes 256 at stride 5 make a clip of 1276 frames; the limit is 1024$"):
        pipe.request("a", num_keyframes=256, keyframe_stride=5)


# ---- what the parts were trained on ----------------------------------------------------------------------------
def test_requests_outside_the_trained_layout_are_refused(pipe):
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.trained import TrainedOn

    trained = {"keyframes": TrainedOn("keyframes", num_frames=(4, 4), frame_strides=(5, 5),
                                      known_patterns=("none", "first")),
               "interpolation": TrainedOn("interpolation", num_frames=(3, 6), frame_strides=(1, 1))}
    strict = VideoPipeline(pipe.config, pipe.vae, pipe.keyframes.net, pipe.interpolation.net, pipe.text_encoder,
                           trained=trained)
    a, _ = strict.text_to_video("a", seed=3, progress=False)  # the trained layout runs as before
    assert torch.equal(a, pipe.text_to_video("a", seed=3, progress=False)[0])
    with pytest.raises(InputError, match="num_keyframes 7: the keyframe part was trained on 4..4 keyframes [^;]*$"):
        strict.text_to_video("a", num_frames=31, num_keyframes=7, progress=False)  # no 'without num_keyframes': the
        # length alone is refused below (this part takes no leading known keyframes, which extension windows need)
    with pytest.warns(UserWarning, match="31 frames: longer than one pass"), \
            pytest.raises(InputError, match="'first_k'"):  # continued by extension, which this part cannot do
        strict.text_to_video("a", num_frames=31, progress=False)
    with pytest.raises(InputError, match=r"keyframe stride 4 .*trained on stride 5[^-]*\(force_layout=True runs it "
                                         r"anyway\)$"):  # the flag was named beside it, as on the command line
        strict.text_to_video("a", keyframe_stride=4, progress=False)
    with pytest.raises(InputError, match="spaced 2 apart"):  # a recursive fill: its coarse pass is at stride 2
        strict.fill_between(torch.zeros(2, 64, 64, 3, dtype=torch.uint8), 10)
    with pytest.raises(InputError, match="'random_subset'"):  # user keyframes away from frame 0
        strict.text_to_video("a", keyframes={5: torch.zeros(64, 64, 3, dtype=torch.uint8)}, progress=False)
    with pytest.raises(InputError, match="'first_k'"):  # extension seeds windows with the last 2 keyframes
        strict.extend_video(torch.zeros(8, 64, 64, 3, dtype=torch.uint8), "a", num_frames=3, progress=False)
    with pytest.warns(UserWarning, match="forced"):
        forced, _ = strict.text_to_video("a", keyframe_stride=4, force_layout=True, progress=False)
    assert forced.shape == (13, 64, 64, 3)
    sized = VideoPipeline(pipe.config, pipe.vae, pipe.keyframes.net, pipe.interpolation.net, pipe.text_encoder,
                          trained={**trained, "keyframes": dataclasses.replace(trained["keyframes"],
                                                                               latent_size=(16, 16))})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the trained size says nothing
        sized.text_to_video("a", steps=1, progress=False)
    with pytest.warns(UserWarning, match="height x width 32x32: the keyframe part was trained on 64x64 frames"):
        sized.text_to_video("a", steps=1, height=32, width=32, progress=False)


def test_a_clip_longer_than_one_pass_is_continued_by_extension_windows(pipe):
    """text_to_video(num_frames=31) on parts trained on 4 keyframes was refused where `vidiff generate --frames 31`
    made the clip: the longest trained pass, then extend_video windows, in Python too (rows of a batch alike)."""
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.trained import TrainedOn

    trained = {"keyframes": TrainedOn("keyframes", num_frames=(4, 4), frame_strides=(5, 5),
                                      known_patterns=("none", "first", "first_k"), max_first_k=2),
               "interpolation": TrainedOn("interpolation", num_frames=(3, 6), frame_strides=(1, 1))}
    strict = VideoPipeline(pipe.config, pipe.vae, pipe.keyframes.net, pipe.interpolation.net, pipe.text_encoder,
                           trained=trained)
    with pytest.warns(UserWarning, match="31 frames: longer than one pass"):
        long, fps = strict.text_to_video("a red circle", num_frames=31, seed=3, steps=2, progress=False)
    first, _ = strict.text_to_video("a red circle", seed=3, steps=2, progress=False)
    assert long.shape == (31, 64, 64, 3) and fps == pipe.config.fps
    assert torch.equal(long[:16], first)  # the first pass, kept as extend_video keeps its input
    same, _ = strict.extend_video(first, "a red circle", num_frames=15, seed=3, steps=2, progress=False)
    assert torch.equal(long, same)
    with pytest.warns(UserWarning, match="longer than one pass"):
        rows, _ = strict.text_to_video(["a red circle", "a blue square"], seed=[3, 4], num_frames=31, steps=2,
                                       progress=False)
    assert rows.shape == (2, 31, 64, 64, 3) and torch.equal(rows[0], long)


def test_a_long_clip_with_a_keyframe_off_the_grid_has_a_first_pass_that_holds_it():
    """num_frames=64 with a keyframe at 7 was refused: laid around it, the longest pass (41 frames) needs 10
    keyframes where the bundle's part was trained on 3..9, and the refusal offered 38 frames. The first pass is now
    the longest that holds it (36 frames, 8 + 1 keyframes), then extension windows to the 64 asked; the image comes
    back unchanged at 7. A keyframe past every such pass (38) is still refused, offered the grid, not a shorter clip."""
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.layout import Layout
    from vidiff.pipeline.long_layout import split_long_layout

    shapes = VideoPipeline.from_pretrained(REPO / "vidiff" / "bundled" / "shapes")
    record, interp = shapes.trained["keyframes"], shapes.trained["interpolation"]
    ask = shapes.request("a", num_frames=64).layout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        split = lambda keys: split_long_layout(record, ask, keys, max_gap=8, interpolation=interp)  # noqa: E731
        assert split([]) == split([5, 40]) == (Layout(41, 9, 5), 23)  # on the grid: the longest pass, as before
        assert split([7]) == split([7, 30]) == split([2, 7, 12]) == (Layout(36, 8, 5), 28)
        assert split([2, 23]) == (Layout(31, 7, 5), 33)  # a keyframe more for each: the next shorter pass
        with pytest.raises(InputError, match=r"keyframes at \[3, 34\] off the stride's grid .*11 keyframes"):
            split([3, 34])  # 36 frames need 10 keyframes around them, and 31 do not hold 34
        with pytest.raises(InputError, match=r"keyframes at \[5, 38\] \(\[38\] off the stride's grid\)"):
            split([5, 38])
    key = np.zeros((64, 64, 3), np.uint8)
    key[20:40, 10:30] = (230, 30, 30)
    with pytest.warns(UserWarning, match=r"64 frames: longer than one pass of this pipeline \(41 frames, 9 keyframes "
                                         r"at stride 5\); with keyframes off the stride's grid, the first pass is 36 "
                                         r"frames \(keyframes laid around them\); the other 28 frames are made"):
        clip, _ = shapes.text_to_video("a red circle moving left", num_frames=64, keyframes={7: key}, seed=2,
                                       steps=1, progress=False)
    assert clip.shape == (64, 64, 64, 3) and torch.equal(clip[7], torch.from_numpy(key))
    first, _ = shapes.text_to_video("a red circle moving left", num_frames=36, keyframes={7: key}, seed=2, steps=1,
                                    progress=False)
    assert torch.equal(clip[:36], first)  # the first pass, kept as extend_video keeps its input
    with pytest.raises(InputError) as e:
        shapes.text_to_video("a red circle moving left", num_frames=64, keyframes={38: key}, progress=False)
    assert str(e.value) == (
        "64 frames: longer than one pass of this pipeline (41 frames, 9 keyframes at stride 5), so the keyframes "
        "must lie in a first pass, and none holds keyframes at [38] off the stride's grid within the parts' "
        "training: laid around them, 41 frames need 10 keyframes at [0, 5, 10, 14, 19, 24, 28, 33, 38, 40] (the "
        "keyframe part was trained on 3..9); fits: keyframe 38 moved to 40 on the stride's grid")


def test_a_clip_shorter_than_the_fewest_trained_keyframes_is_cut_from_the_shortest_trained_grid(pipe):
    """num_frames 2..15 at stride 5 has 2-3 keyframes where the part was trained on 4: the 16-frame grid of the same
    stride is made and cut (it was refused); the frames are that clip's first ones. Explicit counts stay refused."""
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.layout import Layout, lift_short_layout
    from vidiff.pipeline.trained import TrainedOn

    assert lift_short_layout(Layout(6, 2, 5, trim_to=5), 4) == Layout(16, 4, 5, trim_to=5)
    assert lift_short_layout(Layout(6, 2, 5), 3) == Layout(11, 3, 5, trim_to=6)
    assert lift_short_layout(Layout(11, 3, 5), 3) == Layout(11, 3, 5) and lift_short_layout(Layout(6, 2, 5), None) \
        == Layout(6, 2, 5)
    trained = {"keyframes": TrainedOn("keyframes", num_frames=(4, 4), frame_strides=(5, 5), known_patterns=("none",)),
               "interpolation": TrainedOn("interpolation", num_frames=(3, 6), frame_strides=(1, 1))}
    strict = VideoPipeline(pipe.config, pipe.vae, pipe.keyframes.net, pipe.interpolation.net, pipe.text_encoder,
                           trained=trained)
    assert strict.request("a", num_frames=7).layout == Layout(16, 4, 5, trim_to=7)
    whole, _ = strict.text_to_video("a", seed=3, progress=False)
    for n in (2, 7, 11):
        short, _ = strict.text_to_video("a", num_frames=n, seed=3, progress=False)
        assert torch.equal(short, whole[:n]), n
    with pytest.raises(InputError, match="num_keyframes 2: the keyframe part was trained on 4..4 keyframes .*; without "
                                         "num_keyframes, 6 frames are made on a trained grid$"):
        strict.text_to_video("a", num_frames=6, num_keyframes=2, progress=False)


def test_a_short_clip_with_an_off_grid_keyframe_is_laid_on_the_lifted_grid(pipe):
    """num_frames=2 with keyframes={0: img} was lifted to the shortest trained grid and cut, but keyframes={1: img}
    (off the grid) laid its keyframes over the 2 frames alone (2 keyframes, 1 apart) and was refused as untrained;
    the off-grid path now lays them over the lifted grid too and cuts the clip to the length asked."""
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.layout import Layout, anchored_span
    from vidiff.pipeline.trained import TrainedOn

    assert anchored_span(Layout(11, 3, 5, trim_to=2)) == 11 and anchored_span(Layout(11, 3, 5, trim_to=6)) == 11
    assert anchored_span(Layout(21, 5, 5, trim_to=20)) == 20 and anchored_span(Layout(16, 4, 5)) == 16
    trained = {"keyframes": TrainedOn("keyframes", num_frames=(3, 9), frame_strides=(3, 5),
                                      known_patterns=("none", "first", "random_subset")),
               "interpolation": TrainedOn("interpolation", num_frames=(3, 9), frame_strides=(1, 1))}
    strict = VideoPipeline(pipe.config, pipe.vae, pipe.keyframes.net, pipe.interpolation.net, pipe.text_encoder,
                           trained=trained)
    image = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    for n, index in ((2, 1), (2, -1), (4, 2)):
        clip, _ = strict.text_to_video("a", num_frames=n, keyframes={index: image}, seed=3, progress=False)
        assert clip.shape == (n, 64, 64, 3) and torch.equal(clip[index], image), (n, index)


def test_bundled_parts_record_their_training(tmp_path):
    from vidiff.pipeline.config import read_pipeline_folder
    from vidiff.pipeline.trained import read_trained_records
    from vidiff.pipeline.trained import latent_space_id

    bundle = REPO / "vidiff" / "bundled" / "shapes"
    records = read_trained_records(bundle, read_pipeline_folder(bundle))
    assert records["keyframes"].num_frames == (3, 9) and records["keyframes"].frame_strides == (3, 5)
    assert "region" in records["keyframes"].known_patterns and "region" in records["interpolation"].known_patterns
    assert records["interpolation"].frame_strides == (1, 1)
    assert records["keyframes"].latent_space == latent_space_id(bundle / "vae")
    from vidiff.pipeline.trained import latent_space_id_of
    from vidiff.vae import AutoencoderKL

    assert latent_space_id_of(AutoencoderKL.load(bundle / "vae")) == records["keyframes"].latent_space  # in memory
    # a VAE whose encoder differs is another latent space: the parts refuse it
    import shutil

    from safetensors.torch import load_file, save_file

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    weights = load_file(copy / "vae" / "model.safetensors")
    name = next(k for k in weights if k.startswith("encoder."))
    weights[name] = weights[name] + 1e-3
    save_file(weights, copy / "vae" / "model.safetensors")
    with pytest.raises(InputError, match="latent space of another VAE encoder"):
        read_trained_records(copy, read_pipeline_folder(copy))
    # exported beside such a VAE: the message names the folders given, not the hidden copy being written
    import dataclasses

    from vidiff.pipeline.config import CONTROL_PARTS
    from vidiff.pipeline.export import write_pipeline_folder

    cfg = read_pipeline_folder(bundle)
    cfg = dataclasses.replace(cfg, control_maps=(),
                              parts=dataclasses.replace(cfg.parts, **{name: None for name in CONTROL_PARTS}))
    parts = {"vae": copy / "vae", "keyframes": bundle / "keyframes", "interpolation": bundle / "interpolation"}
    with pytest.raises(InputError) as refused:
        write_pipeline_folder(tmp_path / "exported", parts, cfg)
    message = str(refused.value)
    assert message.startswith(f"{bundle / 'keyframes'}/trained_on.yaml: trained in the latent space of another VAE "
                              f"encoder than {copy / 'vae'} "), message
    assert ".tmp" not in message and not (tmp_path / "exported").exists()
    weights = load_file(bundle / "vae" / "model.safetensors")
    name = next(k for k in weights if k.startswith("decoder."))  # a decoder fine-tune keeps the latent space
    save_file({**weights, name: weights[name] + 1e-3}, copy / "vae" / "model.safetensors")
    assert read_trained_records(copy, read_pipeline_folder(copy)) == records


def test_a_part_of_another_kind_is_named_as_such_before_its_weights_load(monkeypatch):
    """AutoencoderKL.load of a U-Net or control folder listed every config key as unknown; a part's own config
    with a wrong value still gets the config error that names the key."""
    from vidiff.models import UNet3DConfig
    from vidiff.parts import load_part_config
    from vidiff.vae import AutoencoderKL

    bundle = REPO / "vidiff" / "bundled" / "shapes"
    monkeypatch.setattr("vidiff.parts.load_part_weights", lambda *a: pytest.fail("weights loaded"))
    with pytest.raises(InputError, match=r"keyframes: holds a U-Net \(keyframes / interpolation\) part, not a VAE"):
        AutoencoderKL.load(bundle / "keyframes")
    with pytest.raises(InputError, match="control-keyframes: holds a control adapter part, not a VAE part"):
        AutoencoderKL.load(bundle / "control-keyframes")
    with pytest.raises(InputError, match="vae: holds a VAE part, not a U-Net"):
        load_part_config(bundle / "vae", UNet3DConfig)


def test_save_pretrained_writes_every_parts_training_record(tmp_path):
    """The bundled pipeline saved to a new folder carries each part's trained_on.yaml, the VAE's and the control
    parts' too (they were left out); the copy loads with the same records."""
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.config import read_pipeline_folder
    from vidiff.pipeline.trained import TRAINED_NAME, read_trained_on, read_trained_records

    bundle = REPO / "vidiff" / "bundled" / "shapes"
    copy = VideoPipeline.from_pretrained(bundle).save_pretrained(tmp_path / "copy")
    parts = sorted(p.parent.name for p in bundle.glob(f"*/{TRAINED_NAME}"))
    assert parts == ["control-interpolation", "control-keyframes", "interpolation", "keyframes", "vae"]
    for part in parts:
        assert read_trained_on(copy / part) == read_trained_on(bundle / part), part
    assert read_trained_records(copy, read_pipeline_folder(copy)) == read_trained_records(
        bundle, read_pipeline_folder(bundle))


# ---- stochastic samplers and guidance options through the pipeline ---------------------------------------------
@pytest.mark.parametrize("options", [dict(sampler="euler_ancestral"), dict(sampler="dpmpp_2m_sde"),
                                     dict(sampler="dpmpp_sde"), dict(sampler="heun", churn=5.0),
                                     dict(sampler="pc", pc_steps=2, pc_snr=0.1), dict(sampler="ddpm")])
def test_stochastic_samplers_are_batch_invariant(pipe, options):
    """Same seed, same frames, alone or second in a batch of 2: every draw comes from the row's generators."""
    one, _ = pipe.text_to_video("a red circle", seed=5, progress=False, steps=3, **options)
    pair, _ = pipe.text_to_video(["a blue square", "a red circle"], seed=[9, 5], progress=False, steps=3, **options)
    other, _ = pipe.text_to_video("a red circle", seed=6, progress=False, steps=3, **options)
    assert torch.equal(one, pair[1]) and not torch.equal(one, other)


def test_churn_zero_is_plain_heun_and_churn_changes_the_clip(pipe):
    plain, _ = pipe.text_to_video("a red circle", seed=2, sampler="heun", steps=3, progress=False)
    zero, _ = pipe.text_to_video("a red circle", seed=2, sampler="heun", churn=0.0, steps=3, progress=False)
    churned, _ = pipe.text_to_video("a red circle", seed=2, sampler="heun", churn=5.0, steps=3, progress=False)
    assert torch.equal(plain, zero) and not torch.equal(plain, churned)
    with pytest.raises(InputError, match="churn: applies to the heun sampler"):
        pipe.text_to_video("a red circle", churn=1.0, progress=False)


def test_flags_are_true_or_false(pipe):
    """progress="no" and batch_invariant="no" were taken by truth value (as True); force_layout="yes" was refused."""
    from vidiff.pipeline import VideoPipeline

    with pytest.raises(InputError, match="progress: expected True or False, got 'no'"):
        pipe.text_to_video("a", progress="no")
    with pytest.raises(InputError, match="batch_invariant: expected True or False"):
        VideoPipeline.from_pretrained(REPO / "vidiff" / "bundled" / "shapes", batch_invariant="no")
    frames = torch.zeros(16, 64, 64, 3, dtype=torch.uint8)
    with pytest.raises(InputError, match="progress: expected True or False"):  # strength 0 returned before the check
        pipe.edit_video(frames, "a", strength=0.0, progress="no")
    with pytest.raises(InputError, match="force_layout: expected True or False"):  # "no" forced an untrained layout
        pipe.fill_between(frames[:2], 4, force_layout="no")
    for internal in ("pixel_multiple", "exact_frames"):  # request()'s own: pixel_multiple=4 failed mid-sampling
        with pytest.raises(InputError, match=f"{internal}: not a setting of text_to_video"):
            pipe.text_to_video("a", progress=False, **{internal: 4})
    read_only = np.zeros((2, 64, 64, 3), np.uint8)
    read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warned "The given NumPy array is not writable"
        assert pipe.fill_between(read_only, 2, steps=1).shape == (3, 64, 64, 3)


def test_negative_prompt_replaces_the_unconditional_branch(pipe):
    base, _ = pipe.text_to_video("a red circle", seed=1, progress=False)
    empty, _ = pipe.text_to_video("a red circle", seed=1, negative_prompt="", progress=False)
    negative, _ = pipe.text_to_video("a red circle", seed=1, negative_prompt="a blue square", progress=False)
    assert torch.equal(base, empty)  # "" is exactly the null encoding guidance drops to
    assert not torch.equal(base, negative)
    rows, _ = pipe.text_to_video(["a red circle", "a red circle"], seed=[1, 1], progress=False,
                                 negative_prompt=["", "a blue square"])
    assert torch.equal(rows[0], base) and torch.equal(rows[1], negative)  # one negative prompt per row
    with pytest.raises(InputError, match="negative_prompt"):
        pipe.text_to_video("a", negative_prompt=["x", "y", "z"], progress=False)
    with pytest.raises(InputError, match="^negative_prompt: 3 negative prompts for 2 prompts"):  # was "prompt / seed"
        pipe.request(["a", "b"], negative_prompt=["x", "y", "z"])
    with pytest.raises(InputError, match="guidance_rescale"):
        pipe.text_to_video("a", guidance_rescale=1.5, progress=False)
    req = pipe.request("a", negative_prompt="b", guidance_rescale=0.7, sampler="pc", pc_steps=3)
    settings = req.settings(pipe.config)  # what the sidecar records
    assert settings["negative_prompts"] == ["b"] and settings["keyframes"]["guidance_rescale"] == 0.7
    assert settings["keyframes"]["pc_steps"] == 3 and settings["interpolation"]["sampler"] == "pc"
    # guidance 1 without known frames runs the conditional pass only: a negative prompt was taken and unused
    with pytest.raises(InputError, match="negative_prompt: .*guidance_scale 1 = off"):
        pipe.text_to_video("a red circle", negative_prompt="a blue square", guidance_scale=1.0, progress=False)


def test_guidance_rescale_without_guidance_is_refused(pipe):
    """At guidance_scale 1 with nothing known the stage runs the conditional pass alone, so a guidance_rescale gave
    the same frames as none while the sidecar recorded it."""
    with pytest.raises(InputError, match="guidance_rescale: .*guidance_scale 1 = off"):
        pipe.text_to_video("a red circle", guidance_rescale=0.7, guidance_scale=1.0, steps=2, progress=False)
    plain, _ = pipe.text_to_video("a red circle", guidance_scale=1.0, steps=2, progress=False)
    off, _ = pipe.text_to_video("a red circle", guidance_rescale=0.0, guidance_scale=1.0, steps=2, progress=False)
    assert torch.equal(plain, off)  # phi 0 is "off", which is what runs
    # known frames: image guidance still runs at text guidance 1, and the rescale acts on it
    image = plain[0]
    a, _ = pipe.image_to_video(image, "a red circle", guidance_scale=1.0, image_guidance_scale=3.0, steps=2,
                               progress=False)
    b, _ = pipe.image_to_video(image, "a red circle", guidance_scale=1.0, image_guidance_scale=3.0, steps=2,
                               guidance_rescale=0.7, progress=False)
    assert not torch.equal(a, b)


def test_text_guidance_0_is_warned_and_refused_with_a_negative_prompt(pipe):
    """At guidance 0 the keyframes are sampled without the prompt (random colours, shapes and directions, without a
    word), and with a negative prompt they follow it: the bundle drew "a blue square moving up" for the prompt "a
    red circle moving left" with that negative prompt, 4 clips of 4."""
    import warnings

    run = dict(seed=1, guidance_scale=0.0, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        red, _ = pipe.text_to_video("a red circle", **run)
    assert [str(w.message) for w in caught if "text guidance 0" in str(w.message)] == [
        "text guidance 0 samples the keyframes without the prompt (guidance keeps only its side without it), so the "
        "prompt sets nothing they show; guidance 1 follows the prompt without guidance"]
    with pytest.warns(UserWarning, match="text guidance 0"):
        blue, _ = pipe.text_to_video("a blue square", **run)
    assert torch.equal(red[0], blue[0])  # the keyframes (frame 0 among them) do not depend on the prompt
    with pytest.raises(InputError, match="^negative_prompt: at text guidance 0 the keyframes follow the negative"):
        pipe.text_to_video("a red circle", negative_prompt="a blue square", **run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a little guidance is no warning, and takes a negative prompt
        pipe.text_to_video("a red circle", negative_prompt="a blue square", seed=1, guidance_scale=0.5, steps=1,
                           progress=False)


def test_bf16_networks_keep_the_sampler_state_fp32(pipe):
    """pipe.to(dtype=bfloat16): U-Nets and VAE compute in bf16, the denoised estimates the sampler combines are
    fp32, and the frames stay close to fp32's."""
    from vidiff.pipeline import VideoPipeline

    half = VideoPipeline(pipe.config, copy_module(pipe.vae), copy_module(pipe.keyframes.net),
                         copy_module(pipe.interpolation.net), pipe.text_encoder).to(dtype=torch.bfloat16)
    seen = []
    handle = half.keyframes.denoiser.register_forward_hook(lambda m, args, out: seen.append((args[0].dtype, out.dtype)))
    try:
        b, _ = half.text_to_video("a red circle", seed=4, progress=False)
    finally:
        handle.remove()
    a, _ = pipe.text_to_video("a red circle", seed=4, progress=False)
    assert seen and all(x == torch.float32 and out == torch.float32 for x, out in seen)
    assert next(half.keyframes.net.parameters()).dtype == torch.bfloat16
    mse = (a.float() - b.float()).pow(2).mean()
    assert 0 < mse and 10 * torch.log10(255**2 / mse) > 25  # close, not equal: the networks did run in bf16


def copy_module(module):
    import copy

    return copy.deepcopy(module)


# ---- SDEdit --------------------------------------------------------------------------------------------------
def test_edit_video_strength_ends_and_checks(pipe):
    clip = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8))
    decoded, fps = pipe.edit_video(clip, "a blue square", strength=0.0, progress=False)
    assert torch.equal(decoded, pipe.vae.decode_to_frames(pipe.vae.encode_frames(clip))[0]) and fps == 8.0
    plain, _ = pipe.edit_video(clip, "a blue square", strength=1.0, seed=3, progress=False)
    assert torch.equal(plain, pipe.text_to_video("a blue square", seed=3, progress=False)[0])
    half, _ = pipe.edit_video(clip, "a blue square", strength=0.5, seed=3, progress=False)
    again, _ = pipe.edit_video(clip, "a blue square", strength=0.5, seed=3, progress=False)
    assert torch.equal(half, again) and not torch.equal(half, plain) and not torch.equal(half, decoded)
    for bad, match in ((dict(strength=1.5), "strength"), (dict(strength=True), "strength")):
        with pytest.raises(InputError, match=match):
            pipe.edit_video(clip, "x", progress=False, **bad)
    with pytest.raises(InputError, match="^frames: the clip has 15 frames.*fit at stride 5: 11, 16"):
        pipe.edit_video(clip[:15], "x", progress=False)


def test_edit_repeats_redraw_the_keyframes_from_the_last_pass(pipe, monkeypatch):
    """repeats R: R keyframe passes, the first from the input's keyframes, each next one from the last one's
    output; the progress bar's total counts every step taken; the default is 2."""
    import vidiff.pipeline.video_pipeline as vp
    from vidiff.pipeline.timeline import Timeline

    clip = torch.from_numpy(np.random.default_rng(6).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8))
    calls, bars = [], []
    keyframes = Timeline.keyframes

    def recording(self, shape, key, known, known_mask, init=None, positions=None):
        out = keyframes(self, shape, key, known, known_mask, init=init, positions=positions)
        calls.append((init.clone(), out.clone()))
        return out

    class CountingBar:
        def __init__(self, total, enabled):
            self.total, self.done = total, 0
            bars.append(self)

        def step(self, _info=None):
            self.done += 1

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(Timeline, "keyframes", recording)
    monkeypatch.setattr(vp, "StepBar", CountingBar)
    three, _ = pipe.edit_video(clip, "a blue square", strength=0.5, seed=2, repeats=3, progress=False)
    source = pipe.vae.encode_frames(clip)[:, :, ::5]
    assert len(calls) == 3 and torch.equal(calls[0][0], source)
    assert torch.equal(calls[1][0], calls[0][1]) and torch.equal(calls[2][0], calls[1][1])
    assert bars[-1].done == bars[-1].total > 0
    calls.clear()
    once, _ = pipe.edit_video(clip, "a blue square", strength=0.5, seed=2, repeats=1, progress=False)
    assert len(calls) == 1 and bars[-1].done == bars[-1].total and not torch.equal(once, three)
    calls.clear()
    default, _ = pipe.edit_video(clip, "a blue square", strength=0.5, seed=2, progress=False)
    assert len(calls) == 2 and torch.equal(calls[1][0], calls[0][1])  # two passes by default
    for bad in (0, 2.0, True, 17):
        with pytest.raises(InputError, match="repeats"):
            pipe.edit_video(clip, "x", strength=0.5, repeats=bad, progress=False)


def test_edit_strength_selects_the_sd_img2img_noise_level(pipe):
    """strength s starts SDEdit at the sigma of timestep s * T of the VP schedule (SD's scaled_linear by default),
    with round(s * steps) steps of the Karras grid from there."""
    from vidiff.diffusion import NoiseScheduleConfig, schedule_sigmas

    vp = schedule_sigmas(NoiseScheduleConfig())
    grid = pipe.keyframes.sigmas(20, 0.6)
    assert len(grid) == 12 + 1 and grid[-1] == 0
    assert float(grid[0]) == pytest.approx(float(vp[599]), rel=1e-6) and 2.2 < float(grid[0]) < 2.4
    assert torch.equal(pipe.keyframes.sigmas(20, 1.0), pipe.keyframes.sigmas(20))


def test_trimmed_layout_is_the_longer_grid_cut(pipe):
    """20 frames at stride 5: the frames are the first 20 of the 21-frame grid's clip, same seed."""
    twenty, _ = pipe.text_to_video("a red circle moving left", num_frames=20, seed=4, progress=False)
    grid, _ = pipe.text_to_video("a red circle moving left", num_frames=21, seed=4, progress=False)
    assert twenty.shape[0] == 20 and torch.equal(twenty, grid[:20])
    with pytest.raises(InputError, match="^frames: the clip has 20 frames"):  # an edit keeps its length: exact grids
        pipe.edit_video(twenty, "a blue square", progress=False)


def test_returned_frames_can_be_written_in_place(pipe):
    """They were inference tensors: `out[0, :4] = 0` (letterboxing) raised outside inference mode."""
    out, _ = pipe.text_to_video("a red circle moving left", seed=1, progress=False)
    out[0, :4] = 0
    filled = pipe.fill_between(out[[0, 5]], 5, seed=1)
    filled += 1
    assert out[0, :4].max() == 0


def test_a_side_the_unets_cannot_halve_is_named(pipe):
    # 60 passed the VAE's factor 4 and failed inside the U-Net ("x: spatial size 15x15 must be divisible by 4")
    assert pipe.size_multiple == 8  # VAE factor 4 x the tiny U-Nets' one halving
    with pytest.raises(InputError, match=r"^height: 60 is not a multiple of 8 .*e\.g\. 56"):
        pipe.text_to_video("a red circle", height=60, progress=False)


def test_a_clip_size_the_networks_cannot_take_is_named_as_the_frames(pipe):
    # extend_video / edit_video of a 60x60 clip said "height: 60 is not a multiple of 16", a setting both refuse
    # ("height: ... takes it from the frames it is given; leave it out")
    m = pipe.size_multiple
    side = 4 * m - 4
    clip = torch.zeros(16, side, 4 * m, 3, dtype=torch.uint8)
    expected = (rf"^frames: {4 * m}x{side} pixels; each side must be a multiple of {m} \(the VAE's factor times the "
                rf"U-Nets' downsampling\): crop or resize them, e\.g\. to {4 * m}x{3 * m}$")
    with pytest.raises(InputError, match=expected):
        pipe.extend_video(clip[:6], "x", num_frames=5, progress=False)
    with pytest.raises(InputError, match=expected):
        pipe.edit_video(clip, "x", progress=False)
    with pytest.raises(InputError, match=expected):
        pipe.edit_video(clip, "x", mask=np.ones((side, 4 * m), bool), progress=False)


@pytest.mark.parametrize("writer", ["save_pretrained", "export_swap", "yaml_written_meanwhile"])
def test_a_pipeline_folder_rewritten_while_it_loads_is_loaded_again_or_refused(pipe, tmp_path, load_tool, monkeypatch,
                                                                                writer):
    """A generation loading a folder while a colleague's save_pretrained (or `vidiff export --force`) rewrote it got
    one pipeline's VAE with the other's U-Nets, without a word (7 of 125 loads beside a loop of saves). Here another
    pipeline is written between the VAE and the U-Nets: the folder is loaded again, whole; rewritten during that load
    too, it is refused in one line."""
    from vidiff.pipeline import VideoPipeline, load

    folder = tmp_path / "p"
    tool = load_tool("make_random_pipeline")
    pipelines = [VideoPipeline(pipe.config, *tool.random_parts(tiny=True, seed=s), HashText()) for s in (1, 2)]
    load_net, read, writes = load._load_net, load.read_pipeline_folder, []

    def write(times):
        if len(writes) < times:
            other = pipelines[len(writes) % 2]
            writes.append(other)
            if writer == "export_swap":  # a whole new folder renamed in, the old one set aside
                shutil.rmtree(tmp_path / "new", ignore_errors=True)
                other.save_pretrained(tmp_path / "new")
                folder.rename(tmp_path / f"old{times}-{len(writes)}")
                (tmp_path / "new").rename(folder)
            else:
                other.save_pretrained(folder)

    for times in (1, 2):
        shutil.rmtree(folder, ignore_errors=True)
        pipe.save_pretrained(folder)
        writes.clear()
        if writer == "yaml_written_meanwhile":  # the load started while a save had removed pipeline.yaml
            (folder / "pipeline.yaml").unlink()
            monkeypatch.setattr(load, "read_pipeline_folder", lambda path: (write(times), read(path))[1])
        else:
            monkeypatch.setattr(load, "_load_net", lambda net, part: (  # once a load, before its first U-Net
                part.name == "keyframes" and write(times), load_net(net, part))[1])
        if times == 2:
            with pytest.raises(InputError, match=rf"^{folder}: the pipeline folder was rewritten while it loaded, "
                                                 r"twice \(by a `vidiff export` or save_pretrained into it\).*run "
                                                 r"again once it is written$"):
                VideoPipeline.from_pretrained(folder)
            continue
        loaded = VideoPipeline.from_pretrained(folder)
        for mine, theirs in ((loaded.vae, writes[-1].vae), (loaded.keyframes.net, writes[-1].keyframes.net),
                             (loaded.interpolation.net, writes[-1].interpolation.net)):
            assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))


def test_a_load_that_fails_mid_swap_is_loaded_again_and_a_plain_failure_is_said_as_it_is(pipe, tmp_path, load_tool,
                                                                                         monkeypatch):
    """A load that met a part of the other pipeline mid-swap (export renames the old folder away, then the new one
    in) raised that part's error ("p/keyframes: not a model part folder"), not the reload it gets when the load
    ends whole. A load that fails in an unchanged folder says its own error, once."""
    from vidiff.pipeline import VideoPipeline, load

    folder = tmp_path / "p"
    tool = load_tool("make_random_pipeline")
    other = VideoPipeline(pipe.config, *tool.random_parts(tiny=True, seed=3), HashText())
    pipe.save_pretrained(folder)
    load_net, calls = load._load_net, []

    def swap_then_fail(net, part):
        calls.append(part.name)
        if part.name == "keyframes" and calls.count("keyframes") == 1:
            other.save_pretrained(tmp_path / "new")
            folder.rename(tmp_path / "old")
            (tmp_path / "new").rename(folder)
            raise InputError(f"{part}: not a model part folder (missing config.yaml)")
        return load_net(net, part)

    monkeypatch.setattr(load, "_load_net", swap_then_fail)
    loaded = VideoPipeline.from_pretrained(folder)
    assert calls.count("keyframes") == 2
    assert all(torch.equal(a, b) for a, b in zip(loaded.keyframes.net.state_dict().values(),
                                                 other.keyframes.net.state_dict().values()))

    def fail(net, part):
        raise InputError(f"{part}: broken")

    monkeypatch.setattr(load, "_load_net", fail)
    with pytest.raises(InputError, match=r"/p/(keyframes|interpolation): broken$"):
        VideoPipeline.from_pretrained(folder)


def test_a_part_folder_or_the_pipeline_yaml_given_for_the_pipeline_names_its_folder():
    """from_pretrained(".../shapes/keyframes") said only "is not a pipeline folder (missing pipeline.yaml)", and
    ".../shapes/pipeline.yaml" "is a file, not a folder": neither named the folder that loads."""
    from vidiff.pipeline import VideoPipeline

    bundle = REPO / "vidiff" / "bundled" / "shapes"
    with pytest.raises(InputError, match=f"^{bundle / 'vae'} is not a pipeline folder \\(missing pipeline.yaml\\); "
                                         f"it is inside the pipeline folder {bundle}, give that$"):
        VideoPipeline.from_pretrained(bundle / "vae")
    with pytest.raises(InputError, match=f"is its pipeline.yaml; give the folder that holds it, {bundle}$"):
        VideoPipeline.from_pretrained(bundle / "pipeline.yaml")
    with pytest.raises(InputError, match="is not a pipeline folder \\(missing pipeline.yaml\\)$"):
        VideoPipeline.from_pretrained(REPO / "docs")  # no pipeline around it: nothing more to say


def test_the_docs_bundled_path_from_another_folder_names_the_installed_bundle(tmp_path, monkeypatch):
    """from_pretrained("vidiff/bundled/real-interp"), as docs/pipeline.md writes it, in a notebook outside the
    repository said only "no such folder"; it now names the installed bundle and how to reach it from anywhere."""
    from vidiff.pipeline import VideoPipeline

    monkeypatch.chdir(tmp_path)
    bundle = (REPO / "vidiff" / "bundled" / "real-interp").resolve()
    with pytest.raises(InputError) as e:
        VideoPipeline.from_pretrained("vidiff/bundled/real-interp")
    assert str(e.value) == (f"pipeline folder vidiff/bundled/real-interp: no such folder here ({tmp_path}); the "
                            f'bundled one is importlib.resources.files("vidiff") / "bundled" / "real-interp": {bundle}')
    with pytest.raises(InputError, match="^pipeline folder vidiff/bundled/nope: no such folder$"):
        VideoPipeline.from_pretrained("vidiff/bundled/nope")  # no such bundle: nothing more to say


def test_save_pretrained_refuses_paths_that_are_no_folder(pipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for bad, message in (("", "expected a folder path"), (None, "expected a folder path")):
        with pytest.raises(InputError, match=message):
            pipe.save_pretrained(bad)
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(InputError, match="is a file, not a folder"):
        pipe.save_pretrained(tmp_path / "a_file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written into the cwd


def test_save_pretrained_does_not_write_into_a_users_own_folder(pipe, tmp_path, monkeypatch):
    """save_pretrained(".") in a project folder wrote vae/, keyframes/, ... over the user's own (its vae/ and the
    notes in it replaced): a part folder the save writes that holds other files, or is a file, is refused before
    anything is written. The folder's other entries stay as they are (a README, .DS_Store, a text encoder folder
    pipeline.yaml names: saving over where such a pipeline was loaded from was refused); an empty folder, an earlier
    pipeline folder, a half-saved one and one with custom part names take the save."""
    from dataclasses import replace

    from vidiff.pipeline import VideoPipeline

    project = tmp_path / "project"
    (project / "vae").mkdir(parents=True)
    (project / "vae" / "notes.txt").write_text("mine")
    (project / "train.py").write_text("mine")
    monkeypatch.chdir(project)
    with pytest.raises(InputError, match=r"^save_pretrained: vae: exists and holds what a part folder does not "
                                         r"\(notes\.txt\), so nothing is saved there; give a new folder"):
        pipe.save_pretrained(".")
    assert sorted(p.name for p in project.rglob("*")) == ["notes.txt", "train.py", "vae"]  # nothing written
    (project / "vae" / "notes.txt").unlink()
    (project / "keyframes").write_text("mine")
    with pytest.raises(InputError, match=r"^save_pretrained: keyframes: is not a part folder \(a file or a link\)"):
        pipe.save_pretrained(".")
    (project / "keyframes").unlink()
    (project / ".DS_Store").write_text("finder")
    pipe.save_pretrained(".")  # beside the project's own files, which stay
    assert (project / "train.py").read_text() == "mine" and (project / ".DS_Store").is_file()
    assert VideoPipeline.from_pretrained(project).config == pipe.config
    (tmp_path / "empty").mkdir()
    pipe.save_pretrained(tmp_path / "empty")
    pipe.save_pretrained(tmp_path / "empty")  # an earlier pipeline folder
    (tmp_path / "empty" / "pipeline.yaml").unlink()  # a save stopped halfway: parts, no pipeline.yaml
    pipe.save_pretrained(tmp_path / "empty")
    assert VideoPipeline.from_pretrained(tmp_path / "empty").config == pipe.config
    custom = replace(pipe.config, parts=replace(pipe.config.parts, vae="weights/vae"))
    other = VideoPipeline(custom, pipe.vae, pipe.keyframes.net, pipe.interpolation.net, pipe.text_encoder)
    other.save_pretrained(tmp_path / "custom")
    VideoPipeline.from_pretrained(tmp_path / "custom").save_pretrained(tmp_path / "custom")  # over where it came from


def test_devices_this_torch_lacks_are_refused_before_loading(pipe, monkeypatch):
    import vidiff.pipeline.video_pipeline as vp

    monkeypatch.setattr(vp, "load_pipeline", lambda *a: pytest.fail("weights loaded"))
    for device in ("mps", "xpu"):
        backend = torch.backends.mps if device == "mps" else getattr(torch, device, None)
        if getattr(backend, "is_available", lambda: False)():
            continue
        with pytest.raises(InputError, match=f"^device: {device}: this PyTorch build has no {device} device"):
            vp.VideoPipeline.from_pretrained("x", device=device)


def test_a_save_that_would_not_load_leaves_the_folder_as_it_was(tmp_path):
    """Saved over the folder it came from after a cast to bfloat16 and back, the pipeline replaced its own weights
    with rounded ones that its parts' records refuse: the folder no longer loaded."""
    import shutil

    from vidiff.pipeline import VideoPipeline

    folder = tmp_path / "shapes"
    shutil.copytree(Path(__file__).resolve().parents[1] / "vidiff/bundled/shapes", folder)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    pipe = VideoPipeline.from_pretrained(folder)
    pipe.vae.to(torch.bfloat16)
    with pytest.raises(InputError, match="the parts compute in torch.bfloat16"):
        pipe.save_pretrained(folder)
    pipe.vae.to(torch.float32)  # rounded now
    with pytest.raises(InputError, match="encoder weights differ from those the parts were trained with"):
        pipe.save_pretrained(folder)
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    VideoPipeline.from_pretrained(folder)  # still loads


def test_settings_a_method_does_not_take_are_named(pipe):
    clip = torch.zeros(16, 64, 64, 3, dtype=torch.uint8)
    for call, message in [
        # the list named request()'s keywords only, not text_to_video's own keyframes / control / progress
        (lambda: pipe.text_to_video("a", num_frame=20, progress=False),
         "^num_frame: not a setting of text_to_video; it takes keyframes, control, control_scale, progress, seed, "),
        (lambda: pipe.extend_video(clip, "a", num_frames=4, height=32, progress=False),
         "^height: extend_video takes it from the frames"),
        (lambda: pipe.extend_video(clip, "a", num_frames=4, keyframes={0: clip[0]}, progress=False),
         "^keyframes: not a setting of extend_video"),
        (lambda: pipe.edit_video(clip, "a", num_frames=16, progress=False), "^num_frames: edit_video takes it"),
        # named text_to_video, which the caller never called, and only after the image and the prompt were read
        (lambda: pipe.image_to_video(clip[0, :8], "a", output_type="np", progress=False),
         "^output_type: not a setting of image_to_video; it takes keyframes, control, control_scale, progress, "
         "seed, num_frames, "),
        # fill_between raised Python's TypeError ("got an unexpected keyword argument 'negative_prompt'")
        (lambda: pipe.fill_between(clip[:2].numpy(), 5, negative_prompt="x"),
         "^negative_prompt: not a setting of fill_between; it takes seed, prompt, steps, sampler, progress, "
         "force_layout$"),
    ]:
        with pytest.raises(InputError, match=message):
            call()


def test_animate_refuses_a_second_frame_0(pipe):
    image = torch.zeros(64, 64, 3, dtype=torch.uint8)
    with pytest.raises(InputError, match="^keyframes: frame 0 is the image being animated"):
        pipe.image_to_video(image, "a", keyframes={0: image + 1, 10: image}, progress=False)


def test_vae_load_checks_device_and_dtype_first(tmp_path):
    from vidiff.vae import AutoencoderKL

    for kwargs, message in [(dict(dtype="bf16"), "^dtype: expected"), (dict(device="banana"), "^device: 'banana'")]:
        with pytest.raises(InputError, match=message):
            AutoencoderKL.load(tmp_path / "absent", **kwargs)  # refused before the folder is even read


def test_fill_between_takes_sizes_the_interpolation_part_pads_to():
    """Frames are padded to the interpolation part's multiple, and the request checked them against both parts'
    (the bundled pipeline: 8 and 16): 63x65 frames were refused as 'width: 72 is not a multiple of 16'."""
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.from_pretrained(Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes")
    assert pipe.frame_multiple < pipe.size_multiple
    keys = torch.full((2, 63, 65, 3), 90, dtype=torch.uint8)
    out = pipe.fill_between(keys, 2, seed=0, steps=1)
    assert out.shape == (3, 63, 65, 3) and torch.equal(out[::2], keys)


def test_edit_settings_that_would_change_nothing_are_refused(pipe):
    clip = torch.zeros(16, 64, 64, 3, dtype=torch.uint8)
    with pytest.raises(InputError, match="^feather: blends a redrawn region"):
        pipe.edit_video(clip, "a", feather=5, progress=False)
    with pytest.raises(InputError, match="^repeats: at strength 1"):
        pipe.edit_video(clip, "a", strength=1.0, repeats=3, progress=False)
    # one pass is what strength 1 runs, so saying so is not refused
    assert check_edit_options(1.0, None, 1, masked=True) == (1.0, DEFAULT_FEATHER, 1)
    assert check_edit_options(None, 2, 1, masked=True) == (1.0, 2, 1)
    with pytest.raises(InputError, match="^pc_steps / pc_snr: apply to the pc sampler"):
        pipe.request("a", sampler="ddim", pc_snr=0.2)


def test_fill_between_names_the_strides_its_interpolation_part_fills():
    """fill_between of an unfillable stride listed the keyframe part's trained strides (3, 4, 5), a part it does not
    use: strides 2, 6, 7 and 8 fill, as the interpolation part was trained on windows of 3..9 frames."""
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.from_pretrained(REPO / "vidiff" / "bundled" / "shapes")
    clip = np.zeros((3, 64, 64, 3), np.uint8)
    with pytest.raises(InputError, match=r"^stride 13 cannot be filled .* strides that work: 2, 3, 4, 5, 6, "
                                         r"7, 8 \(the fillable strides the interpolation part was trained on\)"):
        pipe.fill_between(clip, stride=13)
    assert pipe.fill_between(clip, stride=7, steps=1).shape == (15, 64, 64, 3)
    with pytest.raises(InputError, match=r"strides that work: 3, 4, 5 \(the fillable strides the keyframe part"):
        pipe.text_to_video("a red circle moving left", keyframe_stride=13)


def test_a_float_numpy_image_is_named_as_given_with_the_conversion(pipe):
    """A float numpy image in [0, 1] was refused as "got torch.float32": the library's own conversion, not the
    user's array."""
    with pytest.raises(InputError, match=r"image: expected a uint8 image \(H,W,3\), got numpy float32 \(64, 64, 3\) "
                                         r"\(floats in \[0, 1\]: \(x \* 255\)\.round\(\) as uint8\)"):
        pipe.image_to_video(np.zeros((64, 64, 3), np.float32), "x", progress=False)


@pytest.mark.parametrize("low, high, said", [(0.0, 1.0, r"\(floats in \[0, 1\]: \(x \* 255\)\.round\(\) as uint8\)"),
                                             (-1.0, 1.0, r"\(floats in \[-1, 1\]: \(\(x \+ 1\) \* 127\.5\)\.round\(\)"),
                                             (0.0, 255.0, r"\(floats in \[0, 255\]: x\.round\(\) as uint8\)")])
def test_float_frames_are_told_the_conversion_of_their_own_range(low, high, said):
    """Float frames in [-1, 1] or [0, 255] were told the [0, 1] recipe, (x * 255).round() as uint8, which wraps
    negative values around and overflows the rest: silently wrong frames for a user who followed it."""
    from vidiff.pipeline.input_checks import check_frames

    frames = torch.linspace(low, high, 2 * 8 * 8 * 3).reshape(2, 8, 8, 3)
    with pytest.raises(InputError, match=r"^keyframes: expected uint8 frames \(F,H,W,3\), got torch\.float32 "
                                         r"\(2, 8, 8, 3\) " + said):
        check_frames(frames, "keyframes")


def test_a_pil_image_and_channels_first_arrays_are_told_how_to_give_them(pipe):
    """A PIL image was "got Image" and a (3,H,W) / (F,3,H,W) array "got torch.uint8 (3, 64, 64)", without the
    conversion that makes them what the methods take."""
    from PIL import Image

    with pytest.raises(InputError, match=r"got Image \(a PIL image: give np\.asarray\(image\.convert\('RGB'\)\)\)$"):
        pipe.image_to_video(Image.new("RGB", (64, 64)), "x", progress=False)
    with pytest.raises(InputError, match=r"got torch\.uint8 \(3, 64, 64\) \(channels first: move them last, "
                                         r"x\.permute\(1, 2, 0\) or np\.moveaxis\(x, -3, -1\)\)$"):
        pipe.image_to_video(torch.zeros(3, 64, 64, dtype=torch.uint8), "x", progress=False)
    with pytest.raises(InputError, match=r"^frames: .*got numpy uint8 \(16, 3, 64, 64\) .*x\.permute\(0, 2, 3, 1\)"):
        pipe.extend_video(np.zeros((16, 3, 64, 64), np.uint8), "x", num_frames=1, progress=False)
    # the hint follows the array: an (H,W,3) image is taken as it is
    assert pipe.image_to_video(np.asarray(Image.new("RGB", (64, 64))), "x", steps=1, progress=False)[0].shape[1:] \
        == (64, 64, 3)


def test_library_warnings_point_at_the_callers_line(pipe):
    """edit_video's warnings were said at torch/utils/_contextlib.py (its no_grad wrapper), as if torch had warned,
    and a long clip's at a line of video_pipeline.py: a notebook showed neither the call that met them."""
    import warnings

    from vidiff.pipeline import VideoPipeline

    def places(call) -> list[tuple[str, str]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        return [(w.filename, str(w.message)[:60]) for w in caught]

    shapes = VideoPipeline.from_pretrained(REPO / "vidiff" / "bundled" / "shapes")  # its prompt notes and layouts
    clip = torch.zeros(16, 64, 64, 3, dtype=torch.uint8)
    run = dict(steps=1, progress=False)
    calls = {"edit_video": lambda: shapes.edit_video(clip, "a scarlet circle", **run),  # "'scarlet' is not a word"
             "text_to_video": lambda: shapes.text_to_video("a red circle moving left", num_frames=42, **run),
             "fill_between": lambda: shapes.fill_between(clip[:2], stride=9, force_layout=True, **run),
             "guidance 0": lambda: pipe.edit_video(clip, "a", guidance_scale=0.0, **run)}
    for name, call in calls.items():
        said = places(call)
        assert said and all(filename == __file__ for filename, _ in said), (name, said)


def test_a_callers_autocast_is_honoured_and_said(pipe):
    """Under the caller's torch.autocast("cpu", bfloat16) the frames moved by up to 14 levels and nothing said so.
    The pipeline runs under it, as diffusers' pipelines do, and says it once, at the caller's line; fill_between
    too. Autocast turned off is silent."""
    import warnings

    kw = dict(seed=0, num_frames=7, progress=False)
    plain, _ = pipe.text_to_video("a red circle moving left", **kw)
    with pytest.warns(UserWarning, match=r"torch.autocast\('cpu', bfloat16\) is on around this call: the pipeline "
                                         r"runs under it, .* in bfloat16 instead of float32") as said:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            cast, _ = pipe.text_to_video("a red circle moving left", **kw)
    assert said[0].filename == __file__ and not torch.equal(cast, plain)
    with pytest.warns(UserWarning, match="torch.autocast"):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pipe.fill_between(plain[[0, -1]], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
            again, _ = pipe.text_to_video("a red circle moving left", **kw)
    assert torch.equal(again, plain)


def test_prompt_notes_come_after_the_other_settings_are_checked():
    """`text_to_video("a scarlet circle", steps=0)` warned of the prompt and then refused the steps: a notebook
    showed a note about a request that never ran. The notes now follow the checks of every setting; a request that
    runs still gets them, at the caller's line (text_to_video, image_to_video, a long clip, edit_video)."""
    import warnings

    from vidiff.errors import InputError
    from vidiff.pipeline import VideoPipeline

    shapes = VideoPipeline.from_pretrained(REPO / "vidiff" / "bundled" / "shapes")
    image = torch.zeros(64, 64, 3, dtype=torch.uint8)
    clip = torch.zeros(16, 64, 64, 3, dtype=torch.uint8)
    refused = {"text_to_video": lambda: shapes.text_to_video("a scarlet circle", steps=0, progress=False),
               "image_to_video": lambda: shapes.image_to_video(image, "a scarlet circle", seed=-5, progress=False),
               "edit_video": lambda: shapes.edit_video(clip, "a scarlet circle", bogus=1, progress=False)}
    for name, call in refused.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(InputError):
                call()
        assert not caught, (name, [str(w.message) for w in caught])
    with pytest.warns(UserWarning, match="found no direction it knows") as said:
        shapes.image_to_video(image, "a scarlet circle", steps=1, progress=False)
    assert said[0].filename == __file__


def test_the_shortest_clip_is_offered_only_at_a_trained_stride():
    """`num_keyframes=2, keyframe_stride=7` was offered "the shortest clip at stride 7 is 15 frames (3 keyframes)",
    which is refused in turn for its stride (the part was trained on 3..5); at a trained stride the offer runs."""
    from vidiff.errors import InputError
    from vidiff.pipeline import VideoPipeline

    shapes = VideoPipeline.from_pretrained(REPO / "vidiff" / "bundled" / "shapes")
    with pytest.raises(InputError) as refused:
        shapes.text_to_video("a red circle moving left", num_keyframes=2, keyframe_stride=7, steps=1, progress=False)
    assert "shortest clip" not in str(refused.value) and "keyframe stride 7" in str(refused.value)
    with pytest.raises(InputError, match=r"the shortest clip at stride 4 is 9 frames \(3 keyframes\)"):
        shapes.text_to_video("a red circle moving left", num_keyframes=2, keyframe_stride=4, steps=1, progress=False)
    frames, _ = shapes.text_to_video("a red circle moving left", num_keyframes=3, keyframe_stride=4, steps=1,
                                     progress=False)
    assert frames.shape[0] == 9
