"""Analytic Jacobians (body points and every term's ``Term.jac``) against torch.func autodiff, in
float64, on random poses with exactly-zero and near-zero rotations, for a body with non-zero pose
blend shapes and for the built-in default body."""

import dataclasses

import numpy as np
import pytest
import torch
from body.synthetic_model import write_synthetic_smplh_npz
from stages.scene import make_scene
from torch.func import jacrev, vmap

from costs.jacobian_checks import TOL, autodiff_jacobians, check_term_jacobians
from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.body.jacobian import (
    body_point_jacobians,
    so3_right_jacobian,
    supports_analytic_jacobians,
)
from slahmr_opt.costs.kinematics import world_joints, world_keypoints
from slahmr_opt.costs.priors import (
    build_anchor_term,
    build_pose_prior_term,
    build_scale_prior_term,
    build_shape_term,
    set_scale_prior,
)
from slahmr_opt.costs.reprojection import build_reprojection_term
from slahmr_opt.costs.smoothness import build_smoothness_term
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.init.from_tracks import initialize_bodies
from slahmr_opt.stages.problem import params_from_body
from slahmr_priors.pose_gmm.model import PoseGMM

DT = torch.float64


def _random_pose(n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random bodies; body 0 has all rotations exactly zero, body 1 near-zero ones."""
    d = dict(dtype=DT, generator=gen)
    out = {
        "root_orient": torch.randn(n, 3, **d) * 0.6,
        "trans": torch.randn(n, 3, **d),
        "pose_body": torch.randn(n, 63, **d) * 0.4,
        "betas": torch.randn(n, 10, **d),
    }
    out["root_orient"][0] = 0.0
    out["pose_body"][0] = 0.0
    out["root_orient"][1] = 1e-9
    out["pose_body"][1] = torch.randn(63, **d) * 1e-7
    return out


def test_right_jacobian_first_order_and_small_angles():
    scales = torch.tensor([0.0, 1e-12, 1e-6, 1e-3, 0.3, 0.4999, 0.5001, 1.5, 3.0], dtype=DT)
    aa = torch.nn.functional.normalize(torch.randn(len(scales), 3, dtype=DT), dim=-1)
    aa = aa * scales[:, None]
    Jr = so3_right_jacobian(aa)

    def rotate(x):
        return rotvec_to_rotmat(aa + x)

    # d exp(theta + d) / d d at 0 equals exp(theta) [J_r e_i]_x column by column.
    numeric = jacrev(rotate)(torch.zeros(3, dtype=DT))  # (n, 3, 3, 3)
    R = rotvec_to_rotmat(aa)
    for i in range(3):
        w = Jr[..., i]
        K = torch.zeros(len(aa), 3, 3, dtype=DT)
        K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -w[:, 2], w[:, 1], -w[:, 0]
        K = K - K.transpose(1, 2)
        torch.testing.assert_close(R @ K, numeric[..., i], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(Jr[0], torch.eye(3, dtype=DT), rtol=0, atol=0)


@pytest.mark.parametrize("points", ["coco17", "op25", 22])
def test_body_point_jacobians_match_autodiff(body, points):
    x = _random_pose(5, torch.Generator().manual_seed(0))
    args = ("root_orient", "trans", "pose_body", "betas")

    def f(*v):
        v = [t[None] for t in v]
        if isinstance(points, str):
            return world_keypoints(body, points, *v)[0]
        return world_joints(body, points, *v)[0]

    expected = vmap(jacrev(f, argnums=(0, 1, 2, 3)))(*(x[a] for a in args))
    out = body_point_jacobians(body, *(x[a] for a in args), points)
    torch.testing.assert_close(out.points, vmap(f)(*(x[a] for a in args)), **TOL)
    torch.testing.assert_close(expected[1], torch.eye(3, dtype=DT).expand_as(expected[1]))
    for name, ref in zip(("root_orient", "pose_body", "betas"), (expected[0], *expected[2:])):
        got = getattr(out, name)
        assert got.shape == ref.shape
        assert ref.abs().max() > 1e-3  # a real comparison, not zeros against zeros
        torch.testing.assert_close(got, ref, **TOL)


def test_body_point_jacobians_only_what_is_asked(body):
    x = _random_pose(3, torch.Generator().manual_seed(1))
    out = body_point_jacobians(body, *x.values(), "coco17", wrt={"root_orient"})
    assert out.root_orient is not None and out.pose_body is None and out.betas is None
    full = body_point_jacobians(body, *x.values(), "coco17")
    # equal up to rounding: the two calls batch their matrix products differently
    torch.testing.assert_close(out.root_orient, full.root_orient, rtol=0, atol=1e-14)


@pytest.fixture(scope="module")
def scene_obs():
    obs = make_scene(num_people=2, num_frames=4, camera="orbit", seed=4).obs
    cams = obs.cameras
    return dataclasses.replace(
        obs,
        kp2d=obs.kp2d.to(DT),
        cameras=dataclasses.replace(
            cams, R_w2c=cams.R_w2c.to(DT), t_w2c=cams.t_w2c.to(DT), intrins=cams.intrins.to(DT)
        ),
    )


def _terms(obs, body):
    mask = obs.track_mask
    P, T = mask.shape
    init = torch.randn(P, T, 63, dtype=DT) * 0.2
    return [
        build_reprojection_term(obs, body, 100.0),
        build_smoothness_term("joints_smooth", mask, body, 22, order=1),
        build_smoothness_term("joints_accel", mask, body, 22, order=2),
        build_pose_prior_term(mask, PoseGMM.load().to(DT)),
        build_pose_prior_term(mask, None),
        build_shape_term(mask, body.num_betas),
        build_anchor_term(mask, init),
        _scale_prior(),
    ]


def _scale_prior():
    term = build_scale_prior_term()
    term.data = {k: v.to(DT) for k, v in term.data.items()}
    set_scale_prior(term, 0.4, 0.04)
    return term


def _params(obs, body):
    params = params_from_body(initialize_bodies(obs, body, 0.7), 0.7, DT)
    gen = torch.Generator().manual_seed(2)
    params = {k: v + 0.05 * torch.randn(v.shape, dtype=DT, generator=gen)
              for k, v in params.items()}  # fmt: skip
    params["betas"] = torch.randn(params["betas"].shape, dtype=DT, generator=gen)
    params["pose_body"][0, 0] = 0.0  # exactly zero rotations
    params["pose_body"][0, 1] = 1e-8
    params["root_orient"][1, 2] = 0.0
    return params


@pytest.mark.parametrize("stage", ["root", "all"])
def test_term_jacobians_match_autodiff(body, scene_obs, stage):
    params = _params(scene_obs, body)
    optimized = {"root_orient", "trans"} if stage == "root" else None
    for term in _terms(scene_obs, body):
        assert term.jac is not None, term.name
        args = [i.arg for i in term.inputs if optimized is None or i.var in optimized]
        if not args:
            continue
        check_term_jacobians(term, term.gather(params), args)


def test_reprojection_jacobian_behind_camera(body, scene_obs):
    """Bodies at and behind the camera centre: clamped depths have a zero depth derivative."""
    term = build_reprojection_term(scene_obs, body, 100.0)
    params = _params(scene_obs, body)
    alpha = params["log_alpha"].exp()
    for m in range(term.num_elements):
        R, t = term.data["cam"][m, :9].reshape(3, 3), term.data["cam"][m, 9:12]
        centre = -R.T @ (alpha[0] * t)
        params["trans"][term.person[m], term.frame[m]] = centre - (m % 2) * R[2]
    inputs = term.gather(params)
    points = world_keypoints(body, scene_obs.kp_format, *(inputs[a] for a in term_args(term)[:4]))
    depth = (points @ inputs["cam"][:, :9].reshape(-1, 3, 3).transpose(1, 2))[..., 2]
    depth = depth + (alpha * inputs["cam"][:, 9:12])[:, None, 2]
    assert (depth < 0).sum() > 10 and (depth > 0).sum() > 10
    args = ["root_orient", "trans", "pose_body", "log_alpha"]
    _, jac = term.jac(frozenset(args), **inputs)
    expected = autodiff_jacobians(term, inputs, args)
    for arg in args:
        torch.testing.assert_close(jac[arg], expected[arg], **TOL)


def term_args(term):
    return [i.arg for i in term.inputs]


def test_smplx_backend_keeps_autodiff(tmp_path, scene_obs):
    write_synthetic_smplh_npz(tmp_path / "SMPLH_NEUTRAL.npz")
    model = load_body_model(BodyConfig(model_path=str(tmp_path), model_type="smplh"), dtype=DT)
    assert not supports_analytic_jacobians(model)
    assert build_reprojection_term(scene_obs, model, 100.0).jac is None
    assert build_smoothness_term("joints_smooth", scene_obs.track_mask, model, 22, 1).jac is None


def test_scale_prior_value():
    """``((log alpha - log alpha_0) / sigma)^2``: 10 % above a 4 % prior costs (log 1.1 / 0.04)^2;
    before an estimate the term is free."""
    term = build_scale_prior_term()
    params = {"log_alpha": torch.tensor([[np.log(0.44)]], dtype=torch.float32)}
    assert float(term.residual(params).square().sum()) == 0.0
    set_scale_prior(term, 0.4, 0.04)
    cost = float(term.residual(params).square().sum())
    assert cost == pytest.approx((np.log(1.1) / 0.04) ** 2, rel=1e-5)
