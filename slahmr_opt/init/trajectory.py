"""World trajectories and camera scale from the keypoint regressor (WHAM's trajectory idea).

The regressor predicts, per frame, the up direction in the camera (``up_c``) and the pelvis
velocity in the body's heading frame (``vel_h``, m/s). With the cameras' rotations these give

* **gravity** in the SLAM world: ``R_w2c^T up_c``, averaged over every person and frame;
* **world velocities**: ``vel_h`` turned into the world by the heading frame (up = gravity,
  forward = the body's forward axis flattened onto the floor, left = up x forward);
* a **scale cue**: a body's world position is ``R^T (p_c - alpha t_w2c)`` (``p_c`` its metric
  camera-frame position), so its displacements over a window are
  ``D[R^T p_c] - alpha D[R^T t_w2c]``; matching them to the integrated velocities is a linear
  least-squares problem in ``alpha`` with a closed-form solution;
* a **trajectory** that fuses the per-frame positions (noisy in depth) with the integrated
  velocities (smooth, drifting): a least-squares problem in the positions, tridiagonal in time.
"""

from dataclasses import replace

import numpy as np
import torch
from scipy.linalg import solveh_banded
from torch import Tensor

from slahmr_opt.errors import SlahmrOptError
from slahmr_opt.geometry.camera import camera_centers, invert_pose
from slahmr_opt.geometry.rotations import rotvec_to_rotmat

SCALE_WINDOW = 15
"""Frames over which displacements are compared in the scale cue (0.5 s at 30 fps)."""
DEPTH_SIGMA = 0.3
"""Metres: spread of a per-frame position along the camera ray (depth from body size)."""
LATERAL_SIGMA = 0.03
"""Metres: spread of a per-frame position across the ray (2D keypoint noise)."""
VEL_SIGMA = 0.2
"""Metres per second: spread of the regressor's velocities (0.1 m/s on held-out motion)."""
MAX_SCALE_STDERR = 0.1
"""Relative standard error above which the scale cue is not trusted."""
MIN_CAMERA_TRAVEL = 0.05
"""SLAM-unit camera displacement (relative to the largest) below which a window says nothing
about the scale."""


def gravity_up(up_c: Tensor, R_w2c: Tensor, mask: Tensor) -> Tensor:
    """(3,) unit up direction of the SLAM world: the mean of ``R_w2c^T up_c`` over ``mask``.

    Args:
        up_c: (P, T, 3) up directions in the cameras; R_w2c: (T, 3, 3); mask: (P, T) bool.
    """
    up_w = torch.einsum("tji,ptj->pti", R_w2c.double(), up_c.double())[mask]
    if len(up_w) == 0:
        raise SlahmrOptError("no frame to estimate gravity from")
    return torch.nn.functional.normalize(up_w.mean(0), dim=0)


def heading_frames(root_w: Tensor, up: Tensor) -> Tensor:
    """(..., 3, 3) heading frames with columns ``[left, up, forward]`` in the world.

    Args:
        root_w: (..., 3, 3) root orientations, body to world; up: (3,) unit up.
    """
    fwd = root_w[..., :, 2].double()
    fwd = fwd - (fwd @ up.double())[..., None] * up.double()
    fwd = torch.nn.functional.normalize(fwd, dim=-1)
    up_b = up.double().expand_as(fwd)
    left = torch.cross(up_b, fwd, dim=-1)
    return torch.stack([left, up_b, fwd], -1)


def world_velocities(vel_h: Tensor, root_w: Tensor, up: Tensor) -> Tensor:
    """(..., 3) world velocities (m/s) of heading-frame velocities ``vel_h`` (..., 3)."""
    return (heading_frames(root_w, up) @ vel_h.double()[..., None])[..., 0]


