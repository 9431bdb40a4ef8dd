"""Region edits (VideoPipeline.edit_video with a mask) on tiny random parts, and the mask helpers."""
import numpy as np
import pytest
import torch

from test_pipeline import HashText, pipe  # noqa: F401  (the module's tiny random pipeline fixture)
from vidiff.errors import InputError
from vidiff.pipeline.region import check_region_mask, composite, feather_weights, latent_keep_mask


def box_mask(frames=16, size=64, lo=16, hi=32):
    m = np.zeros((size, size), dtype=np.uint8)
    m[lo:hi, lo:hi] = 255
    return m


def test_mask_forms_and_errors():
    png = np.stack([box_mask()] * 3, axis=-1)  # an RGB PNG read as (H,W,3)
    m = check_region_mask(png, 16, 64, 64)
    assert m.shape == (16, 64, 64) and m.dtype == torch.bool and int(m[0].sum()) == 256
    per_frame = np.zeros((16, 64, 64, 3), dtype=np.uint8)
    per_frame[3, :8, :8] = 200
    m = check_region_mask(per_frame, 16, 64, 64)
    assert int(m.sum()) == 64 and bool(m[3, :8, :8].all())
    assert int(check_region_mask(torch.full((64, 64), 0.7), 16, 64, 64).sum()) == 16 * 64 * 64
    for bad, match in ((np.zeros((8, 64, 64), np.uint8), "8 frames, the clip has 16"),
                       (np.zeros((32, 32), np.uint8), "32x32 pixels, the clip is 64x64"),
                       (torch.full((64, 64), float("nan")), "NaN"), ("mask.png", "expected an array"),
                       (torch.full((64, 64), 2.0), r"float values must lie in \[0, 1\]")):
        with pytest.raises(InputError, match=match):
            check_region_mask(bad, 16, 64, 64)


def test_integer_masks_are_0_1_or_0_255_and_an_empty_one_is_refused():
    """A 0/1 mask stored as uint8 was read as 0..255 and selected nothing: the whole sampling ran and returned the
    clip unchanged. 0/1 integers now select where 1, 0..255 where > 127; a mask that selects nothing is refused."""
    ones = box_mask() // 255  # 0/1 uint8
    assert int(check_region_mask(ones, 16, 64, 64)[0].sum()) == 256
    assert torch.equal(check_region_mask(ones.astype(np.int64), 16, 64, 64), check_region_mask(box_mask(), 16, 64, 64))
    for empty in (np.zeros((64, 64), np.uint8), np.zeros((64, 64), bool), torch.full((64, 64), 0.2)):
        with pytest.raises(InputError, match="selects no pixel"):
            check_region_mask(empty, 16, 64, 64)
    with pytest.raises(InputError, match="integer values must lie in 0..255"):
        check_region_mask(np.full((64, 64), 300, np.int64), 16, 64, 64)


