"""Shapes generator: determinism, ground truth that matches the pixels, motion limits, prompts, files on disk."""
import json

import numpy as np
import pytest

from vidiff.data import shapes as S, shapes_folder
from vidiff.errors import InputError


def test_same_seed_same_clip_and_independent_of_n():
    a = list(S.iter_clip_params(5, seed=7))
    b = list(S.iter_clip_params(50, seed=7))
    assert a == b[:5]
    for p, q in zip(a, b):
        assert np.array_equal(S.render_clip(p).numpy(), S.render_clip(q).numpy())
    # A different seed gives different clips.
    c = list(S.iter_clip_params(5, seed=8))
    assert [p.start for p in a] != [p.start for p in c]


@pytest.mark.parametrize("frames", [16, 64])
def test_object_fully_inside_and_speed_limits(frames):
    for params in S.iter_clip_params(80, frames=frames, seed=3):
        assert S.SIZE_RANGE[0] <= params.size <= S.SIZE_RANGE[1]
        assert S.BACKGROUND_RANGE[0] <= params.background <= S.BACKGROUND_RANGE[1]
        limit = S.max_speed(params.size, 64, frames)
        assert params.speed <= min(2.0, limit) + 1e-9
        if frames == 16:
            assert 1.0 <= params.speed <= 2.0  # 16 frames never need lowering at 64 px
        else:
            assert params.speed >= limit / 2 - 1e-9  # lowered, but the range is scaled, not clipped
        video = S.render_clip(params).numpy()  # (F, H, W, 3)
        fg = np.any(video != params.background, axis=-1)  # (F, H, W)
        for t, (cx, cy) in enumerate(params.centres()):
            half = params.size / 2
            assert 0 <= cx - half and cx + half <= 64 and 0 <= cy - half and cy + half <= 64
            # The object never touches the border: one pixel of background all round.
            assert not fg[t, 0].any() and not fg[t, -1].any() and not fg[t, :, 0].any() and not fg[t, :, -1].any()
            ys, xs = np.nonzero(fg[t])
            assert xs.max() - xs.min() + 1 == params.size and ys.max() - ys.min() + 1 == params.size
            # The rendered bounding box is centred on the ground-truth centre (to within the pixel grid).
            assert abs((xs.min() + xs.max()) / 2 + 0.5 - cx) <= 0.5 and abs((ys.min() + ys.max()) / 2 + 0.5 - cy) <= 0.5
            assert abs(np.mean(xs) + 0.5 - cx) <= 0.6  # pixel centres are at j + 0.5


def test_min_speed_scale_slows_clips_within_its_range_and_keeps_the_rest():
    base = list(S.iter_clip_params(60, frames=41, seed=1))
    slow = list(S.iter_clip_params(60, frames=41, seed=1, min_speed_scale=0.3))
    ratios = np.array([q.speed / p.speed for p, q in zip(base, slow)])
    assert ratios.min() >= 0.3 - 1e-9 and ratios.max() <= 1.0 + 1e-9
    assert ratios.min() < 0.45 and ratios.max() > 0.85  # drawn over the range, not pinned to an end
    # what is drawn before the speed is the seed's; the start leaves room for the slower travel, in the frame
    assert [(p.shape, p.colour, p.direction, p.size) for p in base] == [(q.shape, q.colour, q.direction, q.size)
                                                                       for q in slow]
    for q in slow:
        (x0, y0), (x1, y1) = q.centres()[0], q.centres()[-1]
        half = q.size / 2
        assert min(x0, x1, y0, y1) - half >= 0 and max(x0, x1, y0, y1) + half <= 64
    # the default draws nothing extra: the same clips as ever
    assert list(S.iter_clip_params(5, frames=41, seed=1, min_speed_scale=1.0)) == base[:5]
    for bad in (0, -0.5, 1.5, float("nan"), True):
        with pytest.raises(InputError, match="min_speed_scale"):
            S.sample_clip_params(1, 0, 41, min_speed_scale=bad)


