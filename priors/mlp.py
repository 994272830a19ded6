"""The small MLP the learned priors are built from (torch only)."""

from torch import nn


def mlp(dim_in: int, hidden: int, dim_out: int, layers: int) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with SiLU (smooth, for Gauss-Newton), then a
    linear output: Linear, SiLU, ..., Linear."""
    dims = [dim_in] + [hidden] * layers
    blocks = []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        blocks += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*blocks, nn.Linear(dims[-1], dim_out))
