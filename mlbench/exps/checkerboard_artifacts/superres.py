"""The small super-resolution network, every arm x seed stacked as one model.

    x (n/2^L) -> 3x3 conv (1 -> C) -> ReLU -> [upsampler -> ReLU] x L -> 3x3 conv (C -> 1) -> y (n)

trained with MSE against the n x n target, whose 2^L x 2^L average pool is the input. The M
members (arm-major, seed innermost) are channel groups: the head conv maps the M input planes
to M·C channels with groups = M; the channels of each arm (S·C of them, contiguous) go through
that arm's upsampler with groups = S; the tail maps M·C channels to M planes with groups = M.
Members share no parameter, so one Adam over the stacked tensors is M independent Adams.
Seed k's head and tail start from the same draw in every arm, and every arm of seed k sees the
same batches and test images: comparisons between arms are paired.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mlbench.data import blobs
from mlbench.exps.checkerboard_artifacts import upsamplers as up
from mlbench.exps.checkerboard_artifacts.artifacts import artifact_energy, power_profile

CL = torch.channels_last  # measured: the C -> 1 tail conv with groups = M runs ~4x faster in it on CPU


def init_params(cfg, grid, ctx) -> dict:
    """{name: tensor}: head.* and tail.* (M, ...) from seed k's draw in every arm; up.<arm>.<stage>.*
    (S, ...) the arm's S stacked upsamplers (its own stream per arm and stage)."""
    C, dev = cfg.channels, ctx.device
    head, tail = [], []
    for g in ctx.generators("init-head-tail"):
        head.append((up.uniform((C, 1, 3, 3), 1 / 3, g), up.uniform((C,), 1 / 3, g)))
        b = 1 / math.sqrt(9 * C)
        tail.append((up.uniform((1, C, 3, 3), b, g), up.uniform((1,), b, g)))
    params = {"head.weight": grid.repeat(torch.stack([h[0] for h in head])),  # (M, C, 1, 3, 3)
              "head.bias": grid.repeat(torch.stack([h[1] for h in head])),  # (M, C)
              "tail.weight": grid.repeat(torch.cat([t[0] for t in tail])),  # (M, C, 3, 3)
              "tail.bias": grid.repeat(torch.cat([t[1] for t in tail]))}  # (M,)
    for arm in grid.arms:
        spec = up.upsampler(arm, cfg.negative_control)
        for stage in range(cfg.stages):
            for name, t in up.init_params(spec, C, ctx.generators(f"init-{arm}-stage{stage}")).items():
                params[f"up.{arm}.{stage}.{name}"] = t
    return {k: v.to(dev) for k, v in params.items()}


def forward(cfg, grid, params: dict, x):
    """(B, M, n/2^L, n/2^L) -> (B, M, n, n)."""
    M, S = len(grid), len(grid.seeds)
    h = F.relu(F.conv2d(x.contiguous(memory_format=CL), params["head.weight"].flatten(0, 1),
                        params["head.bias"].flatten(), padding=1, groups=M))  # (B, M·C, h, w)
    for stage in range(cfg.stages):
        parts = h.split(S * cfg.channels, dim=1)  # per arm: (B, S·C, h, w)
        h = torch.cat([up.forward(up.upsampler(arm, cfg.negative_control),
                                  {"weight": params[f"up.{arm}.{stage}.weight"], "bias": params[f"up.{arm}.{stage}.bias"]},
                                  part) for arm, part in zip(grid.arms, parts)], 1)
        h = F.relu(h).contiguous(memory_format=CL)
    return F.conv2d(h, params["tail.weight"], params["tail.bias"], padding=1, groups=M)


def low_resolution(target, stages: int):
    """The network's input: the 2^L x 2^L average pool of the target."""
    return F.avg_pool2d(target, 2 ** stages)


def batch_targets(cfg, grid, pools: list, gens: list, device):
    """Seed k's batch (B indices into its training pool, its own generator) for every arm:
    (B, M, n, n)."""
    per_seed = [pool[torch.randint(len(pool), (cfg.batch_size,), generator=g)] for pool, g in zip(pools, gens)]
    imgs = blobs.render(torch.stack(per_seed).to(device), cfg.image_size)  # (S, B, n, n)
    return grid.repeat(imgs).transpose(0, 1)


def train_step(cfg, grid, params: dict, opt, target):
    """One Adam step of every member; returns the per-member training MSE (M,)."""
    y = forward(cfg, grid, params, low_resolution(target, cfg.stages))
    per_model = (y - target).square().mean((0, 2, 3))
    opt.zero_grad(set_to_none=True)
    per_model.sum().backward()  # members share no parameters: each gets its own gradient
    opt.step()
    return per_model.detach()


@torch.no_grad()
def evaluate(cfg, grid, params: dict, test_target, chunk: int = 32) -> dict:
    """On the test images (T, M, n, n): artifact energy averaged over images (M,), its log10, and
    the test MSE (M,)."""
    energy, sq = [], []
    for t in test_target.split(chunk):
        y = forward(cfg, grid, params, low_resolution(t, cfg.stages))
        energy.append(artifact_energy(y, cfg.crop, cfg.band))  # (b, M)
        sq.append((y - t).double().square().mean((2, 3)))
    e = torch.cat(energy).mean(0)
    return {"energy": e, "log10_energy": e.clamp_min(1e-30).log10(), "test_mse": torch.cat(sq).mean(0)}


@torch.no_grad()
def power_profiles(cfg, grid, params: dict, test_target, chunk: int = 32):
    """Share of the output power at each Chebyshev frequency, averaged over the test images:
    frequencies (F,), shares (M, F)."""
    shares = []
    for t in test_target.split(chunk):
        freqs, share = power_profile(forward(cfg, grid, params, low_resolution(t, cfg.stages)), cfg.crop)
        shares.append(share)  # (b, M, F)
    return freqs, torch.cat(shares).mean(0)


@torch.no_grad()
def outputs(cfg, grid, params: dict, target):
    """The network's output (b, M, n, n) on a few test images (for the figures)."""
    return forward(cfg, grid, params, low_resolution(target, cfg.stages))