def test_motion_direction_matches_ground_truth():
    for params in S.iter_clip_params(40, seed=1):
        (x0, y0), (x1, y1) = params.centres()[0], params.centres()[-1]
        dx, dy = S.DIRECTION_VECTORS[params.direction]
        assert np.isclose(x1 - x0, dx * params.speed * 15) and np.isclose(y1 - y0, dy * params.speed * 15)


def test_render_exact_flat_colours_and_areas():
    for params in S.iter_clip_params(60, seed=2):
        video = S.render_clip(params).numpy()
        packed = np.unique(video.reshape(-1, 3).astype(np.int64) @ np.array([1 << 16, 1 << 8, 1]))  # one int per RGB
        colours = {((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in packed.tolist()}
        assert colours == {(params.background,) * 3, params.rgb}
        area = np.all(video[0] == params.rgb, axis=-1).sum()
        n = params.size
        expected = {"square": n * n, "circle": np.pi * n * n / 4, "triangle": n * n / 2}[params.shape]
        assert abs(area - expected) / expected < 0.12, (params.shape, n, area)


def test_shape_masks_are_left_right_symmetric():
    for shape in S.SHAPES:
        for centre in [(20.0, 20.0), (20.3, 19.6), (21.5, 20.5)]:
            m = S.shape_mask(shape, 17, centre, 40, 40)
            cols = np.nonzero(m.any(0))[0]
            box = m[:, cols.min(): cols.max() + 1]
            assert np.array_equal(box, box[:, ::-1])


def test_parse_prompt_every_template_and_synonyms():
    for colour, shape, direction in S.all_combinations():
        for template in S.CAPTION_TEMPLATES:
            text = template.format(colour=colour, shape=shape, direction=direction)
            assert S.parse_prompt(text) == (colour, shape, direction), text
        assert S.parse_prompt(S.prompt_for(colour, shape, direction)) == (colour, shape, direction)
    assert len(S.all_combinations()) == 60
    assert S.parse_prompt("A Crimson BALL rising") == ("red", "circle", "up")
    assert S.parse_prompt("golden pyramid falling") == ("yellow", "triangle", "down")
    assert S.parse_prompt("a box drifting leftwards") == (None, "square", "left")
    assert S.parse_prompt("something else entirely") == (None, None, None)
    with pytest.raises(InputError, match="colour"):
        S.prompt_for("purple", "circle", "up")


def test_bad_arguments_name_the_parameter(tmp_path):
    with pytest.raises(InputError, match="size"):
        S.sample_clip_params(0, 0, 16, size=24)
    with pytest.raises(InputError, match="frames"):
        S.sample_clip_params(0, 0, 0)
    with pytest.raises(InputError, match="num"):
        shapes_folder.generate_shapes_dataset(tmp_path, 0)


def test_cli_errors_name_the_flags(tmp_path, capsys):
    """`vidiff data shapes --size 30` said "size must be in [32, 1024]": the library's argument, not the flag."""
    from vidiff.cli import main

    for flag, value in (("--num", "0"), ("--frames", "5000"), ("--size", "30"), ("--seed", "-1"), ("--fps", "0"),
                        ("--min-speed-scale", "0")):
        argv = ["data", "shapes", "--out", str(tmp_path / "d"), "--num", "2", "--no-progress", flag, value]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"vidiff: error: {flag} must be "), (flag, err)
    assert not (tmp_path / "d").exists()


def test_an_empty_folder_path_is_refused(tmp_path, monkeypatch):
    """generate_shapes_dataset("") wrote into the working folder and removed its clip files numbered past num."""
    from vidiff.data import shapes_folder
    from vidiff.errors import InputError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip_000003.mp4").write_bytes(b"a user's own file")
    for empty in ("", " ", None):
        with pytest.raises(InputError, match="^out_dir: expected a folder path"):
            shapes_folder.generate_shapes_dataset(empty, 1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["clip_000003.mp4"]


def test_cli_writes_dataset(tmp_path, capsys):
    from vidiff.cli import main

    out = tmp_path / "shapes"
    assert main(["data", "shapes", "--out", str(out), "--num", "3", "--frames", "8", "--seed", "5", "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in rows] == ["clip_000000.mp4", "clip_000001.mp4", "clip_000002.mp4"]
    for i, row in enumerate(rows):
        truth = json.loads((out / f"clip_{i:06d}.json").read_text())
        params = S.sample_clip_params(5, i, 8, 64)
        assert truth["caption"] == row["text"] == params.caption == (out / f"clip_{i:06d}.txt").read_text().strip()
        assert truth["index"] == i and truth["seed"] == 5 and len(truth["centres"]) == 8
        assert (out / row["file_name"]).stat().st_size > 0
    # a smaller run into the same folder leaves no clip of the larger one behind (a video folder reads them all)
    (out / "notes.txt").write_text("mine")
    assert main(["data", "shapes", "--out", str(out), "--num", "1", "--frames", "8", "--no-progress"]) == 0
    assert "removed 2 clip(s) numbered 1 and up" in capsys.readouterr().err
    # a rate that is no whole number (was refused: 'invalid int value')
    assert main(["data", "shapes", "--out", str(out), "--num", "1", "--frames", "8", "--fps", "7.5", "--no-progress"]) == 0
    from vidiff.io import probe_video

    assert probe_video(out / "clip_000000.mp4").fps == 7.5
    assert json.loads((out / "clip_000000.json").read_text())["fps"] == 7.5
    assert sorted(p.name for p in out.iterdir()) == ["clip_000000.json", "clip_000000.mp4", "clip_000000.txt",
                                                      "metadata.jsonl", "notes.txt"]


def test_cli_min_speed_scale_reaches_the_clips_and_a_bad_one_exits_2(tmp_path, capsys):
    from vidiff.cli import main

    out = tmp_path / "slow"
    assert main(["data", "shapes", "--out", str(out), "--num", "2", "--frames", "8", "--seed", "5",
                 "--min-speed-scale", "0.3", "--no-progress"]) == 0
    for i in range(2):
        truth = json.loads((out / f"clip_{i:06d}.json").read_text())
        assert truth["speed"] == pytest.approx(S.sample_clip_params(5, i, 8, 64, min_speed_scale=0.3).speed)
        assert truth["speed"] != pytest.approx(S.sample_clip_params(5, i, 8, 64).speed)
    assert main(["data", "shapes", "--out", str(tmp_path / "bad"), "--num", "2", "--min-speed-scale", "0"]) == 2
    assert "--min-speed-scale must be" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # refused before anything is written


def test_rendered_dataset_is_the_generator_without_a_codec():
    import torch

    from vidiff.config import from_dict
    from vidiff.data.shapes_dataset import ShapesDataset
    from vidiff.training.config import TrainConfig, validate
    from vidiff.training.stages import video_dataset

    ds = ShapesDataset(seed=3, num=5, num_frames=6, size=32)
    item = ds[4]
    params = S.sample_clip_params(3, 4, 6, 32)
    want = S.render_clip(params).permute(3, 0, 1, 2).float() / 127.5 - 1.0  # exact pixels, in [-1, 1]
    assert len(ds) == 5 and item["video"].shape == (3, 6, 32, 32)
    assert torch.equal(item["video"], want) and item["caption"] == params.caption and item["index"] == 4
    cfg = validate(from_dict(TrainConfig, {"stage": "vae", "model": {}, "data": {
        "kind": "shapes", "shapes_seed": 3, "num_samples": 5, "num_frames": 6, "size": 32}}))
    built = video_dataset(cfg)
    assert torch.equal(built[4]["video"], want)


def test_a_run_stopped_between_files_never_leaves_a_clip_without_its_caption(tmp_path, monkeypatch):
    """`vidiff data shapes` killed between a clip's files: every mp4 there has its caption and ground truth (a
    kill -9 after clip_000058.mp4 left it without them, so a video folder read it with an empty caption)."""
    write = shapes_folder._atomic_write_text

    def stop_at_clip_2(path, text):
        if path.name == "clip_000002.txt":
            raise KeyboardInterrupt
        write(path, text)

    monkeypatch.setattr(shapes_folder, "_atomic_write_text", stop_at_clip_2)
    with pytest.raises(KeyboardInterrupt):
        shapes_folder.generate_shapes_dataset(tmp_path, 4, frames=4, size=32, progress=False)
    videos = sorted(p.stem for p in tmp_path.glob("*.mp4"))
    # clips are written by several threads: clip 3 may be done before clip 2's stop, clip 2 never is
    assert videos[:2] == ["clip_000000", "clip_000001"] and "clip_000002" not in videos
    assert all((tmp_path / f"{v}.txt").is_file() and (tmp_path / f"{v}.json").is_file() for v in videos)
    # and the stopped run's folder is not read as a whole dataset (a cache of its 2 clips said complete: true)
    from vidiff.data.video_folder import VideoFolderDataset

    with pytest.raises(InputError, match="did not finish .*run the same command again"):
        VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32))
    monkeypatch.setattr(shapes_folder, "_atomic_write_text", write)
    shapes_folder.generate_shapes_dataset(tmp_path, 4, frames=4, size=32, progress=False)
    assert len(VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32))) == 4


