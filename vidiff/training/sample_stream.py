"""The data order of a run: a stream of global sample ids, where id p is item perm_epoch[p % N] of epoch p // N.
Each rank loads only its own ids (vidiff/random.py: global_sample_ids), so the draws do not depend on the number
of ranks, and the position in the stream is given by the step alone, which makes resume exact."""
from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

import torch

from vidiff.errors import InputError
from vidiff.random import epoch_permutation, global_sample_ids

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from vidiff.training.config import TrainConfig


class _Indexed(torch.utils.data.Dataset):
    """Wraps a dataset so that item (epoch, index, sample_id) carries its position; sets the epoch per item
    (each worker owns its copy), for datasets with per-epoch clip choice."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.epoch = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int, int]) -> dict:
        epoch, index, sample_id = key
        if epoch != self.epoch and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
            self.epoch = epoch
        item = dict(self.dataset[index])
        item["epoch"], item["sample_id"] = epoch, sample_id
        return item


class _StreamBatches:
    """Batch sampler over (epoch, index, sample_id) keys: this rank's share of steps [start, stop)."""

    def __init__(self, n: int, seed: int, start: int, stop: int, batch: int, accum: int, rank: int, world: int):
        self.args = (n, seed, start, stop, batch, accum, rank, world)
        self._perm: dict[int, torch.Tensor] = {}

    def _key(self, p: int) -> tuple[int, int, int]:
        n, seed = self.args[0], self.args[1]
        epoch = p // n
        if epoch not in self._perm:
            self._perm = {epoch: epoch_permutation(seed, epoch, n)}  # keep one epoch's order in memory
        return epoch, int(self._perm[epoch][p % n]), p

    def __len__(self) -> int:
        _, _, start, stop, _, accum, _, _ = self.args
        return (stop - start) * accum

    def __iter__(self):
        _, _, start, stop, batch, accum, rank, world = self.args
        for step in range(start, stop):
            for micro in range(accum):
                yield [self._key(p) for p in global_sample_ids(step, micro, rank, batch, accum, world)]


def take_rows(batch: dict, n: int, rows: list[int]) -> dict:
    """The samples `rows` of a loader batch of n samples, in that order: every tensor or list with one entry per
    sample is indexed; other entries (a value for the whole batch) are kept."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == n:
            out[key] = value[rows]
        elif isinstance(value, (list, tuple)) and len(value) == n:
            out[key] = [value[r] for r in rows]
        else:
            out[key] = value
    return out


def make_loader(dataset, cfg: TrainConfig, start: int, rank: int, world: int):
    t = cfg.train
    if len(dataset) == 0:
        raise InputError(f"data.root: the dataset at {cfg.data.root!r} is empty")
    sampler = _StreamBatches(len(dataset), t.seed, start, t.max_steps, t.batch_size, t.grad_accum, rank, world)
    return torch.utils.data.DataLoader(_Indexed(dataset), batch_sampler=sampler, num_workers=t.num_workers,
                                       worker_init_fn=quiet_worker if t.num_workers else None)


def data_record(dataset) -> dict | None:
    """What a checkpoint records of the data its run read: the number of clips and a digest of which they are (a
    video folder's clips and captions, a latent cache's shards), from the dataset's `contents_sha256`; None for
    data drawn from the config alone (Shapes, crops of a corpus), which the config hash covers."""
    digest = getattr(dataset, "contents_sha256", None)
    return {"clips": len(dataset), "sha256": digest()} if callable(digest) else None


def check_same_data(checkpoint, recorded, dataset, force: bool) -> None:
    """A resume on data that changed since the checkpoint (clips added, removed, replaced or recaptioned) draws other
    samples at every step than the run it continues, as a changed config would: refused without --force, naming the
    change (it went on without a word). A checkpoint from before the record is not checked."""
    now = data_record(dataset)
    if not isinstance(recorded, dict) or now is None or recorded == now:
        return
    change = (f"{recorded.get('clips')} clips then, {now['clips']} now" if recorded.get("clips") != now["clips"] else
              f"as many clips, {now['clips']}, but other files or captions")
    if force:
        log.warning("data.root: the data changed since %s was written (%s): going on with it as it is (--force)",
                    checkpoint, change)
        return
    raise InputError(f"data.root: the data changed since {checkpoint} was written ({change}): the run would go on "
                     "drawing other samples than it was; pass --force to go on with the data as it is")


_SIGTERM_GRACE_S = 2.0


def _end_quietly(signum, frame) -> None:
    """A worker's SIGTERM: exit 0 a little later, by when the main process has taken its own (a group's SIGTERM)
    and stopped the workers; a worker gone at once made the batch being handed over fail first ("DataLoader worker
    (pid(s) N) exited unexpectedly", a traceback and exit 1)."""
    import os
    import threading

    timer = threading.Timer(_SIGTERM_GRACE_S, os._exit, args=(0,))
    timer.daemon = True
    timer.start()


def _end_with_the_trainer() -> None:
    """A worker ends with the process that forked it. torch's watchdog takes the worker's parent pid when the worker
    is set up, after this runs: a trainer killed before that left it init's pid, and the worker polled an empty
    queue for ever. So the kernel is asked to kill the worker when its parent dies (Linux), and a parent already
    gone (the worker now a child of init) ends it here."""
    import multiprocessing
    import os

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: torch's watchdog alone, as before
        pass
    parent = multiprocessing.parent_process()  # the pid that forked us, whoever adopted us since
    if parent is not None and os.getppid() != parent.pid:
        os._exit(0)


def quiet_worker(worker_id: int) -> None:
    """A loader worker leaves Ctrl-C to the main process, which stops the workers when the command ends, and ends
    quietly on SIGTERM; a batch the main process stopped receiving (interrupted mid-transfer) is not reported as a
    traceback."""
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM to the process group (a container stop, `kill -TERM -PGID`) killed the workers by the signal, and
    # torch's SIGCHLD handler raised "DataLoader worker ... killed by signal" in the middle of the main process's
    # cleanup; a worker now ends quietly (exit 0, as torch's own handler does for its parent's SIGTERM). Not ignored:
    # multiprocessing ends workers left at exit with SIGTERM and then waits for them without a limit.
    signal.signal(signal.SIGTERM, _end_quietly)
    _end_with_the_trainer()
    hook = sys.excepthook

    def quiet(kind, value, tb):
        if not issubclass(kind, (ConnectionResetError, BrokenPipeError, EOFError)):
            hook(kind, value, tb)

    sys.excepthook = quiet  # multiprocessing's fd-sharing thread reports through it
