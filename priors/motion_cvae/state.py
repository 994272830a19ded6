"""Motion states of consecutive frames for the CVAE motion prior (torch only, differentiable).

The state of frame t, written in the canonical frame of a reference frame k (HuMoR's
``world2aligned``, with our y up), is the 204-vector

    [ root orientation, first two columns (6) | root angular velocity (3, rad/s) |
      body pose, axis-angle (63, rad) | 22 SMPL joints (66, m) | their velocities (66, m/s) ]

* canonical frame of frame k: origin on the floor (y = 0) under frame k's pelvis joint, axes
  turned about y by frame k's heading so that the body's forward axis (body +z) faces +z; positions
  are moved into it, velocities and rotations only turned (``priors/data/states.py``'s frame);
* velocities are backward differences of consecutive frames, ``(x_t - x_{t-1}) * fps``; the
  angular velocity is ``vee(D - D^T) / 2 * fps`` with ``D = R_t R_{t-1}^T`` (``sin(angle) * axis``
  per frame: equal to the rotation vector to 1e-3 relative at the 0.1 rad a root turns per frame
  at most, and smooth everywhere, unlike the logarithm at the identity);
* a transition ``t-1 -> t`` pairs the state of frame t-1 in its own canonical frame (``prev``) with
  the state of frame t in frame t-1's canonical frame (``cur``), so it reads frames t-2, t-1, t.

The root translation is left out: the pelvis joint carries it (``pelvis = trans + J_0(betas)``).
The world must be y up with the floor at y = 0 (the mocap's and the solver's gravity-aligned
frame); move bodies there first.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

NUM_JOINTS = 22
#: Slices of the state vector.
ROOT_ROT = slice(0, 6)
ROOT_VEL = slice(6, 9)
POSE = slice(9, 72)
JOINTS = slice(72, 138)
JOINTS_VEL = slice(138, 204)
STATE_DIM = 204
#: Part names and slices, in order.
PARTS = {"root_rot6": ROOT_ROT, "root_vel": ROOT_VEL, "pose_body": POSE, "joints": JOINTS,
         "joints_vel": JOINTS_VEL}  # fmt: skip
_SMALL = 1e-6


@dataclass
class Transitions:
    """States of consecutive frame pairs, both in the earlier frame's canonical frame.

    Attributes:
        prev: (..., N, 204) state of frame t-1 (``STATE_DIM``; module docstring).
        cur: (..., N, 204) state of frame t.
    """

    prev: Tensor
    cur: Tensor


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices of axis-angle vectors (..., 3) (Rodrigues; smooth at 0)."""
    theta2 = aa.square().sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2_safe)
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(skew)
    return eye + a * skew + b * (skew @ skew)


def heading_frame(root_rotmat: Tensor) -> Tensor:
    """(..., 3, 3) world-to-canonical rotation (about y) that turns the body's forward axis to +z.

    Args:
        root_rotmat: (..., 3, 3) root orientations, body to world (y up).
    """
    fx, fz = root_rotmat[..., 0, 2], root_rotmat[..., 2, 2]
    norm = (fx.square() + fz.square() + _SMALL**2).sqrt()  # smooth; 0 only for a vertical body
    c, s = fz / norm, fx / norm
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    rows = [c, zero, -s, zero, one, zero, s, zero, c]
    return torch.stack(rows, -1).reshape(*c.shape, 3, 3)


def _vee_skew(mat: Tensor) -> Tensor:
    """(..., 3) ``vee((M - M^T) / 2)`` of matrices (..., 3, 3)."""
    return 0.5 * torch.stack([mat[..., 2, 1] - mat[..., 1, 2], mat[..., 0, 2] - mat[..., 2, 0],
                              mat[..., 1, 0] - mat[..., 0, 1]], -1)  # fmt: skip


