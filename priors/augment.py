"""Motions the mocap does not hold, made from the ones it does (torch only).

Three transforms of a world motion (y up, floor y = 0): left/right **mirroring** through the
sagittal plane x = 0, **time reversal** (walking forwards becomes walking backwards, a wave is
played backwards) and **speed changes** (resampling in time). The CVAE motion prior trains on
them as augmentation (``slahmr_priors.motion_cvae.train --augment``), the regressor's
synthetic views mirror and reverse windows (``slahmr_priors.regressor.synth``), and the benchmark
generator films them as motion kinds the training data lacks by construction (``slahmr-opt bench
make --variants``).

A motion here is root orientations as matrices (T, 3, 3) or axis-angle (T, 3), body poses
(T, 21, 3) or (T, 63) axis-angle, and optionally joints (T, J, 3) with SMPL's joint order and
per-frame contact labels (T, C).
"""

import torch
from torch import Tensor

#: SMPL body joint pairs (left, right) among joints 0..21, swapped by mirroring.
SMPL_PAIRS = ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21))
#: The sagittal mirror x -> -x.
MIRROR = torch.tensor([-1.0, 1.0, 1.0])


def swap_pairs(x: Tensor, pairs, dim: int) -> Tensor:
    """``x`` with the entries ``(a, b)`` of each pair swapped along ``dim``."""
    out = x.clone()
    for a, b in pairs:
        out.select(dim, a).copy_(x.select(dim, b))
        out.select(dim, b).copy_(x.select(dim, a))
    return out


def mirror_pose(pose: Tensor) -> Tensor:
    """Mirror (..., 21, 3) axis-angle body poses through the sagittal plane (x -> -x): the left
    and right joints swap and a rotation vector ``(x, y, z)`` becomes ``(x, -y, -z)``."""
    pairs = [(a - 1, b - 1) for a, b in SMPL_PAIRS]
    return swap_pairs(pose, pairs, -2) * pose.new_tensor([1.0, -1.0, -1.0])


def mirror_rotation(rot: Tensor) -> Tensor:
    """Mirror (..., 3, 3) rotation matrices through x = 0: ``M R M``."""
    M = torch.diag(MIRROR).to(rot)
    return M @ rot @ M


def mirror_joints(joints: Tensor) -> Tensor:
    """Mirror (..., J, 3) SMPL-ordered joints (J >= 22) through x = 0, left and right swapped
    (with SMPL's 24 joints also the two hands, 22 and 23)."""
    pairs = SMPL_PAIRS + (((22, 23),) if joints.shape[-2] >= 24 else ())
    return swap_pairs(joints * MIRROR.to(joints), pairs, -2)


def mirror_contacts(contacts: Tensor, joints: tuple[int, ...]) -> Tensor:
    """Contact labels (..., C) of the SMPL ``joints`` (C,) after mirroring: left and right swap."""
    partner = {a: b for pair in SMPL_PAIRS for a, b in (pair, pair[::-1])}
    order = [joints.index(partner.get(j, j)) for j in joints]
    return contacts[..., order]


def resample(x: Tensor, times: Tensor) -> Tensor:
    """Linear interpolation of (T, ...) frames at fractional frame ``times`` (N,) in [0, T-1]."""
    lo = times.floor().long().clamp(0, x.shape[0] - 1)
    hi = (lo + 1).clamp(max=x.shape[0] - 1)
    w = (times - lo.to(times)).to(x).reshape(-1, *([1] * (x.dim() - 1)))
    return x[lo] * (1 - w) + x[hi] * w


def orthonormalize(rot: Tensor) -> Tensor:
    """The rotation (..., 3, 3) nearest a near-rotation matrix, by Gram-Schmidt on its first two
    columns (exact for the blend of two rotations a few degrees apart)."""
    a = torch.nn.functional.normalize(rot[..., :, 0], dim=-1)
    b = rot[..., :, 1] - (a * rot[..., :, 1]).sum(-1, keepdim=True) * a
    b = torch.nn.functional.normalize(b, dim=-1)
    return torch.stack([a, b, torch.cross(a, b, dim=-1)], -1)


def change_speed(factor: float, length: int) -> Tensor:
    """Fractional frame times (N,) that play a ``length``-frame motion ``factor`` times as fast
    at the same frame rate (``resample`` them; rotations through ``orthonormalize``)."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    return torch.arange(0.0, length - 1 + 1e-9, factor, dtype=torch.float64)