def scale_from_velocities(
    pelvis_c: Tensor,
    vel_w: Tensor,
    R_w2c: Tensor,
    t_w2c: Tensor,
    mask: Tensor,
    fps: float,
    window: int = SCALE_WINDOW,
) -> float | None:
    """Camera scale ``alpha`` that makes the camera-frame positions move as the regressor says.

    Args:
        pelvis_c: (P, T, 3) metric pelvis positions in the cameras; vel_w: (P, T, 3) world
        velocities (m/s); R_w2c, t_w2c: (T, 3, 3), (T, 3) SLAM cameras; mask: (P, T) frames
        to use; fps: frame rate.

    Returns:
        ``alpha`` > 0, or None when the camera does not translate enough to tell it (the
        estimate's relative standard error exceeds ``MAX_SCALE_STDERR``).
    """
    R, t = R_w2c.double(), t_w2c.double()
    a = torch.einsum("tji,ptj->pti", R, pelvis_c.double())  # R^T p_c
    b = -invert_pose(R, t)[1]  # R^T t_w2c = minus the camera centre
    v = vel_w.double()
    T = a.shape[1]
    if T <= window:
        return None
    # Displacements over the window and integrated velocities (trapezoid rule).
    cum = torch.cat([torch.zeros_like(v[:, :1]), torch.cumsum(0.5 * (v[:, 1:] + v[:, :-1]), 1)], 1)
    Dv = (cum[:, window:] - cum[:, :-window]) / fps
    Da = a[:, window:] - a[:, :-window]
    Db = (b[window:] - b[:-window])[None].expand_as(Da)
    ok = mask[:, window:] & mask[:, :-window]
    travel = Db.norm(dim=-1)
    ok &= travel > MIN_CAMERA_TRAVEL * travel.max().clamp(min=1e-12)
    if int(ok.sum()) < window or float(travel.max()) < 1e-9:
        return None
    num = (Db * (Da - Dv)).sum(-1)[ok].sum()
    den = (Db * Db).sum(-1)[ok].sum()
    alpha = float(num / den)
    # Standard error of alpha from the residual spread: large where the camera's displacements
    # are small against the body's (a pan's SLAM jitter), where the cue means nothing.
    resid = (Da - alpha * Db - Dv)[ok]
    stderr = float((resid.square().sum(-1).mean() / 3 / den).sqrt())
    if alpha <= 0 or stderr > MAX_SCALE_STDERR * alpha:
        return None
    return alpha


def fuse_trajectory(
    pos: Tensor,
    vel: Tensor,
    have: Tensor,
    fps: float,
    rays: Tensor | None = None,
    depth_sigma: float = DEPTH_SIGMA,
    lateral_sigma: float = LATERAL_SIGMA,
    vel_sigma: float = VEL_SIGMA,
) -> Tensor:
    """A trajectory near the positions and moving with the velocities (least squares).

    Minimises ``sum_t have_t (x_t - pos_t)^T W_t (x_t - pos_t)
    + sum_t |(x_{t+1} - x_t) fps - (vel_t + vel_{t+1}) / 2|^2 / vel_sigma^2`` with
    ``W_t = d d^T / depth_sigma^2 + (I - d d^T) / lateral_sigma^2`` for the unit viewing ray
    ``d = rays[t]`` (positions seen by a camera are precise across the ray and noisy along it);
    without rays ``W_t = I / depth_sigma^2``. A symmetric banded system (3x3 blocks,
    block-tridiagonal in time): linear in frames.

    Args:
        pos: (T, 3) positions (m; NaN allowed where ``have`` is False); vel: (T, 3) m/s;
        have: (T,) bool; rays: (T, 3) unit viewing directions or None; sigmas: m, m/s.

    Returns:
        (T, 3) float64 trajectory.
    """
    T = pos.shape[0]
    if not bool(have.any()):
        raise SlahmrOptError("no frame with a position to anchor the trajectory")
    eye = np.eye(3)
    if rays is None:
        W = np.broadcast_to(eye / depth_sigma**2, (T, 3, 3)).copy()
    else:
        d = rays.double().numpy()
        ddT = d[:, :, None] * d[:, None, :]
        W = ddT / depth_sigma**2 + (eye - ddT) / lateral_sigma**2
    W *= have.numpy()[:, None, None]
    wv = fps**2 / vel_sigma**2
    # Unknowns ordered (x_0, y_0, z_0, x_1, ...); upper band form with 4 rows (offsets 0-3).
    n = 3 * T
    band = np.zeros((4, n))
    for i in range(3):
        for j in range(i, 3):
            band[3 - (j - i), j::3] = W[:, i, j]  # within-frame block (offsets 0..2)
    band[3] += (
        wv * np.r_[np.ones(3 * (T - 1)), np.zeros(3)]
        + wv * np.r_[np.zeros(3), np.ones(3 * (T - 1))]
    )
    band[0, 3:] = -wv  # x_t against x_{t+1}: offset 3
    step = 0.5 * (vel[1:] + vel[:-1]).double().numpy() / fps  # (T-1, 3)
    rhs = np.einsum("tij,tj->ti", W, np.nan_to_num(pos.double().numpy()))
    rhs[:-1] -= wv * step
    rhs[1:] += wv * step
    return torch.from_numpy(solveh_banded(band, rhs.reshape(n)).reshape(T, 3))