def test_a_second_run_writing_the_same_folder_is_refused_and_the_first_finishes(tmp_path, monkeypatch):
    """Two `vidiff data shapes --out X` at once (here: the second starts while the first writes its clip 1) mixed
    the two seeds' clips under one metadata.jsonl, and the first to end removed .shapes-unfinished while the other
    still wrote; the other then ended in a FileNotFoundError traceback. The second is refused now."""
    from vidiff.data.video_folder import VideoFolderDataset

    render, refusals, started = shapes_folder.render_clip, [], []

    def second_run_meanwhile(params):
        if params.index == 1 and not started:
            started.append(params.index)
            with pytest.raises(InputError, match=r"another `vidiff data shapes` .* is writing this folder") as e:
                shapes_folder.generate_shapes_dataset(tmp_path, 3, frames=4, size=32, seed=9, progress=False)
            refusals.append(str(e.value))
            # a reader meanwhile is told the run is at work, not "did not finish ... run the same command again"
            with pytest.raises(InputError, match=r"a `vidiff data shapes` run is writing this folder now .*wait"):
                VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32))
        return render(params)

    monkeypatch.setattr(shapes_folder, "render_clip", second_run_meanwhile)
    shapes_folder.generate_shapes_dataset(tmp_path, 3, frames=4, size=32, seed=1, progress=False)
    assert len(refusals) == 1
    captions = [p.caption for p in shapes_folder.iter_clip_params(3, 4, 32, 1, 1.0)]
    assert [(tmp_path / f"clip_{i:06d}.txt").read_text() for i in range(3)] == [c + "\n" for c in captions]
    assert len(VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32))) == 3  # finished: the marker is gone


