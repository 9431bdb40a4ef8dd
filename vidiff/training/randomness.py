"""Per-sample randomness: every draw in training derives from (seed, epoch, step, global sample id, purpose).

A sample's draws therefore do not depend on the batch size, on how samples are split over ranks, or on how
many steps ran in this process: a resumed run and an uninterrupted one make the same draws (edm's
StackedRandomGenerator idea, keyed by position instead of by batch).
"""
from __future__ import annotations

import hashlib
import struct

import torch


def derive_seed(*keys: int | str) -> int:
    """A 63-bit seed from a tuple of ints / strings (sha256, so neighbouring keys give unrelated streams)."""
    h = hashlib.sha256()
    for k in keys:
        h.update(k.encode() if isinstance(k, str) else struct.pack("<q", int(k)))
        h.update(b"|")
    return int.from_bytes(h.digest()[:8], "little") & ((1 << 63) - 1)


def sample_generator(seed: int, epoch: int, step: int, sample_id: int, purpose: str) -> torch.Generator:
    """A CPU generator for one sample and one purpose ("clip", "sigma", "noise", "mask", ...)."""
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, epoch, step, sample_id, purpose))
    return g


class SampleDraws:
    """The random draws of one local batch: `gen(i, purpose)` is sample i's generator for that purpose.

    Each (sample, purpose) pair gets a fresh generator, so adding a draw for one purpose never shifts the
    draws of another.
    """

    def __init__(self, seed: int, epoch: list[int] | torch.Tensor, step: int, sample_ids: list[int] | torch.Tensor):
        self.seed, self.step = int(seed), int(step)
        self.epochs = [int(e) for e in epoch]
        self.sample_ids = [int(s) for s in sample_ids]

    def __len__(self) -> int:
        return len(self.sample_ids)

    def gen(self, i: int, purpose: str) -> torch.Generator:
        return sample_generator(self.seed, self.epochs[i], self.step, self.sample_ids[i], purpose)

    def randn(self, shape: tuple[int, ...], purpose: str, device=None, dtype=torch.float32) -> torch.Tensor:
        """(B, *shape) standard normal, row i drawn from sample i's generator."""
        rows = [torch.randn(shape, generator=self.gen(i, purpose), dtype=dtype) for i in range(len(self))]
        return torch.stack(rows).to(device)

    def rand(self, shape: tuple[int, ...], purpose: str, device=None) -> torch.Tensor:
        """(B, *shape) uniform [0, 1), row i drawn from sample i's generator."""
        rows = [torch.rand(shape, generator=self.gen(i, purpose)) for i in range(len(self))]
        return torch.stack(rows).to(device)

    def randint(self, low: int, high: int, purpose: str) -> list[int]:
        """One integer in [low, high] (inclusive) per sample."""
        return [int(torch.randint(low, high + 1, (1,), generator=self.gen(i, purpose))) for i in range(len(self))]


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order in which epoch `epoch` visits a dataset of n items."""
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, epoch, "permutation"))
    return torch.randperm(n, generator=g)


def global_sample_ids(step: int, micro: int, rank: int, batch_size: int, grad_accum: int, world: int) -> list[int]:
    """Global sample ids of (step, micro-step, rank): consecutive positions in the run's sample stream.

    One optimizer step consumes batch_size * world * grad_accum samples; micro-step m of it covers a block of
    batch_size * world ids, split over ranks in order. One process with batch 2B and two with B each see the
    same ids in the same micro-step.
    """
    per_micro = batch_size * world
    start = step * per_micro * grad_accum + micro * per_micro + rank * batch_size
    return list(range(start, start + batch_size))