def test_masks_of_any_byte_order_and_integer_width_are_read_or_refused_by_value():
    """A big-endian float mask ('>f4', as np.load gives an array saved on such a machine) raised torch's ValueError
    "byte order different from the native byte order"; a uint16 mask (a 16-bit PNG) NotImplementedError "min_all
    not implemented for 'UInt16'". Both are read by their values now, as their native uint8 / float twins."""
    box = check_region_mask(box_mask(), 16, 64, 64)
    unit = box_mask() / 255
    for mask in (unit.astype(">f4"), unit.astype(">f8"), (box_mask() // 255).astype(">i4"), box_mask().astype(np.uint16),
                 torch.from_numpy(box_mask()).to(torch.uint16), (box_mask() // 255).astype(np.uint32),
                 box_mask().astype(np.uint16)[..., None], np.stack([box_mask().astype(np.uint16)] * 3, -1)):
        # the last two: a 16-bit PNG with a channel axis, whose amax over channels was NotImplementedError too
        assert torch.equal(check_region_mask(mask, 16, 64, 64), box), mask.dtype
    with pytest.raises(InputError, match=r"^mask: integer values must lie in 0\.\.255 \(or 0/1\), got 0\.\.65535$"):
        check_region_mask(box_mask().astype(np.uint16) * 257, 16, 64, 64)


def test_an_image_mask_on_a_clip_with_as_many_frames_as_rows():
    """A 64x64 RGB mask image on a 64-frame clip was read as 64 masks of 64x3 pixels and refused ("3x64 pixels")."""
    m = check_region_mask(np.stack([box_mask()] * 3, axis=-1), 64, 64, 64)
    assert m.shape == (64, 64, 64) and int(m[0].sum()) == 256 and bool((m == m[:1]).all())


def test_an_rgba_mask_array_is_read_as_the_cli_reads_an_rgba_mask_file():
    """np.array of an RGBA PNG, (H,W,4), was taken for 64 masks of 64x4 pixels ("64 frames, the clip has 16"), and
    (F,H,W,4) frames were refused: colour > 127 where alpha > 127 redraws, a transparent pixel is kept."""
    drawn = np.zeros((64, 64, 4), np.uint8)
    drawn[..., :3] = 255  # white everywhere, opaque only in the box: an alpha-only drawing
    drawn[16:32, 16:32, 3] = 255
    box = torch.from_numpy(box_mask() > 127)[None].expand(16, -1, -1)
    assert torch.equal(check_region_mask(drawn, 16, 64, 64), box)
    assert torch.equal(check_region_mask(np.stack([drawn] * 16), 16, 64, 64), box)
    assert torch.equal(check_region_mask(drawn / 255.0, 16, 64, 64), box)  # floats in [0, 1]
    assert torch.equal(check_region_mask(np.dstack([box_mask()] * 4), 64, 64, 64)[:16], box)  # 64 frames of 64
    with pytest.raises(InputError, match="^mask: 3 frames, the clip has 16"):
        check_region_mask(np.stack([drawn] * 3), 16, 64, 64)
    drawn[..., 3] = 0
    with pytest.raises(InputError, match="^mask: selects no pixel"):
        check_region_mask(drawn, 16, 64, 64)


def test_the_mask_file_of_the_cli(tmp_path):
    """`vidiff edit --mask`: a transparent pixel is "keep" whatever its colour (an alpha-only drawing redrew the
    whole frame), as in control maps; a mask that selects nothing is refused (the edit returned the clip as it was
    after running the model); one image on a clip with as many frames as rows."""
    from PIL import Image

    from vidiff.commands.inputs import read_mask

    clip = torch.zeros(64, 64, 64, 3, dtype=torch.uint8)
    drawn = np.zeros((64, 64, 4), np.uint8)
    drawn[..., :3] = 255  # white everywhere, opaque only in the box: what an alpha-only drawing tool saves
    drawn[16:32, 16:32, 3] = 255
    Image.fromarray(drawn, "RGBA").save(tmp_path / "alpha.png")
    m = read_mask(str(tmp_path / "alpha.png"), clip)
    assert m.shape == (64, 64, 64) and int(m[0].sum()) == 256 and bool(m[0, 16:32, 16:32].all())
    Image.fromarray(box_mask()).save(tmp_path / "grey.png")
    assert torch.equal(read_mask(str(tmp_path / "grey.png"), clip), m)
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "black.png")
    with pytest.raises(InputError, match="no pixel is white"):
        read_mask(str(tmp_path / "black.png"), clip)


def test_latent_keep_mask_and_feather_geometry():
    m = check_region_mask(box_mask(), 16, 64, 64)  # pixels 16..31 = latent cells 4..7 at factor 4
    keep = latent_keep_mask(m, 4, feather=0)
    assert keep.shape == (16, 16, 16)
    expected = torch.ones(16, 16)
    expected[3:9, 3:9] = 0.0  # the cells, grown by one latent pixel
    assert torch.equal(keep[0], expected)
    w = feather_weights(m, 3)
    assert bool((w[:, 16:32, 16:32] == 1).all())
    assert w[0, 15, 20] == pytest.approx(0.75) and w[0, 13, 20] == pytest.approx(0.25) and w[0, 12, 20] == 0
    src = torch.randint(0, 256, (16, 64, 64, 3), dtype=torch.uint8)
    gen = torch.randint(0, 256, (2, 16, 64, 64, 3), dtype=torch.uint8)
    out = composite(src, gen, w)
    outside = w == 0
    assert torch.equal(out[0][outside], src[outside]) and torch.equal(out[1][m], gen[1][m])


def test_region_edit_keeps_outside_pixels_and_known_latents(pipe, monkeypatch):  # noqa: F811
    clip = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8))
    mask = box_mask()
    decoded = []
    decode = pipe._decode
    monkeypatch.setattr(pipe, "_decode", lambda z, progress: decoded.append(z.clone()) or decode(z, progress))
    out, fps = pipe.edit_video(clip, "a blue square", mask=mask, seed=3, progress=False)
    again, _ = pipe.edit_video(clip, "a blue square", mask=mask, seed=3, progress=False)
    assert out.shape == clip.shape and fps == 8.0 and torch.equal(out, again)
    region = check_region_mask(mask, 16, 64, 64)
    w = feather_weights(region, 3)
    assert torch.equal(out[w == 0], clip[w == 0])  # beyond the feather band: the input, exactly
    assert not torch.equal(out[region], clip[region])
    # the sampled latents equal the input's wherever the latent keep mask says known, in every frame
    source = pipe.vae.encode_frames(clip)[0]  # (C,F,h,w)
    keep = latent_keep_mask(region, pipe.vae.downsample_factor, 3).bool()  # (F,h,w)
    latents = decoded[0][0]
    assert torch.equal(latents[:, keep], source[:, keep])
    assert not torch.allclose(latents[:, ~keep], source[:, ~keep])
    partial, _ = pipe.edit_video(clip, "a blue square", mask=mask, strength=0.5, seed=3, progress=False)
    assert not torch.equal(partial, out) and torch.equal(partial[w == 0], clip[w == 0])


def test_region_edit_needs_parts_trained_with_regions(pipe):  # noqa: F811
    import dataclasses

    from vidiff.pipeline.trained import TrainedOn

    clip = torch.zeros(16, 64, 64, 3, dtype=torch.uint8)
    kf = TrainedOn("keyframes", num_frames=(4, 4), frame_strides=(5, 5), known_patterns=("none", "first"))
    it = TrainedOn("interpolation", num_frames=(3, 6), frame_strides=(1, 1))
    saved = pipe.trained
    try:
        pipe.trained = {"keyframes": kf, "interpolation": it}
        with pytest.raises(InputError, match="'region'"):
            pipe.edit_video(clip, "x", mask=box_mask(), progress=False)
        pipe.trained = {"keyframes": dataclasses.replace(kf, known_patterns=("none", "region")), "interpolation": it}
        with pytest.raises(InputError, match="outside a region"):
            pipe.edit_video(clip, "x", mask=box_mask(), progress=False)
    finally:
        pipe.trained = saved
