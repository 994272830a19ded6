"""Least-squares alignment of corresponding 3D point sets (Kabsch; Umeyama, 1991).

``kabsch`` fits a rotation about the origin (batched); ``umeyama`` fits a similarity ``(s, R, t)``
or, without scale, a rigid motion. Rotations are proper (det +1): a reflection is never fitted.
NumPy, float64 in and out.
"""

from typing import NamedTuple

import numpy as np

#: A point set whose mean squared distance from its centroid is at most this (units^2) has no
#: spread: its similarity fit gets scale 0.
MIN_SPREAD = 1e-12


def _rotation_and_trace(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Kabsch rotation and ``trace(R^T sum dst_i src_i^T)`` (the optimum's correlation).

    Args:
        src, dst: (..., N, 3).

    Returns:
        (..., 3, 3) rotations and (...,) traces.
    """
    cov = np.einsum("...ni,...nj->...ij", dst, src)  # sum dst_i src_i^T
    u, d, vt = np.linalg.svd(cov)
    # The sign of det(U V^T) flips the axis of the smallest singular value where the best
    # orthogonal matrix would be a reflection.
    sign = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= sign[..., None]
    d[..., 2] *= sign
    return u @ vt, d.sum(-1)


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation(s) ``R`` minimizing ``sum_i |dst_i - R src_i|^2`` (no centring, no translation).

    Args:
        src, dst: (..., N, 3) corresponding points or directions.

    Returns:
        (..., 3, 3) proper rotations. Where the points do not fix the rotation (all on one line
        through the origin), one of the optimal ones.
    """
    return _rotation_and_trace(src, dst)[0]


class Similarity(NamedTuple):
    """``x -> s R x + t``."""

    s: float
    R: np.ndarray  # (3, 3)
    t: np.ndarray  # (3,)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points mapped by the similarity."""
        return self.s * points @ self.R.T + self.t


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> Similarity:
    """Similarity ``(s, R, t)`` minimizing ``sum_i |s R src_i + t - dst_i|^2``.

    Args:
        src, dst: (N, 3) corresponding points.
        with_scale: fit the scale; False: ``s = 1``, a rigid fit.

    Returns:
        ``Similarity(s, R (3, 3), t (3,))``. A ``src`` without spread (``MIN_SPREAD``) gets
        ``s = 0`` (``t`` the centroid of ``dst``); points on one line leave the rotation about
        it free and one optimal rotation is returned.
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    R, trace = _rotation_and_trace(a, b)
    s = 1.0
    if with_scale:
        sum_sq = float((a * a).sum())
        s = float(trace) / sum_sq if sum_sq / len(a) > MIN_SPREAD else 0.0
    return Similarity(s, R, mu_d - s * R @ mu_s)