def test_a_folder_being_read_is_not_rewritten_under_its_reader(tmp_path):
    """`vidiff data shapes --out X` while a training run or `vidiff data cache` read X: the reader had taken the old
    captions at its start and read the new clips after (a cache said "ready" with 30 of its 60 windows encoded
    from the new clips under the old captions). A video folder dataset holds the folder (a shared lock) while it
    lives; the rewrite is refused meanwhile and goes ahead once the reader is gone. A copy of the dataset sent to a
    DataLoader worker (pickled) holds nothing."""
    import gc
    import pickle

    from vidiff.data.video_folder import VideoFolderDataset

    shapes_folder.generate_shapes_dataset(tmp_path, 2, frames=4, size=32, seed=1, progress=False)
    reader = VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32))
    second = VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32))  # readers share the folder
    with pytest.raises(InputError, match=r"--out .*: another `vidiff data shapes` \(or other vidiff command\) is "
                                         r"writing this folder, or a training run, `vidiff data cache` or a dataset "
                                         r"in a Python session is reading it"):
        shapes_folder.generate_shapes_dataset(tmp_path, 2, frames=4, size=32, seed=9, progress=False)
    captions = [p.caption + "\n" for p in shapes_folder.iter_clip_params(2, 4, 32, 1, 1.0)]
    assert [(tmp_path / f"clip_{i:06d}.txt").read_text() for i in range(2)] == captions  # left as it was
    copy = pickle.loads(pickle.dumps(reader))
    del reader, second
    gc.collect()
    shapes_folder.generate_shapes_dataset(tmp_path, 2, frames=4, size=32, seed=9, progress=False)
    assert len(copy) == 2


