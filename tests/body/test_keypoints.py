"""Keypoint formats: counts, the joint/vertex maps and the hip adjustment."""

import pytest
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.body.keypoints import COCO17_NAMES, OP25_NAMES, body_keypoints


@pytest.fixture(scope="module")
def posed(synthetic_body_path):
    model = load_body_model(BodyConfig(model_path=str(synthetic_body_path)), dtype=torch.float64)
    out = model(torch.randn(2, 3, 10, dtype=torch.float64),
                0.3 * torch.randn(2, 3, 3, dtype=torch.float64),
                0.3 * torch.randn(2, 3, 21, 3, dtype=torch.float64),
                torch.randn(2, 3, 3, dtype=torch.float64))  # fmt: skip
    return model, out


@pytest.mark.parametrize("fmt,count", [("coco17", 17), ("op25", 25)])
def test_counts(posed, fmt, count):
    model, out = posed
    assert model.keypoints(out, fmt).shape == (2, 3, count, 3)
    assert len(COCO17_NAMES) == 17 and len(OP25_NAMES) == 25


def test_unknown_format(posed):
    model, out = posed
    with pytest.raises(ValueError, match="coco17"):
        model.keypoints(out, "h36m")


def test_maps_without_hip_fix(posed):
    model, out = posed
    J, V = out.joints, out.keypoint_vertices
    op = model.keypoints(out, "op25", hip_fix=False)
    coco = model.keypoints(out, "coco17", hip_fix=False)
    op_joints = {"Neck": 12, "RShoulder": 17, "RElbow": 19, "RWrist": 21, "LShoulder": 16,
                 "LElbow": 18, "LWrist": 20, "MidHip": 0, "RHip": 2, "RKnee": 5, "RAnkle": 8,
                 "LHip": 1, "LKnee": 4, "LAnkle": 7}  # fmt: skip
    for name, j in op_joints.items():
        torch.testing.assert_close(op[..., OP25_NAMES.index(name), :], J[..., j, :])
    op_verts = ["Nose", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel",
                "RBigToe", "RSmallToe", "RHeel"]  # fmt: skip
    for k, name in enumerate(op_verts):
        torch.testing.assert_close(op[..., OP25_NAMES.index(name), :], V[..., k, :])
    coco_src = [V[..., 0, :], V[..., 2, :], V[..., 1, :], V[..., 4, :], V[..., 3, :]] + [
        J[..., j, :] for j in (16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)
    ]
    torch.testing.assert_close(coco, torch.stack(coco_src, -2))


@pytest.mark.parametrize("fmt,left,right", [("coco17", 11, 12), ("op25", 12, 9)])
def test_hip_fix_formula(posed, fmt, left, right):
    model, out = posed
    J = out.joints
    h_l, h_r, m = J[..., 1, :], J[..., 2, :], J[..., 0, :]
    fixed = model.keypoints(out, fmt)
    raw = model.keypoints(out, fmt, hip_fix=False)
    want_l = h_l + 0.25 * (h_l - h_r) + 0.5 * (m - 0.5 * (h_l + h_r))
    want_r = h_r + 0.25 * (h_r - h_l) + 0.5 * (m - 0.5 * (h_l + h_r))
    torch.testing.assert_close(fixed[..., left, :], want_l)
    torch.testing.assert_close(fixed[..., right, :], want_r)
    others = [i for i in range(fixed.shape[-2]) if i not in (left, right)]
    torch.testing.assert_close(fixed[..., others, :], raw[..., others, :])


def test_body_keypoints_gradients(posed):
    _, out = posed
    J = out.joints.detach().requires_grad_(True)
    body_keypoints(J, out.keypoint_vertices, "op25").sum().backward()
    assert torch.isfinite(J.grad).all() and J.grad.abs().sum() > 0
