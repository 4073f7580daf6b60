"""Synthetic videos of a sprite moving on a torus: scripts cached as an HF dataset, then rendered.

A video has T frames of H×W pixels (H = W = `size`). A sprite (a 3×3 square, or a 5-pixel
cross in a 3×3 box) starts at a uniform integer position (x0, y0) and moves horizontally by
d·v pixels per frame, d ∈ {−1 (left), +1 (right)}, v ∈ `speeds`, wrapping around (a torus);
then i.i.d. Gaussian noise of std σ is added:

    video_t(y, x) = sprite((y − y0) mod H, (x − x0 − d·v·t) mod W) + σ·ε_t(y, x),   ε ~ N(0, 1).

Tasks: `direction` (label = (d + 1) / 2, the sprite always the square) and `shape` (label =
0 square / 1 cross, d and v random): the first needs the order of the frames, the second only
one frame.

Why a torus and a uniform start: the time reversal of a (d, x0) video, frame t ↦ T−1−t, is
the (−d, x0 + d·v·(T−1) mod W) video with the same y0, v and (i.i.d.) noise. x0 is uniform on
Z_W, so reversal maps the left class exactly onto the right class: nothing but the order of
the frames tells the classes apart (clamped or bouncing motion would leak edge statistics).

The cached dataset holds each video's script (integers: label, sprite, d, v, x0, y0), drawn by
numpy from an explicit seed; `render` paints a batch of scripts with noise from a torch
generator, so the pixels are as reproducible as the scripts and nothing large is stored.
"""

from __future__ import annotations

from pathlib import Path

from mlbench.data import cache

TASKS = ("direction", "shape")
SPRITES = ("square", "cross")
FIELDS = ("label", "sprite", "direction", "speed", "x0", "y0")


def sprite_masks():
    """(2, 3, 3) float32: the square (9 pixels on) and the cross (5 pixels on)."""
    import torch

    square = torch.ones(3, 3)
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    return torch.stack([square, cross])


def _script_rows(task: str, count: int, seed: int, size: int, speeds: tuple[int, ...]):
    """`count` video scripts of `task` from `seed` alone (pure: `datasets` fingerprints it)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    direction = rng.choice(np.array([-1, 1]), count)
    speed = rng.choice(np.array(speeds), count)
    x0, y0 = rng.integers(0, size, count), rng.integers(0, size, count)
    sprite = np.zeros(count, dtype=np.int64) if task == "direction" else rng.integers(0, 2, count)
    label = (direction + 1) // 2 if task == "direction" else sprite
    for row in zip(label.tolist(), sprite.tolist(), direction.tolist(), speed.tolist(), x0.tolist(), y0.tolist()):
        yield dict(zip(FIELDS, row))


def load(cache_dir: Path, task: str, count: int, seeds: list[int], size: int, speeds: tuple[int, ...]) -> dict:
    """Scripts of `count` videos per seed: {field: int64 tensor (S, count)}; seed k draws from
    `seeds[k]` (an int, e.g. `ctx.seed(stream, k)`), built once per seed and cached as Arrow."""
    import torch

    if task not in TASKS:
        raise ValueError(f"unknown video task {task!r}: choose from {', '.join(TASKS)}")
    per_seed = [cache.build(_script_rows, cache_dir, task=task, count=count, seed=int(s), size=size,
                            speeds=tuple(int(v) for v in speeds)).with_format("torch")[:] for s in seeds]
    return {f: torch.stack([p[f] for p in per_seed]).long() for f in FIELDS}


def render(script: dict, frames: int, size: int, noise: float, generator) -> "torch.Tensor":
    """Paint scripts {field: (n,)} as videos (n, T, H, W) float32, noise drawn from `generator`."""
    import torch

    n = script["label"].shape[0]
    t = torch.arange(frames)
    d = torch.arange(3) - 1  # sprite offsets around its centre
    rows = (script["y0"][:, None, None, None] + d[None, None, :, None]) % size  # (n, 1, 3, 1)
    x_t = script["x0"][:, None] + script["direction"][:, None] * script["speed"][:, None] * t  # (n, T)
    cols = (x_t[:, :, None, None] + d[None, None, None, :]) % size  # (n, T, 1, 3)
    canvas = torch.zeros(n, frames, size, size)
    idx_n = torch.arange(n)[:, None, None, None]
    idx_t = t[None, :, None, None]
    canvas[idx_n, idx_t, rows, cols] = sprite_masks()[script["sprite"]][:, None]  # (n, 1, 3, 3) broadcast
    return canvas + noise * torch.randn(n, frames, size, size, generator=generator)


def reverse_time(videos):
    """Frames in reverse order: (..., T, H, W) -> (..., T, H, W)."""
    return videos.flip(-3)


def shuffle_frames(videos, generator):
    """Each video's frames in a fresh uniform random order: (n, T, H, W) -> (n, T, H, W)."""
    import torch

    n, frames = videos.shape[:2]
    order = torch.rand(n, frames, generator=generator).argsort(-1)  # (n, T)
    return videos[torch.arange(n)[:, None], order]
