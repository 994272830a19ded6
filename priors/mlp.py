"""The small MLP the learned priors are built from (torch only)."""

import torch
from torch import Tensor, nn


def mlp(dim_in: int, hidden: int, dim_out: int, layers: int) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with SiLU (smooth, for Gauss-Newton), then a
    linear output: Linear, SiLU, ..., Linear."""
    dims = [dim_in] + [hidden] * layers
    blocks = []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        blocks += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*blocks, nn.Linear(dims[-1], dim_out))


def mlp_row_jacobian(net: nn.Sequential, x: Tensor, rows: int) -> tuple[Tensor, Tensor]:
    """``net(x)`` (..., n_out) and the Jacobian of its first ``rows`` outputs (..., rows, n_in)
    for an ``mlp`` (Linear, SiLU, ..., Linear), accumulated from the output side (cheaper than
    forward mode when rows < n_in). ``silu'(a) = s (1 + a (1 - s))`` with ``s = sigmoid(a)``."""
    slopes = []
    for layer in net:
        if isinstance(layer, nn.SiLU):
            s = torch.sigmoid(x)
            slopes.append(s * (1 + x * (1 - s)))
        x = layer(x)
    linears = [layer for layer in net if isinstance(layer, nn.Linear)]
    if len(linears) != len(slopes) + 1 or len(net) != 2 * len(linears) - 1:
        raise TypeError("expected alternating Linear and SiLU layers, Linear last")
    jac = linears[-1].weight[:rows].expand(*x.shape[:-1], rows, linears[-1].in_features)
    for linear, slope in zip(reversed(linears[:-1]), reversed(slopes), strict=True):
        jac = (jac * slope[..., None, :]) @ linear.weight
    return x, jac
