"""The shipped default body model: file, conventions and anatomy."""

import os
import pickle

import numpy as np
import pytest
import torch

from slahmr_opt.body import BodyConfig, default_body_path, load_body_model
from slahmr_opt.body.keypoints import SMPL_JOINT_NAMES

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}


@pytest.fixture(scope="module")
def rest():
    model = load_body_model(BodyConfig(), dtype=torch.float64)
    z = torch.zeros(1, 3, dtype=torch.float64)
    out = model(torch.zeros(1, 10, dtype=torch.float64), z,
                torch.zeros(1, 21, 3, dtype=torch.float64), z, return_vertices=True)  # fmt: skip
    return model, out.joints[0].numpy(), out.vertices[0].numpy(), out.keypoint_vertices[0].numpy()


def test_file_is_small_plain_and_documented():
    path = default_body_path()
    assert path.is_file() and path.stat().st_size < 20 * 2**20
    assert (path.parent / "README.md").is_file()
    with open(path, "rb") as f:
        data = pickle.load(f)  # our own shipped file
    arrays = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "f")
    assert all(isinstance(data[k], np.ndarray) for k in arrays)
    assert data["shapedirs"].shape[-1] >= 10
    np.testing.assert_allclose(data["J_regressor"].sum(1), 1.0, atol=1e-5)
    assert data["J_regressor"].min() >= 0
    np.testing.assert_allclose(data["weights"].sum(1), 1.0, atol=1e-5)
    assert "CC0" in data["license"]


def test_path_independent_of_cwd(tmp_path):
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert load_body_model(BodyConfig()).num_vertices > 5000
    finally:
        os.chdir(cwd)


def test_rest_pose_conventions(rest):
    model, joints, verts, kp = rest
    height = np.ptp(verts[:, 1])
    assert 1.5 < height < 1.9
    assert np.linalg.norm(joints[J["pelvis"]]) < 0.05  # pelvis near the origin
    assert joints[J["left_hip"], 0] > 0 > joints[J["right_hip"], 0]  # left on +x
    assert kp[0, 2] > joints[J["head"], 2]  # nose in front: facing +z
    assert joints[J["head"], 1] == joints[:, 1].max()
    assert verts[:, 1].argmax() in np.flatnonzero(model.lbs_weights[:, J["head"]] > 0.5)
    lowest = verts[:, 1].min()
    for name in ("left_ankle", "right_ankle", "left_foot", "right_foot"):
        assert joints[J[name], 1] - lowest < 0.12
    assert np.all(kp[5:, 1] - lowest < 0.03)  # toes and heels on the ground


def test_joint_order_is_anatomical(rest):
    _, joints, _, _ = rest
    y = joints[:, 1]
    for side in ("left", "right"):
        assert y[J[f"{side}_hip"]] > y[J[f"{side}_knee"]] > y[J[f"{side}_ankle"]]
        assert y[J[f"{side}_shoulder"]] > y[J[f"{side}_hip"]]
    assert y[J["pelvis"]] < y[J["spine1"]] < y[J["spine2"]] < y[J["spine3"]] < y[J["neck"]]
    assert y[J["neck"]] < y[J["head"]]
    # T-pose: arms horizontal, elbows between shoulders and wrists, hands outermost.
    for side, sign in (("left", 1), ("right", -1)):
        chain = [J[f"{side}_{n}"] for n in ("shoulder", "elbow", "wrist", "hand")]
        x = sign * joints[chain, 0]
        assert np.all(np.diff(x) > 0.03)
        assert np.ptp(joints[chain, 1]) < 0.05
    upper_arm = np.linalg.norm(joints[J["left_elbow"]] - joints[J["left_shoulder"]])
    thigh = np.linalg.norm(joints[J["left_knee"]] - joints[J["left_hip"]])
    assert 0.22 < upper_arm < 0.35 and 0.33 < thigh < 0.5


def test_left_right_symmetry(rest):
    _, joints, verts, kp = rest
    mirrored = joints * np.array([-1.0, 1.0, 1.0])
    swap = [SMPL_JOINT_NAMES.index(n.replace("left", "R").replace("right", "left")
                                   .replace("R", "right")) for n in SMPL_JOINT_NAMES]  # fmt: skip
    np.testing.assert_allclose(mirrored[swap], joints, atol=0.01)


def test_stature_of_the_mean_body_and_its_first_shape_component():
    model = load_body_model(BodyConfig(), dtype=torch.float64)
    betas = torch.zeros(3, 10, dtype=torch.float64)
    betas[1, 0], betas[2, 0] = 2.0, -2.0
    heights = model.stature(betas)
    assert heights[0].item() == pytest.approx(1.70, abs=0.01)  # the mean adult
    assert heights[1] > heights[0] + 0.1 and heights[2] < heights[0] - 0.1
    rest = model.rest_pose(betas[:1]).vertices[0]
    assert heights[0] == rest[:, 1].max() - rest[:, 1].min()
