"""temporal-shift: per task, every arm × seed trained as one stacked model, then tested and counted."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mlbench.data import videos
from mlbench.exps.temporal_shift import key, tasks
from mlbench.exps.temporal_shift.cost import costs, shift_flops
from mlbench.exps.temporal_shift.network import StackedNet, init_params
from mlbench.exps.temporal_shift.report import report

EVAL_CHUNK = 32  # test videos per forward pass (measured: 64+ ran slower per video, mostly page faults from fresh allocations)


def video_batch(cfg, script: dict, start: int, count: int, noise_gens: list, shuffle_gens: list):
    """Videos [start, start + count) of every seed's script: videos (S, n, T, H, W), labels (S, n).
    Under the negative control each video's frames come in a fresh random order."""
    clips, labels = [], []
    for k, g in enumerate(noise_gens):
        part = {f: col[k, start:start + count] for f, col in script.items()}
        clip = videos.render(part, cfg.frames, cfg.size, cfg.noise, g)
        clips.append(videos.shuffle_frames(clip, shuffle_gens[k]) if cfg.negative_control else clip)
        labels.append(part["label"])
    return torch.stack(clips), torch.stack(labels)


def stacked_input(grid, clips):
    """Seed k's videos for every arm: (S, n, T, H, W) -> (n, M, T, H, W), model m in channel m."""
    return grid.repeat(clips).transpose(0, 1).contiguous()


def per_model_loss(logits, labels):
    """Mean cross-entropy per model: (M, n, K), (M, n) -> (M,)."""
    M = logits.shape[0]
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(M, -1).mean(1)


@torch.no_grad()
def test_logits(net, params, grid, clips, dev):
    """Logits (M, n, K) on test videos (S, n, T, H, W), EVAL_CHUNK videos at a time."""
    out = [net(params, stacked_input(grid, clips[:, i:i + EVAL_CHUNK]).to(dev)) for i in range(0, clips.shape[1], EVAL_CHUNK)]
    return torch.cat(out, 1)


def accuracy(logits, labels):
    """Per model: (M, n, K), (M, n) -> (M,) float64."""
    return (logits.argmax(-1) == labels).double().mean(1)


def train_task(cfg, ctx, task: str, arms: tuple[str, ...]) -> dict:
    """Train every (arm, seed) model of `task` together; JSON-able results and one checkpoint per member."""
    grid, dev, S = ctx.grid(arms, task=task), ctx.device, len(ctx.seeds)
    net = StackedNet(arms, S, cfg.channels, cfg.blocks, cfg.fold_div)
    params = init_params(cfg, arms, ctx.generators(f"init-{task}"), ctx.generators(f"init-3d-{task}"))
    params = {a: {n: p.to(dev).requires_grad_() for n, p in ps.items()} for a, ps in params.items()}  # (S, ...)
    opt = torch.optim.Adam([p for ps in params.values() for p in ps.values()], lr=cfg.lr, foreach=True)  # elementwise: M Adams
    scripts = {split: videos.load(ctx.cache_dir, task, n, [ctx.seed(f"scripts-{task}-{split}", k) for k in ctx.seeds],
                                  cfg.size, cfg.speeds) for split, n in (("train", cfg.steps * cfg.batch_size),
                                                                         ("test", cfg.test_size))}
    test_clips, test_labels = video_batch(cfg, scripts["test"], 0, cfg.test_size,
                                          ctx.generators(f"noise-{task}-test"), ctx.generators(f"order-{task}-test"))
    test_y = grid.repeat(test_labels).to(dev)  # (M, n)
    noise, order = ctx.generators(f"noise-{task}-train"), ctx.generators(f"order-{task}-train")
    curve_steps, curve, loss = [], [], torch.zeros(len(grid))
    for step in ctx.steps(cfg.steps, every=cfg.eval_every, desc=f"{task}: {len(grid)} stacked models"):
        if step.last or grid.all_diverged:
            break
        if step.evaluate:
            acc = accuracy(test_logits(net, params, grid, test_clips[:, :cfg.curve_size], dev),
                           test_y[:, :cfg.curve_size]).cpu()
            curve_steps.append(step.index)
            curve.append(acc.tolist())
            ctx.log_models(grid, step.index, test_acc_curve=acc, train_loss=loss)
        clips, labels = video_batch(cfg, scripts["train"], step.index * cfg.batch_size, cfg.batch_size,
                                    noise, order)
        losses = per_model_loss(net(params, stacked_input(grid, clips).to(dev)), grid.repeat(labels).to(dev))
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()  # the models share no parameter: each gets its own gradient
        opt.step()
        loss = losses.detach().cpu()
        ctx.watch(grid, step.index + 1, train_loss=loss)
    result = measure(cfg, grid, net, params, test_clips, test_y, dev)
    curve_steps.append(step.index)  # the last curve point: the final test logits' first curve_size videos
    curve.append(result.pop("curve_point"))
    ctx.log_models(grid, step.index, test_acc_curve=curve[-1], train_loss=loss)
    ctx.save_models(grid, {}, name=lambda m: f"{task}-{grid.arm_of(m)}-seed{grid.seed_of(m)}",
                    tensors=lambda m, _: {n: p[grid.seeds.index(grid.seed_of(m))] for n, p in params[grid.arm_of(m)].items()},
                    metadata=lambda m: {"arm": grid.arm_of(m), "task": task, "seed_index": str(grid.seed_of(m)),
                                        "channels": str(cfg.channels), "blocks": str(cfg.blocks), "frames": str(cfg.frames)})
    per_arm = grid.by_arm(torch.tensor(curve, dtype=torch.float64).T)  # {arm: (S, evaluations)}
    first = {int(c): i for i, c in reversed(list(enumerate(test_labels[0].tolist())))}  # class -> first test video
    examples = {str(c): test_clips[0, i].tolist() for c, i in sorted(first.items())}  # seed 0's, as the models saw them
    return {**result, "curve_steps": curve_steps, "curve": {a: c.tolist() for a, c in per_arm.items()},
            "examples": examples}


