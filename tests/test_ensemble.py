"""A vmapped ensemble trains exactly what one-at-a-time training does (to float tolerance)."""

import torch

from benchmarks.vmap_ensemble import mlp, train_sequential, train_vmapped


def test_vmapped_ensemble_equals_sequential_training():
    torch.manual_seed(0)
    models = [mlp((8, 16, 16, 3)) for _ in range(5)]
    xs, ys = torch.randn(5, 32, 8), torch.randint(3, (5, 32))
    stacked = train_vmapped(models, xs, ys, steps=20, lr=0.1)
    trained = train_sequential(models, xs, ys, steps=20, lr=0.1)
    for m, model in enumerate(trained):
        for name, p in model.named_parameters():
            torch.testing.assert_close(stacked[name][m], p.detach(), rtol=1e-5, atol=1e-6)
