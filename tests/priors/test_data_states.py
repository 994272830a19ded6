"""Per-frame states of priors.data.states on synthetic motions with known velocities/contacts."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from slahmr_priors.contacts import CONTACT_JOINTS
from slahmr_priors.data import states as st

FPS = 30.0


def _motion(num_frames=40, velocity=(0.0, 0.0, 0.0), yaw_rate=0.0, yaw0=0.0, height=0.9, seed=0):
    """A rigid body: fixed joint offsets (22, 3) around a root that translates and turns."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(scale=0.3, size=(22, 3))
    offsets[0] = 0.0
    t = np.arange(num_frames) / FPS
    trans = np.array([0.3, height, -1.0]) + t[:, None] * np.asarray(velocity)
    rots = Rotation.from_euler("y", (yaw0 + yaw_rate * t)[:, None])
    joints = trans[:, None] + np.einsum("tij,kj->tki", rots.as_matrix(), offsets)
    pose = np.zeros((num_frames, 63))
    return trans, rots.as_rotvec(), pose, joints


def test_constant_velocity_is_recovered():
    v = np.array([1.2, 0.0, -0.4])
    out = st.derive_states(*_motion(velocity=v), FPS)
    np.testing.assert_allclose(out["trans_vel"], np.broadcast_to(v, (40, 3)), atol=1e-9)
    np.testing.assert_allclose(out["joints_vel"], np.broadcast_to(v, (40, 22, 3)), atol=1e-9)
    np.testing.assert_allclose(out["root_orient_vel"], 0.0, atol=1e-9)
    assert not out["contacts"].any()  # moving at 1.3 m/s


def test_turning_rate_and_heading():
    out = st.derive_states(*_motion(yaw_rate=0.5, yaw0=0.2), FPS)
    np.testing.assert_allclose(out["root_orient_vel"], np.broadcast_to([0, 0.5, 0], (40, 3)),
                               atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(out["heading"], 0.2 + 0.5 * np.arange(40) / FPS, atol=1e-9)
    # In the canonical frame the body faces +z: its root orientation has no heading left.
    np.testing.assert_allclose(st.headings(out["root_orient_mat_c"]), 0.0, atol=1e-9)


def test_canonical_states_are_heading_and_position_invariant():
    a = st.derive_states(*_motion(velocity=(0.5, 0.0, 0.3), yaw_rate=0.3), FPS)
    turn = Rotation.from_euler("y", 1.1)
    trans, orient, pose, joints = _motion(velocity=(0.5, 0.0, 0.3), yaw_rate=0.3)
    shift = np.array([4.0, 0.0, -2.0])
    moved = (trans @ turn.as_matrix().T + shift, (turn * Rotation.from_rotvec(orient)).as_rotvec(),
             pose, joints @ turn.as_matrix().T + shift)  # fmt: skip
    b = st.derive_states(*moved, FPS)
    for key in ("joints_c", "joints_vel_c", "trans_c", "trans_vel_c", "root_orient_mat_c",
                "root_orient_vel_c", "contacts"):  # fmt: skip
        np.testing.assert_allclose(b[key], a[key], atol=1e-9, err_msg=key)
    assert not np.allclose(b["joints"], a["joints"])
    # The canonical origin is on the floor under the pelvis.
    np.testing.assert_allclose(a["joints_c"][:, 0, [0, 2]], 0.0, atol=1e-12)
    np.testing.assert_allclose(a["joints_c"][:, 0, 1], a["joints"][:, 0, 1])


def test_foot_on_the_floor_and_still_is_in_contact():
    trans, orient, pose, joints = _motion(num_frames=30)
    left_foot, right_foot, left_wrist = 10, 11, 20
    joints[:, left_foot] = [0.1, 0.04, 0.0]  # on the floor, still
    joints[:, right_foot] = [-0.1, 0.04, 0.0]
    joints[:, right_foot, 2] += 0.5 * np.arange(30) / FPS  # on the floor, sliding at 0.5 m/s
    joints[:, left_wrist] = [0.3, 0.9, 0.0]  # still, but high
    out = st.derive_states(trans, orient, pose, joints, FPS)
    col = {j: i for i, j in enumerate(CONTACT_JOINTS)}
    assert out["contacts"][:, col[left_foot]].all()
    assert not out["contacts"][:, col[right_foot]].any()
    assert not out["contacts"][:, col[left_wrist]].any()
    # A foot that lifts off loses contact from the frame its height passes the threshold.
    joints[15:, left_foot, 1] = 0.3
    out = st.derive_states(trans, orient, pose, joints, FPS)
    assert (
        out["contacts"][:13, col[left_foot]].all()
        and not out["contacts"][15:, col[left_foot]].any()
    )


def test_resampling_to_30_fps():
    t60 = np.arange(121) / 60.0
    pos = np.stack([t60, 2 * t60, np.sin(t60)], -1)
    out = st.resample(pos, 60.0, 30.0)
    t30 = np.arange(61) / 30.0
    np.testing.assert_allclose(out[:, :2], np.stack([t30, 2 * t30], -1), atol=1e-12)
    rots = Rotation.from_euler("y", (t60 * 0.7)[:, None]).as_matrix()[:, None]
    back = st.resample_rotations(rots, 60.0, 30.0)
    truth = Rotation.from_euler("y", (t30 * 0.7)[:, None]).as_matrix()
    np.testing.assert_allclose(back[:, 0], truth, atol=1e-9)


def test_bad_shapes_are_reported():
    trans, orient, pose, joints = _motion(num_frames=5)
    with pytest.raises(ValueError, match=r"joints \(T, >=22, 3\)"):
        st.derive_states(trans, orient, pose, joints[:, :10], FPS)
