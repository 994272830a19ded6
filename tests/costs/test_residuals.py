"""Residual functions: values, shapes, float64 gradchecks, and Theseus == stacked evaluation."""

import math

import pytest
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.costs.priors import anchor_residual, shape_residual
from slahmr_opt.costs.reprojection import pack_cameras, reprojection_residual
from slahmr_opt.costs.robust import gmof_residual
from slahmr_opt.costs.smoothness import acceleration_residual, velocity_residual


@pytest.fixture(scope="module")
def body(synthetic_body_path):
    return load_body_model(BodyConfig(model_path=str(synthetic_body_path)), dtype=torch.float64)


def _inputs(n: int, gen: torch.Generator):
    d = dict(dtype=torch.float64, generator=gen)
    R = torch.linalg.qr(torch.randn(n, 3, 3, **d)).Q
    R = R * torch.linalg.det(R)[:, None, None]  # proper rotations
    cam = pack_cameras(
        R,
        torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64).expand(n, 3),
        torch.tensor([1000.0, 1000.0, 640.0, 360.0], dtype=torch.float64).expand(n, 4),
    )
    kp_obs = torch.cat([torch.rand(n, 17, 2, **d) * 600 + 300, torch.rand(n, 17, 1, **d)], -1)
    return {
        "root_orient": torch.randn(n, 3, **d) * 0.3,
        "trans": torch.randn(n, 3, **d) * 0.1,
        "pose_body": torch.randn(n, 63, **d) * 0.2,
        "betas": torch.randn(n, 10, **d),
        "log_alpha": torch.randn(n, 1, **d) * 0.1,
        "kp_obs": kp_obs,
        "cam": cam,
    }


def test_gmof_residual_squares_to_geman_mcclure():
    r = torch.linspace(-500, 500, 101, dtype=torch.float64)
    sigma = 100.0
    rho = sigma**2 * r**2 / (sigma**2 + r**2)
    torch.testing.assert_close(gmof_residual(r, sigma) ** 2, rho)
    assert torch.all(torch.sign(gmof_residual(r, sigma)) == torch.sign(r))


def test_reprojection_shape_and_zero_at_truth(body):
    gen = torch.Generator().manual_seed(1)
    x = _inputs(3, gen)
    x["kp_obs"][..., 2] = 1.0
    r = reprojection_residual(**x, body=body, kp_format="coco17", sigma=100.0)
    assert r.shape == (3, 34)
    # Observations equal to the projection give a zero residual.
    from slahmr_opt.costs.kinematics import world_keypoints
    from slahmr_opt.geometry.camera import project, world_to_camera

    pts = world_keypoints(body, "coco17", x["root_orient"], x["trans"], x["pose_body"], x["betas"])
    R = x["cam"][:, :9].reshape(-1, 3, 3)
    uv = project(world_to_camera(pts, R, x["cam"][:, 9:12], x["log_alpha"].exp()), x["cam"][:, 12:])
    x["kp_obs"][..., :2] = uv
    r0 = reprojection_residual(**x, body=body, kp_format="coco17", sigma=100.0)
    assert r0.abs().max() < 1e-9


def test_reprojection_confidence_zero_ignores_keypoint(body):
    x = _inputs(2, torch.Generator().manual_seed(2))
    x["kp_obs"][:, 3, 2] = 0.0
    r = reprojection_residual(**x, body=body, kp_format="coco17", sigma=100.0).reshape(2, 17, 2)
    assert torch.all(r[:, 3] == 0)


def test_reprojection_gradcheck(body):
    x = _inputs(2, torch.Generator().manual_seed(3))
    names = ["root_orient", "trans", "pose_body", "betas", "log_alpha"]

    def fn(*args):
        return reprojection_residual(
            **dict(zip(names, args)),
            kp_obs=x["kp_obs"],
            cam=x["cam"],
            body=body,
            kp_format="coco17",
            sigma=100.0,
        )

    args = tuple(x[k].clone().requires_grad_(True) for k in names)
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5)


def test_smoothness_values_and_gradcheck():
    j0, j1, j2 = (torch.randn(4, 22, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    v = velocity_residual(j0, j1)
    assert v.shape == (4, 66)
    torch.testing.assert_close(v.square().sum(), 0.5 * (j1 - j0).square().sum())
    a = acceleration_residual(j0, j1, j2)
    torch.testing.assert_close(a.reshape(4, 22, 3), j2 - 2 * j1 + j0)
    # Constant velocity has zero acceleration.
    assert acceleration_residual(j0, j0 + 1, j0 + 2).abs().max() < 1e-12
    assert torch.autograd.gradcheck(acceleration_residual, (j0, j1, j2))
    assert torch.autograd.gradcheck(velocity_residual, (j0, j1))


def test_prior_residuals():
    betas = torch.randn(3, 10, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([[4.0], [9.0], [1.0]], dtype=torch.float64).sqrt()
    r = shape_residual(betas, scale)
    torch.testing.assert_close(
        r.square().sum(1),
        torch.tensor([4.0, 9.0, 1.0], dtype=torch.float64) * betas.detach().square().sum(1),
    )
    assert torch.autograd.gradcheck(lambda b: shape_residual(b, scale), (betas,))
    pose = torch.randn(2, 63, dtype=torch.float64, requires_grad=True)
    assert anchor_residual(pose, pose).abs().max() == 0
    init = pose.detach().clone()
    assert torch.autograd.gradcheck(lambda p: anchor_residual(p, init), (pose,))
    assert math.isclose(float(anchor_residual(pose.detach() + 1, pose.detach()).sum()), 126.0)
