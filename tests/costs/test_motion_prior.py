"""The learned motion prior as a solver term: analytic Jacobians against autodiff (float64), the
term against the prior applied to bodies moved into the floor's frame by hand, and the CVAE's
contact head on held-out motion."""

import math

import numpy as np
import pytest
import torch

from costs.jacobian_checks import TOL, check_term_jacobians
from slahmr_opt.costs.kinematics import world_joints
from slahmr_opt.costs.motion_prior import build_motion_prior_term, cvae_contacts
from slahmr_opt.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat
from slahmr_opt.init.floor import FloorPlane, floor_reference
from slahmr_priors.motion_cvae import MotionCVAE
from slahmr_priors.motion_cvae.model import SHIPPED

DT = torch.float64
SAMPLE_MOTIONS = SHIPPED.with_name("eval_sample.npz")
FPS = 30.0


@pytest.fixture(scope="module")
def prior() -> MotionCVAE:
    return MotionCVAE.load().to(DT)


def _tilted_ref() -> torch.Tensor:
    n = torch.nn.functional.normalize(torch.tensor([0.15, 1.0, -0.2], dtype=DT), dim=0)
    return floor_reference(FloorPlane(n, -0.8))


def _params(P: int, T: int, seed: int) -> dict[str, torch.Tensor]:
    """A walk-like motion: steady forward translation, small random poses."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=DT)[None, :, None]
    step, start = (
        torch.tensor([0.0, 0.0, 1.2 / FPS], dtype=DT),
        torch.tensor([0.0, 0.9, 0.0], dtype=DT),
    )
    trans = step * t + start
    return {
        "root_orient": 0.2 * torch.randn(P, T, 3, dtype=DT, generator=gen),
        "trans": trans.expand(P, T, 3) + 0.01 * torch.randn(P, T, 3, dtype=DT, generator=gen),
        "pose_body": 0.2 * torch.randn(P, T, 63, dtype=DT, generator=gen),
        "betas": 0.5 * torch.randn(P, 10, dtype=DT, generator=gen),
        "log_alpha": torch.zeros(1, 1, dtype=DT),
        "floor": torch.zeros(1, 3, dtype=DT),
    }


def test_analytic_jacobians_match_autodiff(body, prior):
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False  # a shorter second track: windows stay inside tracks
    term = build_motion_prior_term(mask, body, prior, _tilted_ref(), FPS, DT)
    assert term.num_elements == 4 + 2 and term.dim == prior.latent + 204
    inputs = term.gather(_params(2, 6, seed=0))
    args = [i.arg for i in term.inputs]
    check_term_jacobians(term, inputs, args, min_scale=1e-3)
    jac = term.jac(frozenset(args), **inputs)[1]
    # A subset of the arguments gives the same blocks.
    _, part = term.jac(frozenset({"pose_body1", "trans2"}), **inputs)
    assert set(part) == {"pose_body1", "trans2"}
    torch.testing.assert_close(part["pose_body1"], jac["pose_body1"], **TOL)


def test_term_is_the_prior_on_bodies_in_the_floor_frame(body, prior):
    """The term's residuals equal ``MotionCVAE.motion_residual`` of the same motion moved into the
    floor's frame by hand, window for window."""
    T = 7
    params = _params(1, T, seed=1)
    ref = _tilted_ref()
    term = build_motion_prior_term(torch.ones(1, T, dtype=torch.bool), body, prior, ref, FPS, DT)
    joints = world_joints(body, 22, params["root_orient"][0], params["trans"][0],
                          params["pose_body"][0], params["betas"].expand(T, -1))  # fmt: skip
    R, t = ref[:3, :3], ref[:3, 3]
    root_f = rotmat_to_rotvec(R @ rotvec_to_rotmat(params["root_orient"][0]))
    expected = prior.motion_residual(root_f, params["pose_body"][0], joints @ R.T + t, FPS)
    torch.testing.assert_close(term.residual(params), expected, rtol=1e-9, atol=1e-9)


