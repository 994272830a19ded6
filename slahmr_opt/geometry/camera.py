"""Pinhole projection, OpenCV axes (x right, y down, z forward), world-to-camera extrinsics."""

import numpy as np
import torch
from torch import Tensor

from slahmr_opt.geometry.rotations import rotmat_to_unitquat

#: Depths below this (metres) are clamped before the perspective division.
MIN_DEPTH = 1.0e-3


def world_to_camera(
    points_w: Tensor, R_w2c: Tensor, t_w2c: Tensor, alpha: Tensor | float = 1.0
) -> Tensor:
    """Map world points into camera coordinates: ``x_c = R_w2c X_w + alpha t_w2c``.

    Args:
        points_w: (..., N, 3) world points, metres.
        R_w2c: (..., 3, 3) rotations.
        t_w2c: (..., 3) translations in SLAM units; ``alpha`` turns them into metres.
        alpha: scalar or broadcastable tensor, the metric scale of ``t_w2c``.

    Returns:
        (..., N, 3) camera-frame points.
    """
    return points_w @ R_w2c.transpose(-1, -2) + (alpha * t_w2c).unsqueeze(-2)


def camera_to_world(
    points_c: Tensor, R_w2c: Tensor, t_w2c: Tensor, alpha: Tensor | float = 1.0
) -> Tensor:
    """Inverse of ``world_to_camera``: ``X_w = R_w2c^T (x_c - alpha t_w2c)``. Shapes as there."""
    return (points_c - (alpha * t_w2c).unsqueeze(-2)) @ R_w2c


def invert_pose(R: Tensor | np.ndarray, t: Tensor | np.ndarray):
    """Inverse of the rigid map ``x -> R x + t``: ``(R^T, -R^T t)``. World-to-camera extrinsics
    give camera-to-world ones (the second part is the camera centre) and back.

    Args:
        R: (..., 3, 3) rotations; torch tensors or NumPy arrays (the result is of the same kind).
        t: (..., 3) translations.

    Returns:
        (..., 3, 3) ``R^T`` (a view) and (..., 3) ``-R^T t``.
    """
    einsum = torch.einsum if isinstance(R, Tensor) else np.einsum
    return R.swapaxes(-1, -2), -einsum("...ji,...j->...i", R, t)


def project(points_c: Tensor, intrins: Tensor) -> Tensor:
    """Perspective projection of camera-frame points to pixels.

    Args:
        points_c: (..., N, 3) camera-frame points; depths are clamped to ``MIN_DEPTH`` so points
            behind the camera give large but finite residuals instead of NaNs.
        intrins: (..., 4) ``[fx, fy, cx, cy]``.

    Returns:
        (..., N, 2) pixel coordinates.
    """
    z = points_c[..., 2:3].clamp(min=MIN_DEPTH)
    f = intrins[..., None, 0:2]
    c = intrins[..., None, 2:4]
    return f * points_c[..., :2] / z + c


def camera_centers(R_w2c: Tensor, t_w2c: Tensor, alpha: Tensor | float = 1.0) -> Tensor:
    """(T, 3) camera centres in the world: ``-R_w2c^T alpha t_w2c``."""
    return -(torch.as_tensor(alpha) * t_w2c).unsqueeze(-2).matmul(R_w2c).squeeze(-2)


def w2c_to_c2w_poses(R_w2c: Tensor, t_w2c: Tensor) -> np.ndarray:
    """Camera-to-world ``tx ty tz qx qy qz qw`` rows (DROID layout) from world-to-camera extrinsics.

    Args:
        R_w2c: (N, 3, 3).
        t_w2c: (N, 3).

    Returns:
        (N, 7) float64, quaternion real part last.
    """
    R_c2w = R_w2c.detach().double().transpose(-1, -2)
    t_c2w = -(R_c2w @ t_w2c.detach().double()[..., None])[..., 0]
    quat_xyzw = rotmat_to_unitquat(R_c2w)
    quat_xyzw = quat_xyzw * torch.where(quat_xyzw[:, 3:] < 0, -1.0, 1.0)  # real part >= 0
    return torch.cat([t_c2w, quat_xyzw], dim=-1).numpy()
