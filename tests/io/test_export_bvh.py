"""BVH export: re-read by the project's reader and by bvhio; joints equal ``results.npz``'s.

Outside its track a person holds the nearest tracked frame's pose, so the expected joints of
frame t are the results' joints of ``SOURCE[p][t]``. Files are written with 6 decimals (1 um in
metres, 1e-6 degrees), so joints agree to a few micrometres.
"""

import warnings

import numpy as np
import pytest
from export_helpers import FPS, MASK_1, NUM_FRAMES, read_small_result, write_small_result
from scipy.spatial.transform import Rotation

from slahmr_opt.body.keypoints import SMPL_JOINT_NAMES
from slahmr_opt.io.export.bvh import bvh_paths, continuous_euler, export_bvh
from slahmr_opt.io.export.motion import OPENCV_TO_Y_UP, nearest_tracked
from slahmr_opt.mocap.bvh import read_bvh

with warnings.catch_warnings():  # bvhio 1.5.4 imports PyGLM under its old name
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    bvhio = pytest.importorskip("bvhio")

#: Source frame of each frame: person 0 is tracked throughout, person 1 on MASK_1.
SOURCE = (list(range(NUM_FRAMES)), [2, 2, 2, 3, 4, 5, 5, 8, 8, 9, 9, 9])
TOL = 2e-5  # metres


def _expected(result, aligned: bool) -> np.ndarray:
    """(P, T, 24, 3) joints the BVH files should hold, in the y-up export world."""
    F = np.eye(3) if aligned else OPENCV_TO_Y_UP
    joints = result.joints.double().numpy() @ F.T
    return np.stack([joints[p, SOURCE[p]] for p in range(2)])


def test_nearest_tracked():
    np.testing.assert_array_equal(nearest_tracked(MASK_1), SOURCE[1])


@pytest.mark.parametrize(("aligned", "units"), [(True, "m"), (False, "m"), (True, "cm")])
def test_project_reader_joints(tmp_path, synthetic_body_path, aligned, units):
    result, model = read_small_result(write_small_result(tmp_path, synthetic_body_path, aligned))
    paths = export_bvh(result, model, tmp_path / "bvh", units=units)
    assert [p.name for p in paths] == ["person_7.bvh", "person_b_2.bvh"]
    expected = _expected(result, aligned)
    for p, path in enumerate(paths):
        motion = read_bvh(path, scale=0.01 if units == "cm" else 1.0)
        assert motion.num_frames == NUM_FRAMES and motion.fps == FPS
        order = [motion.skeleton.index(n) for n in SMPL_JOINT_NAMES]
        err = np.abs(motion.positions[:, order] - expected[p]).max()
        assert err < TOL, err


def test_bvhio_joints(tmp_path, synthetic_body_path):
    result, model = read_small_result(write_small_result(tmp_path, synthetic_body_path))
    paths = export_bvh(result, model, tmp_path / "walk.bvh")
    assert [p.name for p in paths] == ["walk_person_7.bvh", "walk_person_b_2.bvh"]
    expected = _expected(result, True)
    for p, path in enumerate(paths):
        root = bvhio.readAsHierarchy(str(path))
        joints = {j.Name: j for j, _, _ in root.layout()}
        assert set(SMPL_JOINT_NAMES) <= set(joints)
        for t in range(NUM_FRAMES):
            root.loadPose(t)
            got = np.array([list(joints[n].PositionWorld) for n in SMPL_JOINT_NAMES])
            assert np.abs(got - expected[p, t]).max() < TOL


def test_header(tmp_path, synthetic_body_path):
    result, model = read_small_result(write_small_result(tmp_path, synthetic_body_path))
    text = export_bvh(result, model, tmp_path / "bvh")[0].read_text()
    lines = text.splitlines()
    assert lines[:5] == [
        "HIERARCHY", "ROOT pelvis", "{", "\tOFFSET 0.000000 0.000000 0.000000",
        "\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation",
    ]  # fmt: skip
    assert text.count("JOINT ") == 23 and text.count("End Site") == 5
    assert f"Frames: {NUM_FRAMES}" in lines and f"Frame Time: {1 / FPS:.8f}" in lines
    motion_at = lines.index("MOTION")
    assert all(len(row.split()) == 6 + 23 * 3 for row in lines[motion_at + 3 :])


def test_continuous_euler_near_gimbal_lock():
    # A knee-like bend about x from 0 to 170 degrees with some twist: the middle (x) angle of
    # ZXY nears 90 degrees, where z and y swing fast, and the canonical angles wrap by 360.
    t = np.linspace(0, 1, 60)
    rotvec = np.stack([np.deg2rad(170) * t, 0.3 * np.sin(3 * t), 0.2 * t], -1)
    R = Rotation.from_rotvec(rotvec).as_matrix()
    angles = continuous_euler(R[:, None])[:, 0]
    back = Rotation.from_euler("ZXY", angles, degrees=True).as_matrix()
    np.testing.assert_allclose(back, R, atol=1e-9)
    canonical = Rotation.from_matrix(R).as_euler("ZXY", degrees=True)
    assert np.abs(np.diff(canonical, axis=0)).max() > 180.0
    assert np.abs(np.diff(angles, axis=0)).max() < 30.0
    # A pure bend beyond 90 degrees stays one growing x angle (the second decomposition).
    bend = Rotation.from_euler("X", np.linspace(0, 170, 30)[:, None], degrees=True).as_matrix()
    np.testing.assert_allclose(
        continuous_euler(bend[:, None])[:, 0],
        np.stack([np.zeros(30), np.linspace(0, 170, 30), np.zeros(30)], -1),
        atol=1e-6,
    )


def test_paths_and_refusal(tmp_path, synthetic_body_path):
    assert bvh_paths(tmp_path / "a.BVH", ["person_1"]) == [tmp_path / "a_person_1.bvh"]
    assert bvh_paths(tmp_path / "out", ["person_1"]) == [tmp_path / "out" / "person_1.bvh"]
    result, model = read_small_result(write_small_result(tmp_path / "fit", synthetic_body_path))
    (tmp_path / "bvh").mkdir()
    (tmp_path / "bvh" / "person_b_2.bvh").write_text("mine")
    with pytest.raises(FileExistsError):
        export_bvh(result, model, tmp_path / "bvh")
    assert sorted(p.name for p in (tmp_path / "bvh").iterdir()) == ["person_b_2.bvh"]
    export_bvh(result, model, tmp_path / "bvh", overwrite=True)
    assert (tmp_path / "bvh" / "person_b_2.bvh").read_text().startswith("HIERARCHY")
