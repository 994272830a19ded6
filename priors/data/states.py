"""Per-frame motion states from fitted body parameters, as HuMoR defines them (numpy only).

World convention (ours and the mocap's): y up, the floor at y = 0, metres, seconds. A state at
frame t holds the root translation and orientation with their velocities, the body pose, the 22
body joints and their velocities, all in the world frame and again in the frame's canonical
frame, plus contact labels:

* velocities are central differences ``(x_{t+1} - x_{t-1}) / (2 dt)`` (one-sided at the ends;
  ``numpy.gradient``), so a constant velocity is recovered exactly; the root's angular velocity
  is the world-frame rotation vector ``log(R_{t+1} R_{t-1}^T) / (2 dt)`` (one-sided likewise);
* canonical frame of frame t (heading invariant, HuMoR's ``world2aligned``): origin on the floor
  under the pelvis joint, axes turned about y by the body's heading ``atan2(f_x, f_z)`` (``f``:
  the root orientation's forward axis, body +z), so the body faces +z; positions are moved into
  it, velocities and rotations only turned;
* contacts: ``slahmr_priors.contacts.contact_labels`` (heights and speeds of ``CONTACT_JOINTS``).
"""

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from slahmr_priors.contacts import contact_labels

NUM_JOINTS = 22


def _yaw_rotation(heading: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations about y by ``heading`` (T,) radians (turning +z toward +x)."""
    c, s = np.cos(heading), np.sin(heading)
    rot = np.zeros((len(heading), 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1] = c, s, 1.0
    rot[:, 2, 0], rot[:, 2, 2] = -s, c
    return rot


def headings(root_rotmat: np.ndarray) -> np.ndarray:
    """(T,) heading: angle about y of the body's forward axis (body +z), 0 when facing +z.

    Args:
        root_rotmat: (T, 3, 3) root orientations, body to world.
    """
    forward = root_rotmat[:, :, 2]
    return np.arctan2(forward[:, 0], forward[:, 2])


def angular_velocity(rotmat: np.ndarray, fps: float) -> np.ndarray:
    """(T, 3) world-frame angular velocity (rad/s) of rotations (T, 3, 3), central differences."""
    if len(rotmat) < 2:
        return np.zeros((len(rotmat), 3))
    rots = Rotation.from_matrix(rotmat)
    step = (rots[1:] * rots[:-1].inv()).as_rotvec() * fps  # (T-1, 3) between frames
    vel = np.empty((len(rotmat), 3))
    vel[0], vel[-1] = step[0], step[-1]
    vel[1:-1] = 0.5 * (step[1:] + step[:-1])
    return vel


def derive_states(
    trans: np.ndarray, root_orient: np.ndarray, pose_body: np.ndarray, joints: np.ndarray,
    fps: float,
) -> dict[str, np.ndarray]:  # fmt: skip
    """States of one sequence (module docstring); every output has T rows.

    Args:
        trans: (T, 3) root translation, m. root_orient: (T, 3) axis-angle, body to world.
        pose_body: (T, 63) axis-angle. joints: (T, >=22, 3) the body's world joints, m.
        fps: frame rate of the sequence.

    Returns:
        World: ``trans``, ``trans_vel`` (T, 3); ``root_orient`` (T, 3), ``root_orient_mat``
        (T, 3, 3), ``root_orient_vel`` (T, 3); ``pose_body`` (T, 63); ``joints``,
        ``joints_vel`` (T, 22, 3). Canonical: ``heading`` (T,); ``canon_origin`` (T, 3);
        ``trans_c``, ``trans_vel_c`` (T, 3); ``root_orient_mat_c`` (T, 3, 3);
        ``root_orient_vel_c`` (T, 3); ``joints_c``, ``joints_vel_c`` (T, 22, 3).
        ``contacts`` (T, C) bool.
    """
    T = len(trans)
    if not (root_orient.shape == (T, 3) and pose_body.shape == (T, 63) and joints.shape[0] == T
            and joints.shape[1] >= NUM_JOINTS and trans.shape == (T, 3)):  # fmt: skip
        raise ValueError(f"expected trans (T, 3), root_orient (T, 3), pose_body (T, 63), joints "
                         f"(T, >=22, 3), got {trans.shape}, {root_orient.shape}, "
                         f"{pose_body.shape}, {joints.shape}")  # fmt: skip
    dt_axis = {"axis": 0} if T > 1 else None
    grad = (lambda x: np.gradient(x, 1.0 / fps, **dt_axis)) if dt_axis else np.zeros_like
    joints = joints[:, :NUM_JOINTS].astype(np.float64)
    rotmat = Rotation.from_rotvec(root_orient).as_matrix()
    out = {
        "trans": trans, "trans_vel": grad(trans.astype(np.float64)),
        "root_orient": root_orient, "root_orient_mat": rotmat,
        "root_orient_vel": angular_velocity(rotmat, fps),
        "pose_body": pose_body, "joints": joints, "joints_vel": grad(joints),
    }  # fmt: skip
    heading = headings(rotmat)
    to_canon = _yaw_rotation(heading).transpose(0, 2, 1)  # world -> canonical
    origin = joints[:, 0] * np.array([1.0, 0.0, 1.0])
    turn = lambda v: np.einsum("tij,t...j->t...i", to_canon, v)  # noqa: E731
    out.update(
        heading=heading,
        canon_origin=origin,
        trans_c=turn(trans - origin),
        trans_vel_c=turn(out["trans_vel"]),
        root_orient_mat_c=to_canon @ rotmat,
        root_orient_vel_c=turn(out["root_orient_vel"]),
        joints_c=turn(joints - origin[:, None]),
        joints_vel_c=turn(out["joints_vel"]),
        contacts=contact_labels(joints, out["joints_vel"]),
    )
    return out


def resample(values: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """Positions (T, ...) resampled from ``fps`` to ``target_fps`` by linear interpolation
    (times ``k / target_fps`` up to the last frame's time)."""
    t_src = np.arange(len(values)) / fps
    t_new = np.arange(int(np.floor(t_src[-1] * target_fps + 1e-9)) + 1) / target_fps
    flat = values.reshape(len(values), -1)
    cols = [np.interp(t_new, t_src, flat[:, i]) for i in range(flat.shape[1])]
    return np.stack(cols, -1).reshape(len(t_new), *values.shape[1:])


def resample_rotations(rotmat: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """Rotations (T, K, 3, 3) resampled from ``fps`` to ``target_fps`` by slerp per joint."""
    t_src = np.arange(len(rotmat)) / fps
    t_new = np.arange(int(np.floor(t_src[-1] * target_fps + 1e-9)) + 1) / target_fps
    return np.stack([Slerp(t_src, Rotation.from_matrix(rotmat[:, k]))(t_new).as_matrix()
                     for k in range(rotmat.shape[1])], 1)  # fmt: skip
