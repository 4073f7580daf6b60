"""The feed-forward variants of Shazeer 2020 (GLU Variants Improve Transformer), no biases.

Ungated, two matrices W₁ (d × d_ff) and W₂ (d_ff × d):
    FFN_ReLU(x) = max(0, xW₁) W₂            FFN_GELU(x) = GELU(xW₁) W₂
Gated, three matrices W, V (d × d_ff′) and W₂ (d_ff′ × d), ⊗ the element-wise product:
    FFN_GLU(x)      = (σ(xW) ⊗ xV) W₂       FFN_Bilinear(x) = (xW ⊗ xV) W₂
    FFN_ReGLU(x)    = (max(0, xW) ⊗ xV) W₂  FFN_GEGLU(x)    = (GELU(xW) ⊗ xV) W₂
    FFN_SwiGLU(x)   = (Swish₁(xW) ⊗ xV) W₂, Swish₁(z) = z·σ(z) (SiLU)
Equal parameters and FLOPs: 2·d·d_ff = 3·d·d_ff′, so d_ff′ = ⅔·d_ff (the paper: 3072 -> 2048).
GELU is the exact one, x·Φ(x) (erf), torch's default.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# arm -> the activation on xW₁ (ungated) or on the gate xW (gated: its product with xV)
ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "swish": F.silu, "glu": torch.sigmoid, "bilinear": lambda z: z,
               "reglu": F.relu, "geglu": F.gelu, "swiglu": F.silu}
GATED = ("glu", "bilinear", "reglu", "geglu", "swiglu")


def gated_width(d_ff: int) -> int:
    """d_ff′ = round(⅔·d_ff): 512 -> 341, 3072 -> 2048."""
    return round(2 * d_ff / 3)


def width(arm: str, d_ff: int) -> int:
    return gated_width(d_ff) if arm in GATED else d_ff


def ffn_params(arm: str, d_model: int, d_ff: int) -> int:
    """Weights of one FFN block: 2·d·d_ff ungated, 3·d·d_ff′ gated."""
    return (3 if arm in GATED else 2) * d_model * width(arm, d_ff)


def init_ffn(arm: str, z: dict, d_ff: int, n_layers: int) -> dict:
    """One init rule for every arm from shared standard normals `z` (S, L, ·, d_ff) / (S, L, d_ff, ·):
    W₁, W, V ~ N(0, 1/d), W₂ ~ N(0, 1/width) / √(2L). Gated arms take the first d_ff′ columns,
    so seed k's draws are shared by every arm (paired arms), scaled to each arm's fan-in."""
    w = width(arm, d_ff)
    d = z["w1"].shape[-2]
    w2 = z["w2"][:, :, :w, :] / math.sqrt(w * 2 * n_layers)
    if arm in GATED:
        return {"w": z["w1"][..., :w] / math.sqrt(d), "v": z["v"][..., :w] / math.sqrt(d), "w2": w2}
    return {"w1": z["w1"] / math.sqrt(d), "w2": w2}


def ffn(arm: str, x, p: dict, layer: int):
    """FFN_arm(x) for x (S, B, d) and one layer of p (each (S, L, ...)): (S, B, d)."""
    act = ACTIVATIONS[arm]
    if arm in GATED:
        hidden = act(x @ p["w"][:, layer]) * (x @ p["v"][:, layer])  # (S, B, d_ff′)
    else:
        hidden = act(x @ p["w1"][:, layer])  # (S, B, d_ff)
    return hidden @ p["w2"][:, layer]


def stacked_init(grid, per_seed: list[dict], F_: int, L: int) -> tuple[dict, dict]:
    """Per-seed draws {name: tensor} stacked to (S, ...): the `z_w1`, `z_v`, `z_w2` draws become
    each arm's FFN weights (`init_ffn`), every other name a weight the arms share, repeated to
    (M, ...) over the grid. Returns (shared, {arm: ffn params})."""
    stack = {k: torch.stack([p[k] for p in per_seed]) for k in per_seed[0]}  # (S, ...)
    shared = {k: grid.repeat(v) for k, v in stack.items() if not k.startswith("z_")}
    z = {"w1": stack["z_w1"], "v": stack["z_v"], "w2": stack["z_w2"]}
    return shared, {arm: init_ffn(arm, z, F_, L) for arm in grid.arms}
