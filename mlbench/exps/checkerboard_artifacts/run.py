"""checkerboard-artifacts: the upsamplers at initialisation (one unit), then the stacked
super-resolution training (one unit), then the measurements and the report."""

from __future__ import annotations

import torch

from mlbench.core.grid import arm_key
from mlbench.data import blobs
from mlbench.exps.checkerboard_artifacts import (GAP_ARMS, OVERLAP, REFERENCE, gap_steps, overlap_key,
                                                 trained_arms)
from mlbench.exps.checkerboard_artifacts import superres
from mlbench.exps.checkerboard_artifacts import upsamplers as up
from mlbench.exps.checkerboard_artifacts.artifacts import (artifact_energy, log10_energy, phase_contrast,
                                                           power_profile, uniform_phase_contrast, uniform_phase_sums,
                                                           uniform_tconv_output)
from mlbench.exps.checkerboard_artifacts.report import report

FIGURE_PX = 8  # side of the output patches shown in the figures


def init_statistics(cfg, ctx) -> dict:
    """P of every upsampler on a constant input of ones, `init_draws` inits per seed, signed and
    |w|; and of the all-ones kernels. On the CPU in float32 whatever the device: exactness is a
    property of the arithmetic, and cuDNN's Winograd/FFT kernels round tile by tile. The blur
    reads one pixel further toward the border, so its crop is one pixel wider."""
    S, R, C, n = len(ctx.seeds), cfg.init_draws, cfg.channels, cfg.init_size
    x = torch.ones(1, S * R * C, n, n)
    per_arm, patches = {}, {}
    for arm in trained_arms(cfg):
        spec = up.upsampler(arm, cfg.negative_control)
        params = up.init_params(spec, C, ctx.generators(f"stats-{arm}"), R)
        with torch.no_grad():
            y = up.forward(spec, params, x).view(S * R, C, 2 * n, 2 * n)  # (seed, draw) major
            y_abs = up.forward(spec, up.same_sign(params), x).view(S * R, C, 2 * n, 2 * n)
        crop = cfg.crop + int(spec.blur)
        p, p_abs = phase_contrast(y, 2, crop).view(S, R), phase_contrast(y_abs, 2, crop).view(S, R)
        per_arm[arm] = {"phase_contrast": p.mean(1).tolist(), "phase_contrast_min": p.min(1).values.tolist(),
                        "phase_contrast_max": p.max(1).values.tolist(), "phase_contrast_abs": p_abs.mean(1).tolist(),
                        "phase_contrast_abs_max": p_abs.max(1).values.tolist()}
        c = cfg.crop
        patches[arm] = {"signed": y[0, 0, c:c + FIGURE_PX, c:c + FIGURE_PX].tolist(),
                        "same_sign": y_abs[0, 0, c:c + FIGURE_PX, c:c + FIGURE_PX].tolist()}
    overlap = {}
    for k, s in OVERLAP:
        y = uniform_tconv_output(k, s, C, n)
        p = phase_contrast(y, s, cfg.crop).item()
        overlap[overlap_key(k, s)] = {"phase_contrast": p, "closed_form": uniform_phase_contrast(k, s),
                                      "phase_sums": [v * C for v in uniform_phase_sums(k, s)],
                                      "patch": y[0, 0, cfg.crop:cfg.crop + 3 * s, cfg.crop:cfg.crop + 3 * s].tolist()}
    return {"per_arm": per_arm, "patches": patches, "overlap": overlap}


def image_pools(cfg, ctx) -> tuple[list, list]:
    """Per seed: blob parameters of its training pool (N, K, 4) and its test images (T, n, n)."""
    pools, tests = [], []
    for k in ctx.seeds:
        p = blobs.load(cfg.train_images + cfg.test_images, ctx.seed("images", k), ctx.cache_dir, blobs=cfg.blobs,
                       size=cfg.image_size, sigma_min=cfg.sigma_min, sigma_max=cfg.sigma_max)
        pools.append(p[:cfg.train_images])
        tests.append(blobs.render(p[cfg.train_images:], cfg.image_size))
    return pools, tests


