"""Geman-McClure robust kernels as least-squares residuals (pure functions).

``rho(s) = sigma^2 s / (sigma^2 + s)`` of a squared error ``s``: quadratic for ``s << sigma^2``,
bounded by ``sigma^2`` for ``s >> sigma^2``, so an outlier costs at most ``sigma^2`` and pulls
less the further out it lies. Written as residuals ``e`` with ``|e|^2 = rho``, so Gauss-Newton
and LM use them directly:

* per coordinate (``gmof_residual``): ``e = sigma r / sqrt(sigma^2 + r^2)``, the 2D keypoint
  term's kernel (SLAHMR's ``Joints2DLoss``);
* per element vector (``gmof_vector_residual``): ``e = sigma r / sqrt(sigma^2 + |r|^2)``, the
  motion prior's kernel: a whole transition far from the training data costs at most ``sigma^2``.
"""

import torch
from torch import Tensor


def gmof_residual(r: Tensor, sigma: float) -> Tensor:
    """Signed square root of the Geman-McClure function: ``gmof_residual(r)^2 = rho(r^2)``."""
    return sigma * r / torch.sqrt(sigma**2 + r**2)


def gmof_derivative(r: Tensor, sigma: float) -> Tensor:
    """``d gmof_residual / d r = sigma^3 / (sigma^2 + r^2)^(3/2)``."""
    return sigma**3 / (sigma**2 + r**2).pow(1.5)


def gmof_vector_residual(r: Tensor, sigma: float) -> Tensor:
    """(..., D) ``sigma r / sqrt(sigma^2 + |r|^2)`` of residual vectors (..., D): its squared norm
    is ``rho(|r|^2) < sigma^2``."""
    return r * (sigma / torch.sqrt(sigma**2 + r.square().sum(-1, keepdim=True)))


def gmof_vector_jacobian(r: Tensor, jac: Tensor, sigma: float) -> Tensor:
    """(..., D, n) Jacobian of ``gmof_vector_residual`` given ``r`` (..., D) and its Jacobian
    ``jac`` (..., D, n): ``w (J - r (r^T J) / (sigma^2 + |r|^2))``, ``w = sigma / sqrt(sigma^2 +
    |r|^2)``."""
    denom = sigma**2 + r.square().sum(-1)  # (...,)
    w = sigma / torch.sqrt(denom)
    rtj = torch.einsum("...d,...dn->...n", r, jac)
    return w[..., None, None] * (jac - r[..., :, None] * (rtj / denom[..., None])[..., None, :])
