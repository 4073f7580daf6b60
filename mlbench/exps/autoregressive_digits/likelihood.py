"""Exact likelihoods by the chain rule, and the checks that make them exact.

For x ∈ {0,1}^D and any ordering, p(x) = Π_d p(x_d | x_<d). Every model here outputs one logit
per pixel, p_d = σ(logit_d), and is autoregressive when logit_d depends only on the pixels
before d in its ordering. Then

    NLL(x) = −Σ_d [x_d log p_d + (1 − x_d) log(1 − p_d)]        (nats per image)

is the exact negative log-likelihood of a normalised distribution. The property is checked,
not assumed: ∂logit_d/∂x_j must be exactly 0 whenever j is not before d (diagonal included).

A mixture of K autoregressive models (MADE with K masks) is still a distribution if its
*probabilities* are averaged: log p(x) = log((1/K) Σ_k p_k(x)). Averaging the logits instead
gives Π_d σ(mean_k logit_dk), which is not normalised: never report it as a likelihood.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

LogitFn = Callable[[torch.Tensor], torch.Tensor]  # (M, B, D) inputs -> (M, B, D) logits


def nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(M, B, D) logits and binary x (broadcast against each other) -> (M, B) nats per image."""
    logits, x = torch.broadcast_tensors(logits, x)
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def smoothed_marginals(x_train: torch.Tensor) -> torch.Tensor:
    """The independent-pixel model in closed form: p_d = (n_d + 1)/(N + 2) (Laplace), (S, D)
    from (S, N, D). Pixels that are never on get a small, finite probability."""
    n = x_train.shape[1]
    return (x_train.sum(1) + 1.0) / (n + 2.0)


def log_odds(p: torch.Tensor) -> torch.Tensor:
    """logit(p) = log p − log(1 − p): the bias that makes σ(b) = p."""
    return torch.log(p) - torch.log1p(-p)


def mixture_nll(component_logits: list[torch.Tensor], x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """−log((1/K_m) Σ_{k<K_m} p_k(x)) per member m: the probability average of its first K_m
    components (counts (M,)). component_logits: K_max tensors (M, B, D) -> (M, B)."""
    log_p = torch.stack([-nll(lg, x) for lg in component_logits])  # (K, M, B)
    k = torch.arange(len(component_logits), device=x.device)[:, None, None]
    log_p = log_p.masked_fill(k >= counts[None, :, None], -math.inf)  # members with fewer masks
    return -(torch.logsumexp(log_p, 0) - torch.log(counts.to(log_p.dtype))[:, None])


def logit_average_nll(component_logits: list[torch.Tensor], x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The invalid "ensemble": NLL of σ(mean_k logit_k). Shown beside `mixture_nll` only to say
    why it is not a likelihood (its probabilities over {0,1}^D do not sum to 1)."""
    stacked = torch.stack(component_logits)  # (K, M, B, D)
    k = torch.arange(len(component_logits), device=x.device)[:, None, None, None]
    use = (k < counts[None, :, None, None]).to(stacked.dtype)
    mean = (stacked * use).sum(0) / counts.to(stacked.dtype)[:, None, None]
    return nll(mean, x)


def jacobian(fn: LogitFn, x: torch.Tensor) -> torch.Tensor:
    """∂logit_d/∂x_j for every member at one input each: x (M, D) -> (M, D, D), [m, d, j].
    Members are independent, so the backward pass of output d (one-hot d for every member) gives
    row d of every member; all D rows in one vectorised backward (`is_grads_batched`)."""
    m, d = x.shape
    x = x.detach().clone().requires_grad_(True)
    logits = fn(x[:, None, :])[:, 0, :]  # (M, D)
    rows = torch.eye(d, device=x.device, dtype=logits.dtype)[:, None, :].expand(d, m, d)  # (D, M, D)
    return torch.autograd.grad(logits, x, grad_outputs=rows, is_grads_batched=True)[0].transpose(0, 1)


def not_before(degrees: torch.Tensor) -> torch.Tensor:
    """(M, D) position of each pixel in its model's ordering (1..D) -> (M, D, D) bool, [m, d, j]
    true where pixel j is not before pixel d: the upper triangle with its diagonal, in the
    model's ordering."""
    return degrees[:, None, :] >= degrees[:, :, None]


def violations(jac: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Entries of the Jacobian that must be exactly zero but are not, counted per member (M,)."""
    return ((jac != 0) & not_before(degrees)).sum((1, 2))


def used_context(jac: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Nonzero entries where the model may look (j before d), per member (M,): a model that
    ignored its context would pass the zero check trivially."""
    return ((jac != 0) & ~not_before(degrees)).sum((1, 2))


def ancestral_sample(fn: LogitFn, degrees: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """x_d = [u_d < p(x_d | x_<d)], one pixel at a time in each member's ordering.
    u: (M, n, D) uniforms (shared across a seed's models: paired samples) -> (M, n, D)."""
    m, n, d = u.shape
    x = torch.zeros_like(u)
    order = torch.argsort(degrees, dim=1)  # (M, D): pixel at each position
    for t in range(d):
        pixel = order[:, t][:, None, None].expand(m, n, 1)  # (M, n, 1)
        p = torch.sigmoid(torch.gather(fn(x), 2, pixel))
        x = x.scatter(2, pixel, (torch.gather(u, 2, pixel) < p).to(x.dtype))
    return x