def measure(cfg, grid, net, params, test_clips, test_y, dev) -> dict:
    """Test accuracy, accuracy on the time-reversed test videos, max |Δlogit| under reversal, and the costs."""
    logits = test_logits(net, params, grid, test_clips, dev)
    reversed_logits = test_logits(net, params, grid, videos.reverse_time(test_clips), dev)
    counted = costs(cfg, grid.arms)
    per_member = lambda name: [counted[grid.arm_of(m)][name] for m in range(len(grid))]  # noqa: E731
    m = grid.measurements(acc=accuracy(logits, test_y).cpu(), acc_reversed=accuracy(reversed_logits, test_y).cpu(),
                          reversal_max_abs=(logits - reversed_logits).abs().amax((1, 2)).double().cpu(),
                          params=per_member("params"), macs=per_member("macs"), macs_formula=per_member("macs_formula"))
    curve_point = accuracy(logits[:, :cfg.curve_size], test_y[:, :cfg.curve_size]).cpu().tolist()
    return {"measurements": m, "costs": counted, "curve_point": curve_point}


def derive(cfg, m: dict) -> dict:
    """Per-seed comparisons the claims read: TSM's gain over 2D, each other arm's cost over TSM's."""
    for r in m.values():
        r["acc_pct"] = [100 * a for a in r["acc"]]
    tsm, twod = m[key("tsm")], m[key("2d")]
    gain = [a - b for a, b in zip(tsm["acc"], twod["acc"])]
    m[key("tsm-vs-2d")] = {"gain": gain, "gain_points": [100 * g for g in gain]}
    for arm in cfg.arms:
        if arm not in ("2d", "tsm"):
            r = m[key(arm)]
            m[key(f"{arm}-vs-tsm")] = {"macs_ratio": [a / b for a, b in zip(r["macs"], tsm["macs"])],
                                       "params_ratio": [a / b for a, b in zip(r["params"], tsm["params"])],
                                       "acc_diff": [a - b for a, b in zip(r["acc"], tsm["acc"])]}
    return m


def run(cfg, ctx) -> dict:
    trained = ctx.map_units({f"train-{task}": (lambda task=task, names=names: train_task(cfg, ctx, task, names))
                             for task, names in tasks(cfg).items()})
    m: dict = {}
    for result in trained.values():
        m.update(result["measurements"])
    m = derive(cfg, m)
    report(cfg, ctx, m, {task: trained[f"train-{task}"] for task in tasks(cfg)}, shift_flops(cfg))
    return m