def test_contact_head_finds_held_out_foot_contacts(prior):
    """On held-out motion capture (``eval_sample.npz``, never trained on), the contact head agrees
    with the labels on nearly every foot frame, in any world whose floor frame is given."""
    with np.load(SAMPLE_MOTIONS) as data:
        a, b = int(data["seq_start"][0]), int(data["seq_start"][1])
        root = torch.as_tensor(data["root_orient"][a:b], dtype=DT)[None]
        pose = torch.as_tensor(data["pose_body"][a:b], dtype=DT)[None]
        joints = torch.as_tensor(data["joints"][a:b], dtype=DT)[None]
        labels = torch.as_tensor(data["contacts"][a:b, :4], dtype=DT)[None]
        fps = float(data["fps"][0])
    mask = torch.ones(1, b - a, dtype=torch.bool)
    probs = cvae_contacts(joints, root, pose, mask, torch.eye(4, dtype=DT), prior, fps)
    accuracy = float(((probs > 0.5) == (labels > 0.5)).to(DT).mean())
    assert accuracy > 0.95, accuracy  # measured: 1.0
    # The same motion in a tilted, shifted world with that world's floor frame: same answer.
    ref = _tilted_ref()
    R, t = ref[:3, :3], ref[:3, 3]
    joints_w = (joints - t) @ R  # R^T (x - t)
    root_w = rotmat_to_rotvec(R.T @ rotvec_to_rotmat(root))
    moved = cvae_contacts(joints_w, root_w, pose, mask, ref, prior, fps)
    torch.testing.assert_close(moved, probs, rtol=1e-6, atol=1e-6)
    assert math.isfinite(float(probs.sum()))


def test_chunked_jacobian_equals_one_batch(body, prior, monkeypatch):
    """Long tracks are linearized in chunks of ``JACOBIAN_CHUNK`` windows: same result."""
    import slahmr_opt.costs.motion_prior as mp

    term = build_motion_prior_term(torch.ones(1, 9, dtype=torch.bool), body, prior, _tilted_ref(),
                                   FPS, DT)  # fmt: skip
    inputs = term.gather(_params(1, 9, seed=2))
    args = frozenset(i.arg for i in term.inputs)
    whole = term.jac(args, **inputs)
    monkeypatch.setattr(mp, "JACOBIAN_CHUNK", 2)
    chunked = term.jac(args, **inputs)
    torch.testing.assert_close(chunked[0], whole[0], **TOL)
    assert set(chunked[1]) == set(whole[1])
    for key, value in whole[1].items():
        torch.testing.assert_close(chunked[1][key], value, **TOL)


def test_robust_term_is_bounded_and_its_jacobians_match_autodiff(body, prior):
    """With ``sigma`` each window's squared residual is ``rho(|r|^2) = sigma^2 s / (sigma^2 + s)``
    of the plain one, below ``sigma^2``; the per-window ``scale`` multiplies it; the analytic
    Jacobians of the robust, scaled residual match autodiff."""
    mask = torch.ones(1, 6, dtype=torch.bool)
    params = _params(1, 6, seed=3)  # random poses: far from the training data, |r|^2 >> sigma^2
    plain = build_motion_prior_term(mask, body, prior, _tilted_ref(), FPS, DT)
    sigma = 20.0
    robust = build_motion_prior_term(mask, body, prior, _tilted_ref(), FPS, DT, sigma=sigma)
    robust.data["scale"] = torch.tensor([[1.0], [0.5], [2.0], [1.0]], dtype=DT)
    s = plain.residual(params).square().sum(-1)
    assert bool((s > 100 * sigma**2).all())
    got = robust.residual(params).square().sum(-1)
    expected = robust.data["scale"][:, 0].square() * sigma**2 * s / (sigma**2 + s)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=0)
    assert bool((got < robust.data["scale"][:, 0].square() * sigma**2).all())
    inputs = robust.gather(params)
    check_term_jacobians(robust, inputs, [i.arg for i in robust.inputs], min_scale=1e-3)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint\n", b"PK\x03\x04broken zip"])
def test_a_bad_prior_file_is_one_input_error(tmp_path, content):
    """``costs.motion_prior_path`` naming a file that is no weights file ends in an InputError
    naming the file (one line, exit 2 in the CLI), not in torch.load's traceback."""
    from slahmr_opt.costs.motion_prior import load_motion_prior
    from slahmr_opt.errors import InputError

    bad = tmp_path / "prior.pt"
    bad.write_bytes(content)
    with pytest.raises(InputError, match="not a motion prior weights file") as info:
        load_motion_prior(str(bad))
    assert info.value.path == str(bad) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="not found"):
        load_motion_prior(str(tmp_path / "missing.pt"))
    assert load_motion_prior(None).latent == 48