def train(cfg, ctx) -> dict:
    """Every arm x seed trained as one stacked model; test energy and MSE every `eval_every` steps."""
    grid, dev = ctx.grid(trained_arms(cfg)), ctx.device
    pools, tests = image_pools(cfg, ctx)
    test_target = grid.repeat(torch.stack(tests)).transpose(0, 1).to(dev)  # (T, M, n, n)
    params = {k: v.requires_grad_(True) for k, v in superres.init_params(cfg, grid, ctx).items()}
    opt = torch.optim.Adam(list(params.values()), lr=cfg.lr)
    gens = ctx.generators("batches")
    curve_steps, curve_energy, curve_mse, losses = [], [], [], None
    for step in ctx.steps(cfg.steps, every=cfg.eval_every, desc=f"train {len(grid)} upsampler models"):
        if step.evaluate:
            ev = superres.evaluate(cfg, grid, params, test_target)
            ctx.log_models(grid, step.index, log10_energy=ev["log10_energy"], test_mse=ev["test_mse"],
                           **({} if losses is None else {"train_mse": losses}))  # the last step's batch
            curve_steps.append(step.index)
            curve_energy.append(ev["log10_energy"].tolist())
            curve_mse.append(ev["test_mse"].tolist())
            if step.last:
                break
        target = superres.batch_targets(cfg, grid, pools, gens, dev)
        losses = superres.train_step(cfg, grid, params, opt, target).cpu()
        ctx.watch(grid, step.index + 1, train_mse=losses)  # NaN/inf: recorded, never a crash
    save(cfg, ctx, grid, params)
    sample = superres.outputs(cfg, grid, params, test_target[:1])[0]  # (M, n, n): first test image
    freqs, shares = superres.power_profiles(cfg, grid, params, test_target)
    by_arm = lambda rows: {a: c.tolist() for a, c in grid.by_arm(torch.tensor(rows, dtype=torch.float64).T).items()}  # noqa: E731
    return {"measurements": grid.measurements(log10_energy=curve_energy[-1], test_mse=curve_mse[-1]),
            "curve_steps": curve_steps, "curve_energy": by_arm(curve_energy), "curve_mse": by_arm(curve_mse),
            "target_log10_energy": target_energy(cfg, tests), "frequencies": freqs.tolist(),
            "profile": {a: p.tolist() for a, p in grid.by_arm(shares.cpu()).items()},
            "target_profile": [power_profile(t, cfg.crop)[1].mean(0).tolist() for t in tests],
            "sample": {"target": tests[0][0].tolist(), "arms": {a: sample[grid.index(a, grid.seeds[0])].tolist()
                                                                 for a in grid.arms}}}


def target_energy(cfg, tests: list) -> list[float]:
    """log10 artifact energy of the targets themselves, per seed (the floor a perfect net reaches)."""
    return [log10_energy(artifact_energy(t, cfg.crop, cfg.band).mean().item()) for t in tests]


def save(cfg, ctx, grid, params: dict) -> None:
    """One safetensors file per member: its head and tail, and its arm's upsampler weights."""
    stacked = {k: v.detach() for k, v in params.items() if not k.startswith("up.")}  # (M, ...)

    def member(m: int, shared: dict) -> dict:
        arm, s = grid.arm_of(m), grid.seeds.index(grid.seed_of(m))
        own = {f"up.{stage}.{name}": params[f"up.{arm}.{stage}.{name}"].detach()[s]  # (S, ...) per arm
               for stage in range(cfg.stages) for name in ("weight", "bias")}
        return {**shared, **own}

    ctx.save_models(grid, stacked, tensors=member)


def measurements(cfg, init: dict, trained: dict) -> dict:
    """{arm: {metric: [per seed]}}: init and trained metrics per upsampler, the all-ones kernels
    (seed-free: one value per seed), and the gap Δ at each trend step."""
    m = {arm: {**init["per_arm"][arm], **trained["measurements"][arm]} for arm in trained_arms(cfg)}
    S = len(trained["target_log10_energy"])
    for key, o in init["overlap"].items():
        m[key] = {"phase_contrast": [o["phase_contrast"]] * S,
                  "closed_form_error": [abs(o["phase_contrast"] - o["closed_form"])] * S}
    steps, curves = trained["curve_steps"], trained["curve_energy"]  # curves: {arm: [seed][evaluation]}
    for a in GAP_ARMS:
        for s in gap_steps(cfg):
            i = steps.index(s)
            m[arm_key(a, step=s)] = {"gap": [arm[i] - ref[i] for arm, ref in zip(curves[a], curves[REFERENCE])]}
    return m


def run(cfg, ctx) -> dict:
    init = ctx.unit("init-statistics", lambda: init_statistics(cfg, ctx))
    trained = ctx.unit("train", lambda: train(cfg, ctx))
    m = measurements(cfg, init, trained)
    report(cfg, ctx, m, init, trained)
    return m
