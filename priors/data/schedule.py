"""The learning-rate schedule every trainer of the priors uses."""

import torch

WARMUP = 0.05
"""Fraction of the steps spent raising the learning rate."""


def one_cycle(opt: torch.optim.Optimizer, lr: float, steps: int):
    """torch's one-cycle schedule over ``steps`` steps with a ``WARMUP`` warm-up of at least two
    steps (``OneCycleLR`` divides by zero when a phase is one step long, e.g. at 20 steps); a
    constant ``lr`` below 4 steps, too few for a cycle."""
    if steps < 4:
        for group in opt.param_groups:
            group["lr"] = lr
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    pct_start = max(WARMUP, 2.0 / steps)
    return torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=pct_start)
