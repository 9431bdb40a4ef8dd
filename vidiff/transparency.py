"""What vidiff does with the transparent pixels of a user's image or clip, in one warning per input: its readers
take the colours and drop the alpha, so a transparent pixel shows the colour stored under it (a PNG's or a MOV's
own; for a GIF the fill its decoder gives), not a background. Nothing is composited, so nothing is assumed about
the background the user meant."""
from __future__ import annotations

import numpy as np

_FLATTEN = "flatten it onto the background you want first"


def transparency_note(rgba: np.ndarray, pixels: str = "its pixels") -> str | None:
    """"has transparency ..." for uint8 (H,W,4) pixels with any alpha below 255, naming the share of such pixels
    (of `pixels`: "its first frame's pixels") and the colour most of them show once the alpha is dropped; None
    when every pixel is opaque."""
    see_through = rgba[..., 3] < 255
    if not see_through.any():
        return None
    rgb = rgba[see_through][:, :3].astype(np.uint32)
    packed = (rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2])[::max(1, len(rgb) // 100_000)]  # a sample is enough
    values, counts = np.unique(packed, return_counts=True)
    top = int(values[counts.argmax()])
    share = 100 * float(see_through.mean())
    return (f"has transparency ({f'{share:.0f}%' if share >= 1 else 'under 1%'} of {pixels} are not opaque): the "
            f"alpha is dropped, not composited over a background, so those pixels show the colour stored under them "
            f"(here mostly rgb({top >> 16}, {top >> 8 & 255}, {top & 255})); {_FLATTEN}")


def alpha_layer_note(codec: str) -> str:
    """For a VP8 / VP9 stream tagged alpha_mode 1: FFmpeg's own decoders read its colour layer only."""
    return (f"has a {codec.upper()} alpha layer (transparency), which is not decoded: the transparent pixels show "
            f"the colour stored under them, not a background; {_FLATTEN}")
