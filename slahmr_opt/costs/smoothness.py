"""Temporal smoothness of world joints: velocity (SLAHMR's ``joints3d_smooth_loss``) and
acceleration.

Velocity loss of a frame pair: ``0.5 sum_j ||J_{t+1,j} - J_{t,j}||^2`` (SLAHMR, 22 body joints).
Acceleration loss of a frame triple: ``sum_j ||J_{t+2,j} - 2 J_{t+1,j} + J_{t,j}||^2``; unlike the
velocity term it does not penalise steady motion, so it does not bias a walking person towards
standing still (and the camera scale towards zero).
"""

import math
from functools import partial

import torch
from torch import Tensor

from slahmr_opt.body import BodyModel
from slahmr_opt.costs.kinematics import world_joints
from slahmr_opt.costs.term import PER_FRAME, Input, Term


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


def _inputs(num_frames: int) -> tuple[Input, ...]:
    per_frame = tuple(Input(f"{v}{k}", v, k) for k in range(num_frames) for v in PER_FRAME)
    return per_frame + (Input("betas", "betas"),)


def _windows(track_mask: Tensor, length: int) -> tuple[Tensor, Tensor]:
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
    person, frame = _windows(track_mask, order + 1)
    fn = partial(
        _frames_residual, residual_fn, body=body, num_joints=num_joints, num_frames=order + 1
    )
    return Term(
        name=name,
        fn=fn,
        inputs=_inputs(order + 1),
        person=person,
        frame=frame,
        dim=3 * num_joints,
    )