def _state(to_canon: Tensor, origin: Tensor, rot: Tensor, ang_vel: Tensor, pose: Tensor,
           joints: Tensor, joints_vel: Tensor) -> Tensor:  # fmt: skip
    """(..., 204) state from world quantities and a reference frame (``to_canon`` (..., 3, 3),
    ``origin`` (..., 3)); rot (..., 3, 3), ang_vel (..., 3), pose (..., 63), joints and
    joints_vel (..., 22, 3)."""
    rot_c = to_canon @ rot
    turn = lambda v: (to_canon[..., None, :, :] @ v[..., None]).squeeze(-1)  # noqa: E731
    parts = [
        rot_c[..., :, :2].flatten(-2),
        (to_canon @ ang_vel[..., None]).squeeze(-1),
        pose,
        turn(joints - origin[..., None, :]).flatten(-2),
        turn(joints_vel).flatten(-2),
    ]
    return torch.cat(parts, -1)


def states_from_body(root_orient: Tensor, pose_body: Tensor, joints: Tensor,
                     fps: float) -> Transitions:  # fmt: skip
    """Transition states of a motion: pairs (t-1, t) for t = 2 .. T-1 (module docstring).

    Differentiable in every input; the map is invariant to turning the world about y and to moving
    it horizontally.

    Args:
        root_orient: (..., T, 3) root orientation, axis-angle, body to world (y up, floor y = 0).
        pose_body: (..., T, 63) body pose, axis-angle (21 SMPL joints).
        joints: (..., T, J, 3) the body model's world joints (J >= 22, SMPL order), m.
        fps: frame rate of the motion.

    Returns:
        ``Transitions`` with ``prev`` and ``cur`` of shape (..., T - 2, 204).
    """
    T = root_orient.shape[-2]
    if (
        T < 3
        or root_orient.shape[-1] != 3
        or pose_body.shape[-2:] != (T, 63)
        or joints.shape[-3] != T
        or joints.shape[-2] < NUM_JOINTS
        or joints.shape[-1] != 3
    ):
        raise ValueError(f"expected root_orient (..., T, 3), pose_body (..., T, 63), joints "
                         f"(..., T, >=22, 3) with T >= 3, got {tuple(root_orient.shape)}, "
                         f"{tuple(pose_body.shape)}, {tuple(joints.shape)}")  # fmt: skip
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return states_from_rotations(axis_angle_to_matrix(root_orient), pose_body, joints, fps)


def states_from_rotations(root_rotmat: Tensor, pose_body: Tensor, joints: Tensor,
                          fps: float) -> Transitions:  # fmt: skip
    """``states_from_body`` with root orientations given as matrices (..., T, 3, 3) (the solver
    moves its bodies into the floor's frame by rotating them); inputs are not checked."""
    rot = root_rotmat
    T = rot.shape[-3]
    joints = joints[..., :NUM_JOINTS, :]
    ang_vel = _vee_skew(rot[..., 1:, :, :] @ rot[..., :-1, :, :].transpose(-1, -2)) * fps
    joints_vel = (joints[..., 1:, :, :] - joints[..., :-1, :, :]) * fps  # frames 1 .. T-1
    to_canon = heading_frame(rot)
    pelvis = joints[..., 0, :]
    origin = torch.stack([pelvis[..., 0], torch.zeros_like(pelvis[..., 0]), pelvis[..., 2]], -1)
    ref = (to_canon[..., 1:-1, :, :], origin[..., 1:-1, :])  # frame t-1 for t = 2 .. T-1

    def at(frames: slice) -> Tensor:
        vel = slice(frames.start - 1, frames.stop - 1 if frames.stop is not None else None)
        return _state(*ref, rot[..., frames, :, :], ang_vel[..., vel, :], pose_body[..., frames, :],
                      joints[..., frames, :, :], joints_vel[..., vel, :, :])  # fmt: skip

    return Transitions(prev=at(slice(1, T - 1)), cur=at(slice(2, None)))
