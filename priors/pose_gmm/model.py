"""Gaussian-mixture pose prior over the 63-D SMPL body pose (21 joints, axis-angle).

Each component ``k`` has weight ``w_k``, mean ``mu_k`` and precision ``P_k = U_k U_k^T`` (``U_k``
upper triangular, scikit-learn's ``precisions_cholesky_``). Its negative log-likelihood is

    E_k(x) = 0.5 |r_k(x)|^2 + c_k,   r_k(x) = U_k^T (x - mu_k),
    c_k = -log w_k + 0.5 D log(2 pi) - sum_d log (U_k)_dd.

The least-squares residual follows SMPLify's max-mixture: take the component ``k*`` of lowest
``E_k`` and return ``[r_k*, sqrt(2 (c_k* - c_min))]`` (D + 1 entries), so that
``0.5 |residual|^2 + c_min = min_k E_k``. The constant entry makes the components comparable inside
one least-squares problem; its gradient is zero. ``min_k E_k`` bounds the mixture's exact NLL
(``nll``) from above by at most ``log K``.

Imports torch and numpy only (never slahmr_opt).
"""

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

SHIPPED = Path(__file__).resolve().with_name("pose_gmm.npz")


class PoseGMM(nn.Module):
    """Max-mixture Gaussian pose prior with a least-squares residual.

    Args:
        weights: (K,) mixture weights (sum 1).
        means: (K, D) component means, D = 63 (axis-angle, radians).
        precisions_cholesky: (K, D, D) upper-triangular ``U_k`` with precision ``U_k U_k^T``.
        metadata: provenance (data, split, counts, command), kept as ``self.metadata``.
    """

    def __init__(
        self,
        weights: np.ndarray | Tensor,
        means: np.ndarray | Tensor,
        precisions_cholesky: np.ndarray | Tensor,
        metadata: dict | None = None,
    ):
        super().__init__()
        weights = torch.as_tensor(weights, dtype=torch.float64)
        means = torch.as_tensor(means, dtype=torch.float64)
        chol = torch.as_tensor(precisions_cholesky, dtype=torch.float64)
        num, dim = means.shape
        if weights.shape != (num,) or chol.shape != (num, dim, dim):
            raise ValueError(
                f"expected weights (K,), means (K, D), precisions_cholesky (K, D, D); got "
                f"{tuple(weights.shape)}, {tuple(means.shape)}, {tuple(chol.shape)}"
            )
        const = (
            -weights.log()
            + 0.5 * dim * math.log(2 * math.pi)
            - torch.diagonal(chol, dim1=-2, dim2=-1).log().sum(-1)
        )
        self.register_buffer("means", means)
        self.register_buffer("precisions_cholesky", chol)
        self.register_buffer("log_weights", weights.log())
        self.register_buffer("consts", const)
        self.metadata = metadata or {}

    @property
    def dim(self) -> int:
        return self.means.shape[-1]

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PoseGMM":
        """Load a saved prior; None loads the one shipped next to this module."""
        path = SHIPPED if path is None else Path(path)
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["metadata"])) if "metadata" in data else {}
            return cls(data["weights"], data["means"], data["precisions_cholesky"], meta)

    def _check(self, pose: Tensor) -> None:
        if pose.shape[-1] != self.dim:
            raise ValueError(f"expected pose (..., {self.dim}), got {tuple(pose.shape)}")

    def component_residuals(self, pose: Tensor) -> Tensor:
        """(..., K, D) whitened residuals ``U_k^T (x - mu_k)`` of poses (..., D)."""
        self._check(pose)
        diff = pose[..., None, :] - self.means.to(pose.dtype)
        # matmul, not einsum: torch's einsum is ~50x slower under vmap (Theseus' Jacobians)
        return (diff[..., None, :] @ self.precisions_cholesky.to(pose.dtype))[..., 0, :]

    def component_energies(self, pose: Tensor) -> Tensor:
        """(..., K) per-component negative log-likelihoods ``E_k`` (weights included)."""
        res = self.component_residuals(pose)
        return 0.5 * res.square().sum(-1) + self.consts.to(pose.dtype)

    def residual(self, pose: Tensor) -> Tensor:
        """(..., D + 1) max-mixture residual of poses (..., D); see the module docstring.

        ``0.5 * |residual|^2 + min_k c_k`` equals ``min_k E_k(pose)``.
        """
        return self._residual_of(pose, self._best_component(pose))

    def residual_and_jacobian(self, pose: Tensor) -> tuple[Tensor, Tensor]:
        """``residual(pose)`` (..., D + 1) and its Jacobian (..., D + 1, D).

        For the chosen component the residual is linear in the pose: ``d r_k* / d x = U_k*^T``;
        the constant last entry has a zero row.
        """
        best = self._best_component(pose)
        jac = self.precisions_cholesky.to(pose.dtype)[best].transpose(-1, -2)
        jac = torch.cat([jac, jac.new_zeros(*jac.shape[:-2], 1, self.dim)], -2)
        return self._residual_of(pose, best), jac

    def _best_component(self, pose: Tensor) -> Tensor:
        """(...,) long index of the lowest-energy component; piecewise constant, no gradient."""
        with torch.no_grad():
            return self.component_energies(pose).argmin(-1)

    def _residual_of(self, pose: Tensor, best: Tensor) -> Tensor:
        consts = self.consts.to(pose.dtype)
        diff = pose - self.means.to(pose.dtype)[best]
        r_best = (diff[..., None, :] @ self.precisions_cholesky.to(pose.dtype)[best])[..., 0, :]
        extra = (2.0 * (consts[best] - consts.min())).clamp_min(0).sqrt()
        return torch.cat([r_best, extra[..., None]], -1)

    def nll(self, pose: Tensor) -> Tensor:
        """(...,) exact mixture negative log-likelihood ``-log sum_k w_k N(pose; mu_k, S_k)``."""
        return -torch.logsumexp(-self.component_energies(pose), dim=-1)

    def max_mixture_nll(self, pose: Tensor) -> Tensor:
        """(...,) ``min_k E_k(pose)``, the NLL the residual encodes (>= ``nll``)."""
        return self.component_energies(pose).min(-1).values
