"""Many small same-shaped models trained as one batched ensemble with `torch.func`.

`stack_module_state` stacks the models' parameters along a new leading dimension and
`vmap(grad(loss))` computes every model's gradient in one batched call, so 64 tiny MLPs cost
about as much as one wide one. Each model keeps its own parameters and data: the result equals
training them one at a time (up to floating-point summation order).
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def train_sequential(models: list[nn.Module], xs: torch.Tensor, ys: torch.Tensor, steps: int, lr: float,
                     loss_fn: Callable = nn.functional.cross_entropy) -> list[nn.Module]:
    """The reference: each model its own SGD loop. xs (M, B, in), ys (M, B)."""
    for m, model in enumerate(models):
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xs[m]), ys[m]).backward()
            opt.step()
    return models


def train_vmapped(models: list[nn.Module], xs: torch.Tensor, ys: torch.Tensor, steps: int, lr: float,
                  loss_fn: Callable = nn.functional.cross_entropy) -> dict[str, torch.Tensor]:
    """The same SGD, all models at once: returns the stacked parameters {name: (M, ...)}."""
    params, buffers = stack_module_state(models)
    params = {k: v.detach().clone() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")

    def loss(p, b, x, y):
        return loss_fn(functional_call(base, (p, b), (x,)), y)

    step_grads = vmap(grad(loss))
    for _ in range(steps):
        grads = step_grads(params, buffers, xs, ys)
        params = {k: params[k] - lr * grads[k] for k in params}
    return params
