"""How far can any reader of the frozen text encoder carry the training vocabulary to held-out words?

The keyframe part reads the prompt only through the text encoder's frozen output. Whatever it learns from
training captions (TRAIN vocabulary), it can name a held-out word's colour, shape or direction only as far as
that output places the held-out caption near the right training captions. This tool measures that ceiling with
small readers trained on the same inputs the U-Net sees, on TRAIN-vocabulary captions only, and scored on
HELD_OUT-vocabulary captions (`captions.heldout_prompt`, the prompts of `tools/eval_bundled.py --paraphrase`):

- `mean`: a linear classifier on the mean of the token states (what `pooled_text` adds to the U-Net);
- `attend`: one learned attention query per attribute over the token states, then a linear classifier (a
  one-head cross-attention reader, the U-Net's way in);
- `nearest`: the training caption nearest by cosine of the mean state, no training at all.

Each reader is trained per attribute (colour, shape, direction) with Adam; `--noise S` adds Gaussian noise of
relative size S to the token states during training (a common way to smooth a conditioning map). A reader that
cannot name held-out words bounds what the U-Net can do with the same encoder and captions; one that can says the
U-Net's text pathway, not the encoder, is what loses them.

    OMP_NUM_THREADS=1 .venv/bin/python tools/probe_text_transfer.py [--train 3000] [--test 500] [--noise 0.0]

Prints a table of held-out (and, for reference, TRAIN-vocabulary test) accuracy per reader and attribute, and
JSON last.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.data.captions import draw_caption, heldout_prompt  # noqa: E402
from vidiff.data.shapes import COLOURS, DIRECTIONS, SHAPES  # noqa: E402
from vidiff.text import TextEncoder  # noqa: E402

ATTRIBUTES = {"colour": COLOURS, "shape": SHAPES, "direction": DIRECTIONS}


def draw_set(num: int, seed: int, heldout: bool, plain_prob: float) -> tuple[list[str], dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    captions, labels = [], {a: [] for a in ATTRIBUTES}
    for _ in range(num):
        values = {a: int(torch.randint(len(v), (1,), generator=gen)) for a, v in ATTRIBUTES.items()}
        args = (COLOURS[values["colour"]], SHAPES[values["shape"]], DIRECTIONS[values["direction"]])
        captions.append(heldout_prompt(*args, gen) if heldout else draw_caption(*args, gen, plain_prob))
        for a in ATTRIBUTES:
            labels[a].append(values[a])
    return captions, {a: torch.tensor(v) for a, v in labels.items()}


def encode(encoder: TextEncoder, captions: list[str], batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    states, masks = [], []
    for i in range(0, len(captions), batch):
        s, m = encoder.encode(captions[i:i + batch])
        states.append(s)
        masks.append(m)
    return torch.cat(states), torch.cat(masks)


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).float()
    return (states * m).sum(1) / m.sum(1).clamp(min=1)


class Reader(torch.nn.Module):
    def __init__(self, dim: int, classes: int, attend: bool):
        super().__init__()
        self.attend = attend
        self.query = torch.nn.Parameter(torch.zeros(dim)) if attend else None
        self.key = torch.nn.Linear(dim, dim) if attend else None
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not self.attend:
            return self.head(mean_pool(states, mask))
        scores = (self.key(states) @ self.query) / states.shape[-1] ** 0.5
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        return self.head((weights.unsqueeze(-1) * states).sum(1))


def train_reader(states, mask, labels, classes: int, attend: bool, noise: float, steps: int, seed: int) -> Reader:
    torch.manual_seed(seed)
    reader = Reader(states.shape[-1], classes, attend)
    opt = torch.optim.Adam(reader.parameters(), lr=3e-3)
    scale = states[mask].std()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(states), (256,), generator=gen)
        x = states[idx]
        if noise:
            x = x + noise * scale * torch.randn(x.shape, generator=gen)
        loss = F.cross_entropy(reader(x, mask[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return reader


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred == labels).float().mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text-encoder", default="default")
    ap.add_argument("--train", type=int, default=3000, help="TRAIN-vocabulary training captions")
    ap.add_argument("--test", type=int, default=500, help="captions in each test set")
    ap.add_argument("--plain-prob", type=float, default=0.5, help="share of plain-template training captions")
    ap.add_argument("--noise", type=float, default=0.0)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    encoder = TextEncoder.load(args.text_encoder)
    sets = {"train": draw_set(args.train, args.seed, False, args.plain_prob),
            "train-vocab test": draw_set(args.test, args.seed + 1, False, args.plain_prob),
            "held-out": draw_set(args.test, args.seed + 2, True, 0.0)}
    encoded = {name: encode(encoder, captions) for name, (captions, _) in sets.items()}
    train_states, train_mask = encoded["train"]
    results: dict[str, dict[str, dict[str, float]]] = {}
    for reader_kind in ("mean", "attend", "nearest"):
        results[reader_kind] = {}
        correct_all = {name: None for name in sets if name != "train"}
        for attr, values in ATTRIBUTES.items():
            labels = sets["train"][1][attr]
            if reader_kind == "nearest":
                bank = F.normalize(mean_pool(train_states, train_mask), dim=-1)
            else:
                reader = train_reader(train_states, train_mask, labels, len(values), reader_kind == "attend",
                                      args.noise, args.steps, args.seed)
            for name in correct_all:
                states, mask = encoded[name]
                with torch.no_grad():
                    if reader_kind == "nearest":
                        pred = labels[(F.normalize(mean_pool(states, mask), dim=-1) @ bank.T).argmax(-1)]
                    else:
                        pred = reader(states, mask).argmax(-1)
                truth = sets[name][1][attr]
                results[reader_kind].setdefault(name, {})[attr] = accuracy(pred, truth)
                hit = pred == truth
                correct_all[name] = hit if correct_all[name] is None else correct_all[name] & hit
        for name, hit in correct_all.items():
            results[reader_kind][name]["all"] = float(hit.float().mean())

    print(f"readers trained on {args.train} TRAIN-vocabulary captions (noise {args.noise}); accuracy:")
    print(f"{'reader':8} {'test set':17} {'colour':>7} {'shape':>7} {'direction':>9} {'all':>7}")
    for reader_kind, by_set in results.items():
        for name, acc in by_set.items():
            print(f"{reader_kind:8} {name:17} {acc['colour']:7.1%} {acc['shape']:7.1%} {acc['direction']:9.1%} "
                  f"{acc['all']:7.1%}")
    print(json.dumps({"args": vars(args), "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
