"""`vidiff data shapes` at several writer thread counts (vidiff/data/shapes_folder.py WRITE_THREADS), in turn in one
process, with how many clips' bytes and decoded frames differ from the first count's folder (docs/benchmarks.md,
"Writing a Shapes dataset").

    .venv/bin/python tools/bench_shapes_writer.py --num 2000 --frames 41 --threads 4 1 2
"""
from __future__ import annotations

import argparse
import filecmp
import shutil
import tempfile
import time
from pathlib import Path


def decoded(path: Path):
    import av
    import numpy as np

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--num", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=41)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, nargs="+", default=[4, 1, 2])
    args = ap.parse_args()
    import numpy as np

    import vidiff.data.shapes_folder as shapes_folder

    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        for threads in args.threads:
            shapes_folder.WRITE_THREADS = threads
            out = Path(tmp) / f"threads_{threads}"
            t0 = time.perf_counter()
            shapes_folder.generate_shapes_dataset(out, args.num, frames=args.frames, seed=args.seed, progress=False)
            print(f"{threads} thread(s): {args.num} clips of {args.frames} frames in {time.perf_counter() - t0:.1f} s")
            folders.append(out)
        first = folders[0]
        for other in folders[1:]:
            names = sorted(p.name for p in first.iterdir())
            differ = [n for n in names if not filecmp.cmp(first / n, other / n, shallow=False)]
            frames_differ = [n for n in differ if n.endswith(".mp4") and not np.array_equal(decoded(first / n),
                                                                                          decoded(other / n))]
            print(f"{other.name} against {first.name}: {len(differ)} files' bytes differ ({', '.join(differ[:5])}), "
                  f"{len(frames_differ)} clips' decoded frames")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