def test_a_refused_dataset_and_a_forked_child_leave_the_folder_to_its_writer(tmp_path):
    """A dataset refused after taking the folder's read lock (clips too short) kept it while a notebook held the
    traceback, so regenerating the clips longer was refused for the session; a forked child (a persistent
    DataLoader worker) kept the lock after the parent dropped its dataset."""
    import gc
    import os

    from vidiff.data.video_folder import VideoFolderDataset

    shapes_folder.generate_shapes_dataset(tmp_path, 2, frames=4, size=32, seed=1, progress=False)
    with pytest.raises(InputError, match="no usable clips") as refused:
        VideoFolderDataset(tmp_path, num_frames=64, size=(32, 32))
    shapes_folder.generate_shapes_dataset(tmp_path, 2, frames=8, size=32, seed=2, progress=False)  # refused.tb held
    assert refused.value is not None
    reader = VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32))
    go_on, wait = os.pipe()
    child = os.fork()
    if child == 0:  # the child holds its copy of the dataset until the parent has rewritten the folder
        os.close(wait)
        os.read(go_on, 1)
        os._exit(0)
    os.close(go_on)
    try:
        del reader
        gc.collect()
        shapes_folder.generate_shapes_dataset(tmp_path, 2, frames=8, size=32, seed=3, progress=False)
    finally:
        os.close(wait)
        os.waitpid(child, 0)


def test_a_file_system_that_does_not_lock_folders_still_gets_the_dataset(tmp_path, monkeypatch):
    """flock on a folder fails on some NFS mounts (EBADF / ENOLCK): the run goes on without the lock, as where there
    is no flock at all, instead of ending in an OSError traceback."""
    import errno
    import fcntl

    def no_folder_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_folder_locks)
    shapes_folder.generate_shapes_dataset(tmp_path, 2, frames=4, size=32, progress=False)
    assert (tmp_path / "metadata.jsonl").is_file() and not (tmp_path / shapes_folder.UNFINISHED_NAME).exists()


def test_a_writer_that_waits_for_a_folder_says_so(tmp_path, caplog):
    """An export waits its turn in the folder it writes beside; behind a dataset a notebook still held there, the
    wait said nothing and looked like a hang."""
    import logging
    import threading

    from vidiff.folder_lock import ReadLock, folder_lock

    reader = ReadLock(tmp_path, "busy")
    done = threading.Event()

    def write():
        with folder_lock(tmp_path):
            done.set()

    with caplog.at_level(logging.WARNING, logger="vidiff.folder_lock"):
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(0.5)
        assert not done.is_set()  # still waiting for the reader
        reader.release()
        writer.join(30)
    assert done.is_set()
    assert any("waiting for another vidiff command or a dataset reading this folder" in r.getMessage()
               for r in caplog.records)
