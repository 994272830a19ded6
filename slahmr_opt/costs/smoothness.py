"""Temporal smoothness of world joints: velocity (SLAHMR's ``joints3d_smooth_loss``) and
acceleration.

Velocity loss of a frame pair: ``0.5 sum_j ||J_{t+1,j} - J_{t,j}||^2`` (SLAHMR, 22 body joints).
Acceleration loss of a frame triple: ``sum_j ||J_{t+2,j} - 2 J_{t+1,j} + J_{t,j}||^2``; unlike the
velocity term it does not penalise steady motion, so it does not bias a walking person towards
standing still (and the camera scale towards zero). Both are ``sum_k c_k J_k`` with the fixed
coefficients ``FRAME_COEFFS``, which gives their analytic Jacobians (``frames_jacobian``).
"""

import math
from functools import partial

import torch
from torch import Tensor

from slahmr_opt.body import BodyModel
from slahmr_opt.body.jacobian import body_point_jacobians, supports_analytic_jacobians
from slahmr_opt.costs.kinematics import world_joints
from slahmr_opt.costs.term import PER_FRAME, Input, Term

#: Residual of order 1 (velocity) and 2 (acceleration) as ``sum_k c_k J_k`` over its frames.
FRAME_COEFFS = {1: (-math.sqrt(0.5), math.sqrt(0.5)), 2: (1.0, -2.0, 1.0)}


def velocity_residual(j0: Tensor, j1: Tensor) -> Tensor:
    """(N, 3J) residual ``sqrt(0.5) (j1 - j0)`` of (N, J, 3) joints at consecutive frames."""
    return math.sqrt(0.5) * (j1 - j0).flatten(-2)


def acceleration_residual(j0: Tensor, j1: Tensor, j2: Tensor) -> Tensor:
    """(N, 3J) second differences ``j2 - 2 j1 + j0`` of (N, J, 3) joints."""
    return (j2 - 2.0 * j1 + j0).flatten(-2)


def _frames_residual(
    residual_fn, *, body: BodyModel, num_joints: int, num_frames: int, betas: Tensor, **kw: Tensor
) -> Tensor:
    joints = [
        world_joints(
            body, num_joints, kw[f"root_orient{k}"], kw[f"trans{k}"], kw[f"pose_body{k}"], betas
        )
        for k in range(num_frames)
    ]
    return residual_fn(*joints)


def frames_jacobian(
    wrt: frozenset[str],
    *,
    body: BodyModel,
    num_joints: int,
    order: int,
    betas: Tensor,
    **kw: Tensor,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Residual (N, 3J) of ``order`` (velocity 1, acceleration 2) and its Jacobians (N, 3J, n)
    for the arguments in ``wrt``; ``kw`` holds ``root_orient{k}``, ``trans{k}``, ``pose_body{k}``
    (N, 3 / 3 / 63) of the window's frames k. All frames' joints come from one batched call."""
    coeffs = FRAME_COEFFS[order]
    nf = len(coeffs)
    n = betas.shape[0]
    body_wrt = {v for v in ("root_orient", "pose_body") if any(f"{v}{k}" in wrt for k in range(nf))}
    if "betas" in wrt:
        body_wrt.add("betas")
    stacked = {v: torch.cat([kw[f"{v}{k}"] for k in range(nf)]) for v in PER_FRAME}
    pts = body_point_jacobians(
        body, stacked["root_orient"], stacked["trans"], stacked["pose_body"],
        betas.repeat(nf, 1), num_joints, wrt=body_wrt,
    )  # fmt: skip
    dim = 3 * num_joints

    def frames(x: Tensor) -> list[Tensor]:
        return list(x.reshape(nf, n, *x.shape[1:]).unbind(0))

    residual = sum(c * j for c, j in zip(coeffs, frames(pts.points))).reshape(n, dim)
    jac = {}
    for var in ("root_orient", "pose_body"):
        if var in body_wrt:
            for k, (c, d) in enumerate(zip(coeffs, frames(getattr(pts, var)))):
                jac[f"{var}{k}"] = (c * d).reshape(n, dim, -1)
    eye = torch.eye(3, dtype=residual.dtype, device=residual.device)
    for k, c in enumerate(coeffs):
        if f"trans{k}" in wrt:
            jac[f"trans{k}"] = (c * eye).repeat(num_joints, 1).expand(n, dim, 3)
    if "betas" in wrt:
        jac["betas"] = sum(c * d for c, d in zip(coeffs, frames(pts.betas))).reshape(n, dim, -1)
    return residual, {k: v for k, v in jac.items() if k in wrt}


def window_inputs(num_frames: int) -> tuple[Input, ...]:
    per_frame = tuple(Input(f"{v}{k}", v, k) for k in range(num_frames) for v in PER_FRAME)
    return per_frame + (Input("betas", "betas"),)


def track_windows(track_mask: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """Person and start frame of every window of ``length`` frames inside a track."""
    ok = track_mask[:, : track_mask.shape[1] - length + 1].clone()
    for k in range(1, length):
        ok &= track_mask[:, k : track_mask.shape[1] - length + 1 + k]
    return torch.nonzero(ok, as_tuple=True)


def build_smoothness_term(
    name: str, track_mask: Tensor, body: BodyModel, num_joints: int, order: int
) -> Term:
    """Velocity (``order=1``) or acceleration (``order=2``) term over every window in a track.

    Args:
        name: term name (``joints_smooth`` or ``joints_accel``).
        track_mask: (P, T) frames where each person exists.
        num_joints: leading SMPL joints used (22: body without hands).
    """
    residual_fn = {1: velocity_residual, 2: acceleration_residual}[order]
    person, frame = track_windows(track_mask, order + 1)
    fn = partial(
        _frames_residual, residual_fn, body=body, num_joints=num_joints, num_frames=order + 1
    )
    return Term(
        name=name,
        fn=fn,
        inputs=window_inputs(order + 1),
        person=person,
        frame=frame,
        dim=3 * num_joints,
        jac=(
            partial(frames_jacobian, body=body, num_joints=num_joints, order=order)
            if supports_analytic_jacobians(body)
            else None
        ),
    )
