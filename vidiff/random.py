"""The one place randomness comes from: seed derivation, per-row generators, per-row draws.

Every draw is keyed by what it is for, never by how many draws came before it:
- generation: (user seed, stage, window, level, ...) -> one CPU torch.Generator per batch row, so sample i is
  the same whatever the batch around it (edm's StackedRandomGenerator idea);
- training: (seed, epoch, step, global sample id, purpose) -> one generator per sample and purpose, so a resumed
  run, another batch size or another number of ranks make the same draws;
- samplers: stochastic samplers draw from the per-row generators they are given.
CPU generators give the same numbers on every device; draws move to the device afterwards.
"""
from __future__ import annotations

import hashlib
from typing import Sequence, Union

import torch

from vidiff.errors import InputError

Generators = Union[torch.Generator, Sequence[torch.Generator], None]


def derive_seed(*keys) -> int:
    """A 63-bit seed that depends only on `keys` (ints, strings, tuples of them): sha256 of their repr, so
    neighbouring keys give unrelated streams. derive_seed(seed, "keyframes") is the keyframe stage's stream."""
    keys = tuple(int(k) if (isinstance(k, int) and not isinstance(k, bool)) or (torch.is_tensor(k) and k.ndim == 0)
                 else k for k in keys)
    digest = hashlib.sha256(repr(keys).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(*keys) -> torch.Generator:
    """A CPU generator seeded with derive_seed(*keys)."""
    return torch.Generator().manual_seed(derive_seed(*keys))


def generators(seeds: Sequence[int], *keys) -> list[torch.Generator]:
    """One CPU generator per batch row: row i is seeded from (seeds[i], *keys)."""
    return [generator(s, *keys) for s in seeds]


def batch_randn(shape: Sequence[int], gens: Generators = None, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Standard normal noise of `shape` (B, ...): `gens` is None (global RNG), one generator for the whole
    tensor, or a list with one generator per row (row i drawn from gens[i] only)."""
    shape = tuple(shape)
    if gens is None or isinstance(gens, torch.Generator):
        gen_device = gens.device if gens is not None else device
        out = torch.randn(shape, generator=gens, dtype=dtype, device=gen_device)
        return out.to(device) if device is not None else out
    gens = list(gens)
    if len(gens) != shape[0]:
        raise InputError(f"generator: got {len(gens)} generators for a batch of {shape[0]}")
    rows = [torch.randn(shape[1:], generator=g, dtype=dtype, device=g.device).to(device) for g in gens]
    return torch.stack(rows)


def batch_rand(n: int, gens: Generators, device=None) -> torch.Tensor:
    """Uniform [0, 1) draws (n,), float64, one per row (per-row generators allowed)."""
    if gens is None or isinstance(gens, torch.Generator):
        gen_device = gens.device if gens is not None else device
        return torch.rand(n, generator=gens, dtype=torch.float64, device=gen_device).to(device)
    gens = list(gens)
    if len(gens) != n:
        raise InputError(f"generator: got {len(gens)} generators for a batch of {n}")
    return torch.cat([torch.rand(1, generator=g, dtype=torch.float64, device=g.device).to(device) for g in gens])


def per_row_randn(shape: tuple[int, ...], gens: Sequence[torch.Generator]) -> torch.Tensor:
    """(len(gens), *shape) standard normal noise on the CPU; row i drawn from gens[i] only."""
    return torch.stack([torch.randn(shape, generator=g) for g in gens])


# ---- training: draws keyed by (seed, epoch, step, global sample id, purpose) --------------------------------

def sample_generator(seed: int, epoch: int, step: int, sample_id: int, purpose: str) -> torch.Generator:
    """A CPU generator for one training sample and one purpose ("clip", "sigma", "noise", "mask", ...)."""
    return generator(seed, epoch, step, sample_id, purpose)


class SampleDraws:
    """The random draws of one local training batch: `gen(i, purpose)` is sample i's generator for that purpose.

    Each (sample, purpose) pair gets a fresh generator, so adding a draw for one purpose never shifts the
    draws of another.
    """

    def __init__(self, seed: int, epoch: list[int] | torch.Tensor, step: int, sample_ids: list[int] | torch.Tensor):
        self.seed, self.step = int(seed), int(step)
        self.epochs = [int(e) for e in epoch]
        self.sample_ids = [int(s) for s in sample_ids]

    def __len__(self) -> int:
        return len(self.sample_ids)

    def rows(self, rows: list[int]) -> "SampleDraws":
        """The draws of the batch's samples `rows`, in that order, repeats allowed (each sample's draws are its
        own, so they are unchanged)."""
        return SampleDraws(self.seed, [self.epochs[r] for r in rows], self.step, [self.sample_ids[r] for r in rows])

    def gen(self, i: int, purpose: str) -> torch.Generator:
        return sample_generator(self.seed, self.epochs[i], self.step, self.sample_ids[i], purpose)

    def gens(self, purpose: str) -> list[torch.Generator]:
        return [self.gen(i, purpose) for i in range(len(self))]

    def randn(self, shape: tuple[int, ...], purpose: str, device=None, dtype=torch.float32) -> torch.Tensor:
        """(B, *shape) standard normal, row i drawn from sample i's generator."""
        rows = [torch.randn(shape, generator=g, dtype=dtype) for g in self.gens(purpose)]
        return torch.stack(rows).to(device)

    def rand(self, shape: tuple[int, ...], purpose: str, device=None) -> torch.Tensor:
        """(B, *shape) uniform [0, 1), row i drawn from sample i's generator."""
        return torch.stack([torch.rand(shape, generator=g) for g in self.gens(purpose)]).to(device)

    def randint(self, low: int, high: int, purpose: str) -> list[int]:
        """One integer in [low, high] (inclusive) per sample."""
        return [int(torch.randint(low, high + 1, (1,), generator=g)) for g in self.gens(purpose)]


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order in which epoch `epoch` visits a dataset of n items."""
    return torch.randperm(n, generator=generator(seed, epoch, "permutation"))


def global_sample_ids(step: int, micro: int, rank: int, batch_size: int, grad_accum: int, world: int) -> list[int]:
    """Global sample ids of (step, micro-step, rank): consecutive positions in the run's sample stream.

    One optimizer step consumes batch_size * world * grad_accum samples; micro-step m of it covers a block of
    batch_size * world ids, split over ranks in order. One process with batch 2B and two with B each see the
    same ids in the same micro-step.
    """
    per_micro = batch_size * world
    start = step * per_micro * grad_accum + micro * per_micro + rank * batch_size
    return list(range(start, start + batch_size))
