"""Rotation conversions, from ``roma`` (pure PyTorch, on PyPI; pytorch3d's conversions have no
installable CPU build). Quaternions are ``[x, y, z, w]`` (real part last).

``rotvec_to_rotmat`` composes roma's quaternion maps rather than using roma's own
``rotvec_to_rotmat``: that one switches to a first-order formula below 1e-6 rad, where its
derivative is off by up to 1e-7; through the quaternion (``sinc``) both the matrix and its
derivatives are exact at every angle, zero included.
"""

from roma import (
    euler_to_rotmat,
    rotmat_to_rotvec,
    rotmat_to_unitquat,
    unitquat_to_rotmat,
)
from roma import rotvec_to_unitquat as _rotvec_to_unitquat
from torch import Tensor


def rotvec_to_rotmat(rotvec: Tensor) -> Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    return unitquat_to_rotmat(_rotvec_to_unitquat(rotvec))


__all__ = [
    "euler_to_rotmat",
    "rotmat_to_rotvec",
    "rotmat_to_unitquat",
    "rotvec_to_rotmat",
    "unitquat_to_rotmat",
]