def regressor_alpha(obs, regression, pelvis0: Tensor) -> float | None:
    """The scale cue of ``scale_from_velocities`` for the regressor's guesses of ``obs``.

    Args:
        obs: ``Observations`` (SLAM cameras); regression: ``init.regressor.Regression``;
        pelvis0: (P, 1, 3) pelvis of each person's shape at zero pose (the guessed pelvis is
            ``transl_c + pelvis0``: ``regression.shape``'s).
    """
    cams = obs.cameras
    if cams.is_static:
        return None
    g = regression.guess
    mask = g.valid & obs.vis_mask
    up = gravity_up(regression.up_c, cams.R_w2c, mask)
    root_w = cams.R_w2c.double().transpose(-1, -2) @ rotvec_to_rotmat(
        g.global_orient_c.double()
    )
    vel_w = world_velocities(regression.vel_h, root_w, up)
    pelvis_c = g.transl_c.double() + pelvis0.double()
    return scale_from_velocities(pelvis_c, vel_w, cams.R_w2c, cams.t_w2c, mask, obs.fps)


def fused_trans(body, obs, regression, pelvis0: Tensor, alpha: float):
    """``body`` (``BodyParams``, SLAM world, cameras scaled by ``alpha``; ``pelvis0`` (P, 1, 3)
    the rest pelvis of its shapes) with each track's
    translation replaced by the fusion (``fuse_trajectory``, anisotropic along the camera rays)
    of its per-frame pelvis positions and the regressor's world velocities."""
    cams = obs.cameras
    up = gravity_up(regression.up_c, cams.R_w2c, regression.guess.valid & obs.vis_mask)
    root_w = rotvec_to_rotmat(body.root_orient.double())
    vel_w = world_velocities(regression.vel_h, root_w, up)
    centre = camera_centers(cams.R_w2c.double(), cams.t_w2c.double(), alpha)
    trans = body.trans.clone()
    for p in range(trans.shape[0]):
        frames = torch.nonzero(obs.track_mask[p])[:, 0]
        if len(frames) < 2:
            continue
        a, b = int(frames[0]), int(frames[-1]) + 1
        pos = trans[p, a:b].double() + pelvis0[p].double()
        rays = torch.nn.functional.normalize(pos - centre[a:b], dim=-1)
        fused = fuse_trajectory(pos, vel_w[p, a:b], obs.vis_mask[p, a:b], obs.fps, rays)
        trans[p, a:b] = (fused - pelvis0[p].double()).to(trans.dtype)
    return replace(body, trans=trans)
